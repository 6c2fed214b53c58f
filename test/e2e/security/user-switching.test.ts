/**
 * Issue 4, user switching, through a real Apache run as root: the shared
 * cases of test/e2e/shared/user-switching-cases.ts; nginx runs them in
 * test/e2e/nginx/security-user-switching.test.ts.
 */
import test from "ava";
import { userSwitchingCases } from "../shared/user-switching-cases.js";

userSwitchingCases(test, "apache");
