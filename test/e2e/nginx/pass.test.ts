/**
 * End-to-end through a real nginx, issues 11/15: passes (docs/protocol.md
 * "Passes"), the shared cases of test/e2e/shared/pass-cases.ts (run through
 * Apache by test/e2e/pass.test.ts).
 */
import test from "ava";
import { passCases } from "../shared/pass-cases.js";

passCases(test, "nginx");
