/**
 * Issue 4, per-app limits, through a real nginx run as root: the shared
 * cases of test/e2e/shared/limits-cases.ts, run through Apache by
 * test/e2e/security/limits.test.ts (which adds the .htaccess cases).
 */
import test from "ava";
import { limitsCases } from "../shared/limits-cases.js";

limitsCases(test, "nginx");
