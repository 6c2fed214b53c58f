/**
 * End-to-end through two real Apaches: shared session affinity (the shared
 * cases of test/e2e/shared/affinity-cases.ts; nginx runs them in
 * test/e2e/nginx/affinity.test.ts).
 */
import test from "ava";
import { affinityCases } from "./shared/affinity-cases.js";

affinityCases(test, "apache");
