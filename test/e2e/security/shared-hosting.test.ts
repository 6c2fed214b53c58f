/**
 * Issue 4, the shared-hosting scenario, through a real Apache run as root:
 * the shared cases of test/e2e/shared/shared-hosting-cases.ts; nginx runs
 * them in test/e2e/nginx/security-shared-hosting.test.ts.
 */
import test from "ava";
import { sharedHostingCases } from "../shared/shared-hosting-cases.js";

sharedHostingCases(test, "apache");
