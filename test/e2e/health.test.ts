/**
 * End-to-end through a real Apache: health checks that heal (the shared
 * cases of test/e2e/shared/health-cases.ts; nginx runs them in
 * test/e2e/nginx/health.test.ts).
 */
import test from "ava";
import { healthCases } from "./shared/health-cases.js";

healthCases(test, "apache");
