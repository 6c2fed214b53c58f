/**
 * Issue 4, the shared-hosting scenario, through a real nginx run as root
 * (workers as www-data): the shared cases of
 * test/e2e/shared/shared-hosting-cases.ts, run through Apache by
 * test/e2e/security/shared-hosting.test.ts.
 */
import test from "ava";
import { sharedHostingCases } from "../shared/shared-hosting-cases.js";

sharedHostingCases(test, "nginx");
