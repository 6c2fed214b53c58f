/**
 * End-to-end through a real nginx: the app pool (the shared cases of
 * test/e2e/shared/pool-cases.ts, run through Apache by test/e2e/pool.test.ts).
 */
import test from "ava";
import { poolCases } from "../shared/pool-cases.js";

poolCases(test, "nginx");
