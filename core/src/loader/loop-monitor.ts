/**
 * Event-loop reports from inside the app process (docs/loader.md "Event-loop
 * reports"): every LOOP_REPORT_INTERVAL_MS the loader measures the loop's
 * utilisation (perf_hooks eventLoopUtilization) and delay (monitorEventLoopDelay)
 * over the interval and hands a LoopReport to `send`. The core scales on these
 * and treats their absence as a stuck loop. Runs INSIDE the app process: only
 * node: built-ins and this folder. The timer is unref'd: it never keeps the
 * process alive.
 */
import { monitorEventLoopDelay, performance, type EventLoopUtilization } from "node:perf_hooks";
import type { LoopReport } from "./messages.js";

/** Sampling period of the delay histogram; its samples include it, so it is subtracted. */
const DELAY_RESOLUTION_MS = 100;

const NS_PER_MS = 1e6;

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Start reporting; returns a function that stops it. */
export function startLoopReports(send: (r: LoopReport) => void, intervalMs: number): () => void {
  const histogram = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
  histogram.enable();
  let prevElu: EventLoopUtilization = performance.eventLoopUtilization();
  let prevAt = performance.now();
  const tick = (): void => {
    const now = performance.now();
    const elapsed = now - prevAt;
    const elu = performance.eventLoopUtilization(prevElu);
    prevElu = performance.eventLoopUtilization();
    prevAt = now;
    const delay = (ns: number): number => (Number.isFinite(ns) && ns > 0 ? Math.max(0, ns / NS_PER_MS - DELAY_RESOLUTION_MS) : 0);
    // The histogram drops the sample spanning a reset(): this timer's own lateness covers it.
    const lateness = Math.max(0, elapsed - intervalMs);
    const hasSamples = histogram.count > 0;
    send({
      elu: round(Math.min(1, Math.max(0, elu.utilization)), 3),
      delayMeanMs: round(hasSamples ? delay(histogram.mean) : lateness, 1),
      delayP99Ms: round(Math.max(hasSamples ? delay(histogram.percentile(99)) : 0, lateness), 1),
      delayMaxMs: round(Math.max(hasSamples ? delay(histogram.max) : 0, lateness), 1),
      intervalMs: round(elapsed, 1),
    });
    histogram.reset();
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    histogram.disable();
  };
}
