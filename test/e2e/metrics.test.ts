/**
 * End-to-end: a real Prometheus scrapes Ferry's /metrics, served by the core
 * behind a real Apache (PassengerMetricsListen) and by `ferry start`
 * (--metrics-listen): the shared cases of test/e2e/shared/metrics-cases.ts
 * (nginx runs them in test/e2e/nginx/metrics.test.ts).
 */
import test from "ava";
import { metricsCases } from "./shared/metrics-cases.js";

metricsCases(test, "apache", { standalone: true });
