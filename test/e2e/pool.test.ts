/**
 * End-to-end through a real Apache: the app pool (the shared cases of
 * test/e2e/shared/pool-cases.ts; nginx runs them in test/e2e/nginx/pool.test.ts).
 */
import test from "ava";
import { poolCases } from "./shared/pool-cases.js";

poolCases(test, "apache");
