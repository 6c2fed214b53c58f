/**
 * Issue 4, user switching, through a real nginx run as root (workers as
 * www-data): the shared cases of test/e2e/shared/user-switching-cases.ts,
 * run through Apache by test/e2e/security/user-switching.test.ts.
 */
import test from "ava";
import { userSwitchingCases } from "../shared/user-switching-cases.js";

userSwitchingCases(test, "nginx");
