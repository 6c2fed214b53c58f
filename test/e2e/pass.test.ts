/**
 * End-to-end through a real Apache, issues 11/15: passes (docs/protocol.md
 * "Passes"), the shared cases of test/e2e/shared/pass-cases.ts.
 */
import test from "ava";
import { passCases } from "./shared/pass-cases.js";

passCases(test, "apache");
