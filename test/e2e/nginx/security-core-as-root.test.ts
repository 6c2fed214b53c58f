/**
 * Issue 4, the core as root must not lend root's rights to a tenant's paths,
 * through a real nginx run as root: the shared cases of
 * test/e2e/shared/core-as-root-cases.ts, run through Apache by
 * test/e2e/security/core-as-root.test.ts.
 */
import test from "ava";
import { coreAsRootCases } from "../shared/core-as-root-cases.js";

coreAsRootCases(test, "nginx");
