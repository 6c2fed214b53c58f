/**
 * Issue 4, isolation, through a real Apache run as root (children as
 * www-data): the shared cases of test/e2e/shared/isolation-cases.ts; nginx
 * runs them in test/e2e/nginx/security-isolation.test.ts.
 */
import test from "ava";
import { isolationCases } from "../shared/isolation-cases.js";

isolationCases(test, "apache");
