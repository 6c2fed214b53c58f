/**
 * Black-box compatibility through a real nginx: the shared cases of
 * test/e2e/shared/compat-http-cases.ts (run through Apache by
 * test/e2e/compat/http.test.ts, which also has the Apache-only ones).
 */
import test from "ava";
import { compatHttpCases } from "../shared/compat-http-cases.js";

compatHttpCases(test, "nginx");
