/** unhealthy() (core/src/policy/health.ts): table of stuck loops and failed checks. */
import test from "ava";
import { unhealthy } from "../../../core/src/policy/health.js";

const limits = { eventLoopTimeoutMs: 2_000, maxFailures: 3 };

test("unhealthy() is null for a process reporting in time and passing its checks", (t) => {
  t.is(unhealthy({ loopAt: 9_000, failures: 0, lastFailure: "" }, limits, 10_000), null);
  t.is(unhealthy({ loopAt: 8_000, failures: 2, lastFailure: "x" }, limits, 10_000), null);
});

test("unhealthy() finds a stuck event loop once the last report is older than the timeout", (t) => {
  const r = unhealthy({ loopAt: 7_500, failures: 0, lastFailure: "" }, limits, 10_000);
  t.is(r?.kind, "event_loop");
  t.regex(r?.why ?? "", /no report for 2\.5 s, limit 2 s/);
});

test("unhealthy() does not judge a loop that never reported, nor any loop when the timeout is 0", (t) => {
  t.is(unhealthy({ loopAt: null, failures: 0, lastFailure: "" }, limits, 1e9), null);
  t.is(unhealthy({ loopAt: 0, failures: 0, lastFailure: "" }, { ...limits, eventLoopTimeoutMs: 0 }, 1e9), null);
});

test("unhealthy() replaces after maxFailures failed checks in a row, and not when checks are off", (t) => {
  const r = unhealthy({ loopAt: null, failures: 3, lastFailure: "GET /health answered 500" }, limits, 0);
  t.deepEqual(r, { kind: "health_check", why: "its health check failed 3 times in a row (GET /health answered 500)" });
  t.is(unhealthy({ loopAt: null, failures: 99, lastFailure: "x" }, { ...limits, maxFailures: 0 }, 0), null);
});
