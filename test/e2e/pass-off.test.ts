/**
 * End-to-end through a real Apache: FERRY_PASS=off turns passes off (the
 * shared case of test/e2e/shared/pass-cases.ts, passOffCases).
 */
import test from "ava";
import { passOffCases } from "./shared/pass-cases.js";

passOffCases(test, "apache");
