/**
 * End-to-end through a real nginx: FERRY_PASS=off turns passes off (the
 * shared case of test/e2e/shared/pass-cases.ts, passOffCases; through
 * Apache: test/e2e/pass-off.test.ts).
 */
import test from "ava";
import { passOffCases } from "../shared/pass-cases.js";

passOffCases(test, "nginx");
