/**
 * End-to-end through a real nginx: health checks configured with the
 * passenger_health_check_* directives (the shared cases of
 * test/e2e/shared/health-cases.ts, run through Apache by
 * test/e2e/health.test.ts).
 */
import test from "ava";
import { healthCases } from "../shared/health-cases.js";

healthCases(test, "nginx");
