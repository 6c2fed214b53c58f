import test from "ava";
import { harness, pids, waitFor } from "../../helpers/pool-harness.js";
import type { Harness } from "../../helpers/pool-harness.js";
import type { AppOptions } from "../../../core/src/config/schema.js";

/** `workers` clients each doing checkout → hold 80–160 ms → release, until stopped. */
function load(h: Harness, app: AppOptions, workers: number): { stop: () => Promise<void>; failures: () => number } {
  let running = true;
  let failures = 0;
  const loops = Array.from({ length: workers }, async (_, i) => {
    while (running) {
      try {
        const s = await h.pool.checkout(app);
        await new Promise((r) => setTimeout(r, 80 + ((i * 37) % 80)));
        s.release("ok");
      } catch {
        failures++;
      }
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
    failures: () => failures,
  };
}

test("no per-process limit: grows from 1 to the pool maximum under sustained load, then shrinks after the idle time", async (t) => {
  const h = harness({ maxPoolSize: 3, poolIdleTimeMs: 800 });
  t.teardown(() => h.close());
  const app = h.app({ minInstances: 1 });
  (await h.pool.checkout(app)).release("ok");
  t.deepEqual(pids(h.pool, app.appGroupName).length, 1);
  let most = 0;
  const sampler = setInterval(() => {
    most = Math.max(most, h.pool.status().processCount);
  }, 5);
  t.teardown(() => clearInterval(sampler));
  const gen = load(h, app, 8);
  await waitFor("3 processes under load", () => pids(h.pool, app.appGroupName, "ready").length === 3, 20_000);
  await gen.stop();
  t.is(gen.failures(), 0);
  t.true(most <= 3, `never above maxPoolSize (saw ${most})`);
  await waitFor("shrink back to minInstances", () => pids(h.pool, app.appGroupName).length === 1, 15_000);
  t.is(h.spawner.live.length, 1, "retired processes were shut down");
});

test("no per-process limit: one slow request per process does not grow the group", async (t) => {
  const h = harness({ maxPoolSize: 4 });
  t.teardown(() => h.close());
  const app = h.app({ minInstances: 2 });
  const a = await h.pool.checkout(app);
  await waitFor("2 processes", () => pids(h.pool, app.appGroupName, "ready").length === 2);
  const b = await h.pool.checkout(app);
  t.not(a.pid, b.pid);
  const startCalls = h.spawner.spawnCalls;
  await new Promise((r) => setTimeout(r, 900)); // longer than the sustained-busy window
  t.is(h.spawner.spawnCalls, startCalls);
  a.release("ok");
  b.release("ok");
});

test("per-process limit: a full process spawns another; the request waits only while nothing can take it", async (t) => {
  const h = harness({ maxPoolSize: 6 });
  t.teardown(() => h.close());
  const app = h.app({ maxConcurrentRequestsPerProcess: 2, maxInstancesPerApp: 2 });
  const s1 = await h.pool.checkout(app);
  const s2 = await h.pool.checkout(app);
  t.is(s1.pid, s2.pid);
  const s3 = await h.pool.checkout(app); // waits for the second process
  t.not(s3.pid, s1.pid);
  const s4 = await h.pool.checkout(app);
  t.is(s4.pid, s3.pid);
  // At maxInstancesPerApp: the fifth waits in the queue without a spawn.
  const calls = h.spawner.spawnCalls;
  const p5 = h.pool.checkout(app);
  await waitFor("queued", () => h.pool.status().groups[0]?.queueLength === 1);
  t.is(h.spawner.spawnCalls, calls);
  s1.release("ok");
  const s5 = await p5;
  t.is(s5.pid, s1.pid);
  for (const s of [s2, s3, s4, s5]) s.release("ok");
});

test("server maxInstancesPerApp caps the group as well", async (t) => {
  const h = harness({ maxPoolSize: 6, maxInstancesPerApp: 1 });
  t.teardown(() => h.close());
  const app = h.app({ maxConcurrentRequestsPerProcess: 1 });
  const s1 = await h.pool.checkout(app);
  const p2 = h.pool.checkout(app);
  await waitFor("queued", () => h.pool.status().groups[0]?.queueLength === 1);
  await new Promise((r) => setTimeout(r, 100));
  t.is(h.spawner.spawnCalls, 1);
  s1.release("ok");
  (await p2).release("ok");
});

test("maxRequests recycles a process after N requests", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app({ maxRequests: 3 });
  const first: number[] = [];
  for (let i = 0; i < 3; i++) {
    const s = await h.pool.checkout(app);
    first.push(s.pid);
    s.release("ok");
  }
  t.is(new Set(first).size, 1);
  const old = h.spawner.byPid(first[0] ?? 0);
  await waitFor("old process shut down", () => old.hasExited);
  t.is(old.shutdownCalls, 1);
  t.is(old.killCalls, 0);
  const s = await h.pool.checkout(app);
  t.not(s.pid, old.pid);
  s.release("ok");
});

test("a draining process finishes its requests before shutdown; SIGKILL after the deadline", async (t) => {
  const h = harness({ processShutdownTimeoutMs: 300 });
  t.teardown(() => h.close());
  const app = h.app({ maxRequests: 2 });
  const a = await h.pool.checkout(app);
  const b = await h.pool.checkout(app);
  const fake = h.spawner.byPid(a.pid);
  fake.exitOnShutdown = false; // a stubborn app
  a.release("ok"); // processed 1
  b.release("ok"); // processed 2 → retire, idle → shutdown
  await waitFor("shutdown sent", () => fake.shutdownCalls === 1);
  await waitFor("killed after the deadline", () => fake.killCalls === 1 && fake.hasExited, 5_000);
  t.deepEqual(pids(h.pool, app.appGroupName).includes(fake.pid), false);
});

test("pool full: a new app evicts the least recently used idle process of another app", async (t) => {
  const h = harness({ maxPoolSize: 2 });
  t.teardown(() => h.close());
  const a = h.app({ minInstances: 2 });
  (await h.pool.checkout(a)).release("ok");
  await waitFor("a has 2", () => pids(h.pool, a.appGroupName, "ready").length === 2);
  const b = h.app({}, h.newRoot("b"));
  const sb = await h.pool.checkout(b);
  t.is(pids(h.pool, a.appGroupName, "ready").length, 1);
  t.is(pids(h.pool, b.appGroupName, "ready").length, 1);
  t.true(h.pool.status().groups.every((g) => g.processes.filter((p) => p.state === "ready").length <= 2));
  // a stays at 1: its top-up to minInstances never evicts another app.
  await new Promise((r) => setTimeout(r, 200));
  t.is(pids(h.pool, a.appGroupName, "ready").length, 1);
  sb.release("ok");
});

test("pool full and nothing idle: the request waits until another app's process frees up", async (t) => {
  const h = harness({ maxPoolSize: 2 });
  t.teardown(() => h.close());
  const a = h.app({}, h.newRoot("a"));
  const b = h.app({}, h.newRoot("b"));
  const c = h.app({}, h.newRoot("c"));
  const sa = await h.pool.checkout(a);
  const sb = await h.pool.checkout(b);
  let got = false;
  const pc = h.pool.checkout(c).then((s) => ((got = true), s));
  await waitFor("c queued", () => h.pool.status().groups.find((g) => g.name === c.appGroupName)?.queueLength === 1);
  await new Promise((r) => setTimeout(r, 150));
  t.false(got);
  const bPid = sb.pid;
  sb.release("ok");
  const sc = await pc;
  t.true(got);
  t.false(pids(h.pool, b.appGroupName, "ready").includes(bPid), "b's idle process made room");
  t.true(h.pool.status().groups.reduce((n, g) => n + g.processes.filter((p) => p.state === "ready").length, 0) <= 2);
  sa.release("ok");
  sc.release("ok");
});

test("setServerOptions() with a smaller pool retires idle processes over the limit", async (t) => {
  const h = harness({ maxPoolSize: 6 });
  t.teardown(() => h.close());
  const app = h.app({ minInstances: 3 });
  (await h.pool.checkout(app)).release("ok");
  await waitFor("3 processes", () => pids(h.pool, app.appGroupName, "ready").length === 3);
  h.pool.setServerOptions({ ...h.server, maxPoolSize: 1 });
  await waitFor("1 process", () => pids(h.pool, app.appGroupName).length === 1);
  t.is(h.pool.status().maxPoolSize, 1);
  const s = await h.pool.checkout(app);
  s.release("ok");
  await new Promise((r) => setTimeout(r, 150));
  t.is(pids(h.pool, app.appGroupName).length, 1, "min 3 is capped by the pool");
});

test("memory limit: a process over PassengerMemoryLimit is retired after its requests", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  h.spawner.nextPidOverride = process.pid; // sample our own (real) RSS, surely above 1 MB
  const app = h.app({ memoryLimitMB: 1 });
  const s = await h.pool.checkout(app);
  t.is(s.pid, process.pid);
  await waitFor("rss sampled", () => (h.pool.status().groups[0]?.processes.find((p) => p.pid === process.pid)?.rssBytes ?? 0) > 0);
  const fake = h.spawner.byPid(process.pid);
  t.is(fake.shutdownCalls, 0, "waits for the request in flight");
  t.is(h.pool.status().groups[0]?.processes.find((p) => p.pid === process.pid)?.state, "draining");
  s.release("ok");
  await waitFor("shut down", () => fake.shutdownCalls === 1);
});

test("pool full of one busy app: a starved app gets a fair share (a busy process drains for it)", async (t) => {
  const h = harness({ maxPoolSize: 3 });
  t.teardown(() => h.close());
  const a = h.app({ minInstances: 3 }, h.newRoot("a"));
  const b = h.app({}, h.newRoot("b"));
  const first = await h.pool.checkout(a);
  await waitFor("a has 3", () => pids(h.pool, a.appGroupName, "ready").length === 3);
  const held = [first, ...(await Promise.all([1, 2, 3, 4, 5].map(() => h.pool.checkout(a))))];
  const sb = await h.pool.checkout(b);
  t.is(pids(h.pool, b.appGroupName, "ready").length, 1);
  t.is(pids(h.pool, a.appGroupName, "ready").length, 2);
  const draining = pids(h.pool, a.appGroupName, "draining");
  t.is(draining.length, 1);
  const victim = h.spawner.byPid(draining[0] ?? 0);
  t.is(victim.shutdownCalls, 0, "its requests finish first");
  for (const s of held) s.release("ok");
  await waitFor("victim stopped", () => victim.hasExited);
  sb.release("ok");
});
