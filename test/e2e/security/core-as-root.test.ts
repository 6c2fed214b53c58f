/**
 * Issue 4, the core as root must not lend root's rights to a tenant's paths,
 * through a real Apache run as root: the shared cases of
 * test/e2e/shared/core-as-root-cases.ts; nginx runs them in
 * test/e2e/nginx/security-core-as-root.test.ts.
 */
import test from "ava";
import { coreAsRootCases } from "../shared/core-as-root-cases.js";

coreAsRootCases(test, "apache");
