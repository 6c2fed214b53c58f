/**
 * Issue 4, "at most PassengerMaxPoolSize app processes exist at any time",
 * at the pool level (a Pool over the FakeSpawner, whose fakes exit only when
 * the test or their shutdown says so): when a new app needs room, the idle
 * process evicted for it must have exited before the new one is spawned; a
 * victim that ignores the shutdown is killed after the shutdown timeout, so
 * the wait is bounded; a rolling restart still goes through in a full pool.
 */
import test from "ava";
import { harness, pids, waitFor, type Harness } from "../../helpers/pool-harness.js";

/** Fill a pool of 2 with app "a" (2 idle processes) and return the harness and a's options. */
async function fullPool(): Promise<{ h: Harness; a: ReturnType<Harness["app"]> }> {
  const h = harness({ maxPoolSize: 2 });
  const a = h.app({ minInstances: 2 });
  (await h.pool.checkout(a)).release("ok");
  await waitFor("a has 2 processes", () => pids(h.pool, a.appGroupName, "ready").length === 2);
  return { h, a };
}

test("an evicted process exits before the new app's process is spawned", async (t) => {
  const { h } = await fullPool();
  t.teardown(() => h.close());
  for (const p of h.spawner.live) p.exitOnShutdown = false;
  let maxLive = h.spawner.live.length;
  const watch = setInterval(() => (maxLive = Math.max(maxLive, h.spawner.live.length)), 1);
  t.teardown(() => clearInterval(watch));

  const b = h.app({}, h.newRoot("b"));
  const pending = h.pool.checkout(b);
  await waitFor("a victim is told to shut down", () => h.spawner.processes.some((p) => p.shutdownCalls > 0));
  const victim = h.spawner.processes.find((p) => p.shutdownCalls > 0);
  if (victim === undefined) return t.fail("no victim");
  // While the victim is still running, b's process is not started.
  await new Promise((r) => setTimeout(r, 150));
  t.is(h.spawner.spawnCalls, 2, "no spawn for b while the victim lives");
  t.false(victim.hasExited);

  victim.exit(0);
  const session = await pending;
  t.is(h.spawner.spawnCalls, 3);
  t.true(maxLive <= 2, `${maxLive} live processes at once`);
  session.release("ok");
});

test("a victim that ignores the shutdown is killed after the shutdown timeout, then the new app is served", async (t) => {
  const { h } = await fullPool();
  t.teardown(() => h.close());
  for (const p of h.spawner.live) p.exitOnShutdown = false;
  const b = h.app({}, h.newRoot("b"));
  const started = Date.now();
  const session = await h.pool.checkout(b);
  const took = Date.now() - started;
  t.true(h.spawner.processes.some((p) => p.killCalls > 0), "the victim was killed");
  t.true(took >= h.server.processShutdownTimeoutMs - 50, `served after ${took} ms`);
  t.true(h.spawner.live.length <= 2);
  session.release("ok");
});

test("a rolling restart in a full pool still completes (it may use one extra process)", async (t) => {
  const { h, a } = await fullPool();
  t.teardown(() => h.close());
  const before = pids(h.pool, a.appGroupName, "ready");
  t.is(await h.pool.restartApp(a.appRoot), 1);
  await waitFor("a's processes are all new", () => {
    const now = pids(h.pool, a.appGroupName, "ready");
    return now.length === 2 && now.every((p) => !before.includes(p));
  });
  t.true(h.spawner.live.length <= 3);
  const s = await h.pool.checkout(a);
  t.false(before.includes(s.pid));
  s.release("ok");
});

test("after the pool size is lowered, a new app is served at once: idle processes over the limit make room", async (t) => {
  const h = harness({ maxPoolSize: 4, poolIdleTimeMs: 300_000 });
  t.teardown(() => h.close());
  const a = h.app({ minInstances: 2, maxConcurrentRequestsPerProcess: 1 });
  const b = h.app({ minInstances: 2, maxConcurrentRequestsPerProcess: 1 }, h.newRoot("b"));
  // Four busy processes: nothing idle to trim when the limit drops.
  const busy = [await h.pool.checkout(a), await h.pool.checkout(a), await h.pool.checkout(b), await h.pool.checkout(b)];
  t.is(new Set(busy.map((s) => s.pid)).size, 4);
  h.pool.setServerOptions({ ...h.server, maxPoolSize: 2, poolIdleTimeMs: 300_000 });
  for (const s of busy) s.release("ok");
  // Now 4 idle processes in a pool of 2; the periodic trim is seconds away.
  const c = h.app({}, h.newRoot("c"));
  const started = Date.now();
  const sc = await h.pool.checkout(c);
  const took = Date.now() - started;
  t.true(took < 3_000, `served after ${took} ms`);
  await waitFor("the pool back within its size", () => h.spawner.live.length <= 2);
  sc.release("ok");
});
