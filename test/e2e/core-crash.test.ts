/**
 * End-to-end through a real Apache, issue 11: `kill -9` of the core while
 * leased exchanges are open (the shared case of
 * test/e2e/shared/core-crash-cases.ts; nginx runs it in
 * test/e2e/nginx/core-crash.test.ts).
 */
import test from "ava";
import { coreCrashCases } from "./shared/core-crash-cases.js";

coreCrashCases(test, "apache");
