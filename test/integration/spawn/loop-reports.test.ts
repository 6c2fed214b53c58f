/**
 * Event-loop reports: a spawned Node app sends its loop utilisation and delay
 * over the control channel every LOOP_REPORT_INTERVAL_MS; a blocked loop
 * shows as high utilisation and delay.
 */
import test from "ava";
import type { LoopReport } from "../../../core/src/loader/messages.js";
import { silentLogger } from "../../../core/src/log.js";
import { Pool } from "../../../core/src/pool/pool.js";
import { fixtureApp, httpRequest, makeHarness, waitUntil, type Harness } from "../../helpers/spawn-harness.js";

let h: Harness;
test.before(async () => { h = await makeHarness("spawn-loop"); });
test.after.always(async () => { await h.cleanup(); });

test("a Node app reports its event loop: idle is low, a 1.2 s CPU burn is high utilisation and delay", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("load-app")));
  const reports: LoopReport[] = [];
  t.truthy(p.onLoopReport, "Node app processes offer loop reports");
  p.onLoopReport?.((r) => reports.push(r));
  // An interval right after start-up may still be busy (module loading, JIT) on a loaded machine: at
  // least one of the next three is idle.
  await waitUntil(() => reports.length >= 3, 10_000, "three loop reports");
  const idle = reports.slice(-3).reduce((a, r) => (r.elu < a.elu ? r : a));
  t.true(idle.elu < 0.5, `idle elu ${reports.slice(-3).map((r) => r.elu).join(", ")}`);
  t.true(idle.intervalMs > 100, `interval ${idle.intervalMs}`);
  const before = reports.length;
  // The report that follows a burn spans the burn and the part of the interval before it (the timer
  // cannot fire during the burn): with a 250 ms interval a 1.2 s burn is at least 1200/1450 = 0.83 of it.
  t.is((await httpRequest(p.address, { path: "/cpu?ms=1200", timeoutMs: 10_000 })).status, 200);
  await waitUntil(() => reports.slice(before).some((r) => r.elu > 0.8 && r.delayMaxMs >= 300), 10_000, "a busy loop report");
  t.pass();
});

test("a generic app (no loader) offers no loop reports", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("generic-app"), { appType: "generic", appStartCommand: "exec node server.js" }));
  t.is(p.onLoopReport, undefined);
});

test("the pool keeps each process's latest loop report with its arrival time (status().…processes[].loop)", async (t) => {
  const pool = new Pool({ spawner: h.spawner, log: silentLogger(), server: h.server() });
  t.teardown(() => pool.shutdown(10_000));
  const app = h.app(fixtureApp("load-app"));
  const s = await pool.checkout(app);
  s.release("ok");
  const loopOf = () => pool.status().groups[0]?.processes[0]?.loop;
  const first = Date.now();
  await waitUntil(() => (loopOf()?.at ?? 0) >= first, 10_000, "a loop report in the pool status");
  const seen = loopOf()?.at ?? 0;
  await waitUntil(() => (loopOf()?.at ?? 0) > seen, 10_000, "a later loop report");
  const l = loopOf();
  t.true(l !== undefined && l.elu >= 0 && l.elu <= 1 && l.delayP99Ms >= 0 && l.at <= Date.now());
});
