/**
 * End-to-end through a real nginx: a real Prometheus scrapes the metrics the
 * core serves on passenger_metrics_listen (the shared cases of
 * test/e2e/shared/metrics-cases.ts, run through Apache, with a `ferry start`
 * target beside it, by test/e2e/metrics.test.ts).
 */
import test from "ava";
import { metricsCases } from "../shared/metrics-cases.js";

metricsCases(test, "nginx");
