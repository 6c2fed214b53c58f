/**
 * End-to-end through a real nginx: `kill -9` of the core while leased
 * exchanges are open (the shared case of test/e2e/shared/core-crash-cases.ts,
 * run through Apache by test/e2e/core-crash.test.ts).
 */
import test from "ava";
import { coreCrashCases } from "../shared/core-crash-cases.js";

coreCrashCases(test, "nginx");
