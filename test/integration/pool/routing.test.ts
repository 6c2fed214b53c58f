import test from "ava";
import { AbortedError, QueueFullError, QueueTimeoutError } from "../../../core/src/errors.js";
import type { Session } from "../../../core/src/pool/session.js";
import { harness, pids, waitFor } from "../../helpers/pool-harness.js";

test("checkout() waits for the first spawn, then serves from the new process", async (t) => {
  const h = harness({}, 100);
  t.teardown(() => h.close());
  const app = h.app();
  const s = await h.pool.checkout(app);
  t.is(h.spawner.spawnCalls, 1);
  t.is(h.spawner.processes[0]?.pid, s.pid);
  t.deepEqual(s.address, h.spawner.processes[0]?.address);
  t.is(s.groupName, app.appGroupName);
  t.regex(s.stickyId, /^[1-9][0-9]*$/);
  t.false(s.processGone.aborted);
  s.release("ok");
  s.release("ok"); // idempotent
  const st = h.pool.status().groups[0];
  t.is(st?.processes[0]?.processed, 1);
  t.is(st?.processes[0]?.inFlight, 0);
});

test("least busy routing spreads concurrent requests over every process", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app({ minInstances: 3 });
  const first = await h.pool.checkout(app);
  await waitFor("3 processes", () => pids(h.pool, app.appGroupName).length === 3);
  const rest = await Promise.all([1, 2, 3, 4, 5].map(() => h.pool.checkout(app)));
  const all = [first, ...rest];
  const counts = new Map<number, number>();
  for (const s of all) counts.set(s.pid, (counts.get(s.pid) ?? 0) + 1);
  t.is(counts.size, 3, "every process got requests");
  t.deepEqual([...counts.values()], [2, 2, 2]);
  for (const s of all) s.release("ok");
  // Sequential requests go to the oldest process (ties), so the others can fall idle.
  const seq: number[] = [];
  for (let i = 0; i < 4; i++) {
    const s = await h.pool.checkout(app);
    seq.push(s.pid);
    s.release("ok");
  }
  t.is(new Set(seq).size, 1);
});

test("queue overflow rejects with QueueFullError (503) at once; queued requests are served in order", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app({ maxConcurrentRequestsPerProcess: 1, maxInstancesPerApp: 1, maxRequestQueueSize: 2 });
  const held = await h.pool.checkout(app);
  const order: string[] = [];
  const q1 = h.pool.checkout(app).then((s) => (order.push("q1"), s));
  const q2 = h.pool.checkout(app).then((s) => (order.push("q2"), s));
  await waitFor("2 queued", () => h.pool.status().groups[0]?.queueLength === 2);
  const e = await t.throwsAsync(h.pool.checkout(app), { instanceOf: QueueFullError });
  t.is(e?.httpStatus, 503);
  t.is(e?.code, "FERRY_ERR_QUEUE_FULL");
  held.release("ok");
  const s1 = await q1;
  t.is(order.join(), "q1");
  s1.release("ok");
  const s2 = await q2;
  t.deepEqual(order, ["q1", "q2"]);
  s2.release("ok");
  t.is(h.pool.status().groups[0]?.queueLength, 0);
});

test("PassengerMaxRequestQueueTime: a request queued longer gets QueueTimeoutError (504); one dispatched in time is served", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app({ maxConcurrentRequestsPerProcess: 1, maxInstancesPerApp: 1, maxRequestQueueTimeMs: 300 });
  const held = await h.pool.checkout(app);
  const started = Date.now();
  const late = h.pool.checkout(app);
  await waitFor("1 queued", () => h.pool.status().groups[0]?.queueLength === 1);
  const e = await t.throwsAsync(late, { instanceOf: QueueTimeoutError });
  t.is(e?.httpStatus, 504);
  t.is(e?.code, "FERRY_ERR_QUEUE_TIMEOUT");
  t.true(Date.now() - started >= 250, "not before the queue time");
  t.is(h.pool.status().groups[0]?.queueLength, 0, "it left the queue");
  // A waiter dispatched before its time is served, and its timer does not fire later.
  const inTime = h.pool.checkout(app);
  await waitFor("1 queued", () => h.pool.status().groups[0]?.queueLength === 1);
  held.release("ok");
  const s = await inTime;
  await new Promise((r) => setTimeout(r, 400));
  s.release("ok");
  t.is(h.pool.status().groups[0]?.processes[0]?.processed, 2);
});

test("maxRequestQueueSize 0 is unbounded", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app({ maxConcurrentRequestsPerProcess: 1, maxInstancesPerApp: 1, maxRequestQueueSize: 0 });
  const held = await h.pool.checkout(app);
  const waiting = Array.from({ length: 150 }, () => h.pool.checkout(app));
  await waitFor("150 queued", () => h.pool.status().groups[0]?.queueLength === 150);
  held.release("ok");
  for (const w of waiting) (await w).release("ok");
  t.is(h.pool.status().groups[0]?.processes[0]?.processed, 151);
});

test("an aborted waiter leaves the queue with AbortedError", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app({ maxConcurrentRequestsPerProcess: 1, maxInstancesPerApp: 1, maxRequestQueueSize: 1 });
  const held = await h.pool.checkout(app);
  const ac = new AbortController();
  const waiting = h.pool.checkout(app, { signal: ac.signal });
  await waitFor("1 queued", () => h.pool.status().groups[0]?.queueLength === 1);
  ac.abort();
  await t.throwsAsync(waiting, { instanceOf: AbortedError });
  t.is(h.pool.status().groups[0]?.queueLength, 0);
  // The slot is free again for another waiter.
  const next = h.pool.checkout(app);
  held.release("ok");
  (await next).release("ok");
  await t.throwsAsync(h.pool.checkout(app, { signal: AbortSignal.abort() }), { instanceOf: AbortedError });
});

test("sticky sessions pin to the process; stale ids go to the least busy; busy pinned process is waited for", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app({ minInstances: 2, stickySessions: true, maxConcurrentRequestsPerProcess: 1 });
  (await h.pool.checkout(app)).release("ok");
  await waitFor("2 processes", () => pids(h.pool, app.appGroupName).length === 2);
  const procs = h.pool.status().groups[0]?.processes ?? [];
  const second = procs[1];
  if (second === undefined) return t.fail("no second process");
  t.not(procs[0]?.stickyId, second.stickyId, "sticky ids are unique");
  for (let i = 0; i < 5; i++) {
    const s = await h.pool.checkout(app, { stickyId: second.stickyId });
    t.is(s.pid, second.pid);
    s.release("ok");
  }
  const stale = await h.pool.checkout(app, { stickyId: "12345" });
  t.true(stale.pid > 0);
  stale.release("ok");
  // Pinned process at its limit: wait for it rather than go elsewhere.
  const holding = await h.pool.checkout(app, { stickyId: second.stickyId });
  let got: Session | null = null;
  const waiting = h.pool.checkout(app, { stickyId: second.stickyId }).then((s) => (got = s));
  await waitFor("sticky waiter queued", () => h.pool.status().groups[0]?.queueLength === 1);
  const other = await h.pool.checkout(app); // a cookieless request still goes to the free process
  t.not(other.pid, second.pid);
  t.is(got, null);
  holding.release("ok");
  await waiting;
  t.is((got as Session | null)?.pid, second.pid);
  (got as Session | null)?.release("ok");
  other.release("ok");
});

test("sticky ids are ignored when sticky sessions are off", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app({ minInstances: 2 });
  (await h.pool.checkout(app)).release("ok");
  await waitFor("2 processes", () => pids(h.pool, app.appGroupName).length === 2);
  const second = h.pool.status().groups[0]?.processes[1];
  const s = await h.pool.checkout(app, { stickyId: second?.stickyId ?? "" });
  t.not(s.pid, second?.pid);
  s.release("ok");
});

test("markUpgraded() frees the in-flight slot but keeps the connection counted", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app({ maxConcurrentRequestsPerProcess: 1, maxInstancesPerApp: 1 });
  const ws = await h.pool.checkout(app);
  ws.markUpgraded();
  const p = h.pool.status().groups[0]?.processes[0];
  t.is(p?.inFlight, 0);
  t.is(p?.upgraded, 1);
  const s = await h.pool.checkout(app); // not queued: the upgrade no longer counts
  t.is(s.pid, ws.pid);
  s.release("ok");
  ws.release("ok");
  const after = h.pool.status().groups[0]?.processes[0];
  t.is(after?.upgraded, 0);
  t.is(after?.processed, 2);
});
