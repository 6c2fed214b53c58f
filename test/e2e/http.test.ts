/**
 * End-to-end through a real Apache (event MPM) + mod_ferry + the core: how a
 * request and its response look to a client (the shared cases of
 * test/e2e/shared/http-cases.ts; nginx runs them in
 * test/e2e/nginx/http.test.ts). One Apache for the whole file, several
 * VirtualHosts in it.
 */
import test from "ava";
import { httpCases } from "./shared/http-cases.js";

httpCases(test, "apache");
