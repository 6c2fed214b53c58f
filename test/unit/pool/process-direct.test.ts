/**
 * PoolProcess accounting of handed-off connections (connection handoff):
 * a passed connection counts as a request about to arrive until the loader
 * reports it, which keeps least-busy routing and max_requests exact.
 */
import test from "ava";
import { silentLogger } from "../../../core/src/log.js";
import { PoolProcess, type DirectReport } from "../../../core/src/pool/process.js";

function proc(): PoolProcess {
  return new PoolProcess({
    pid: 4242, address: { kind: "unix", path: "/nonexistent.sock" }, exited: new Promise(() => undefined),
    shutdown: () => undefined, kill: () => undefined,
  }, "s1", 1, silentLogger(), 0);
}

const report = (r: Partial<DirectReport>): DirectReport => ({ inFlight: 0, upgraded: 0, connections: 0, finished: 0, peak: 0, adopted: 0, fresh: 0, ...r });

test("recordPassed() counts a passed connection as a request in flight until the loader received it", (t) => {
  const p = proc();
  p.recordPassed();
  p.recordPassed();
  t.is(p.totalInFlight, 2);
  t.is(p.directConnections, 2);
  // The loader received one, which has not brought its request yet; the other is still in transit.
  p.recordDirect(report({ connections: 1, adopted: 1, fresh: 1 }), 10);
  t.is(p.directPending, 2);
  t.is(p.directConnections, 2);
  // Both brought their request, one finished.
  p.recordDirect(report({ inFlight: 1, connections: 2, adopted: 2, finished: 1 }), 20);
  t.is(p.directPending, 0);
  t.is(p.totalInFlight, 1);
  t.is(p.processed, 1);
});

test("exhausted() is true once counted, running and arriving requests reach max_requests, and never for 0", (t) => {
  const p = proc();
  t.false(p.exhausted(0));
  t.false(p.exhausted(3));
  p.recordDirect(report({ adopted: 0, finished: 2 }), 10);
  t.false(p.exhausted(3));
  p.recordPassed(); // the third request is on its way: no fourth connection
  t.true(p.exhausted(3));
  t.false(p.exhausted(0));
  t.false(p.exhausted(4));
});

test("recordDirect() keeps the loader's peak (requests started in one loop turn) for the next loop report", (t) => {
  const p = proc();
  p.recordDirect(report({ peak: 5, adopted: 0 }), 10);
  p.recordLoop({ elu: 1, delayMeanMs: 0, delayP99Ms: 0, delayMaxMs: 0, intervalMs: 250 }, 20);
  t.is(p.loopPeakInFlight, 5);
  p.recordLoop({ elu: 1, delayMeanMs: 0, delayP99Ms: 0, delayMaxMs: 0, intervalMs: 250 }, 30);
  t.is(p.loopPeakInFlight, 0, "the peak covers one interval");
});
