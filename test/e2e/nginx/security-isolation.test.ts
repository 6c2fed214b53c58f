/**
 * Issue 4, isolation, through a real nginx run as root (workers as
 * www-data): the shared cases of test/e2e/shared/isolation-cases.ts, run
 * through Apache by test/e2e/security/isolation.test.ts.
 */
import test from "ava";
import { isolationCases } from "../shared/isolation-cases.js";

isolationCases(test, "nginx");
