import { rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { AppCrashedError, PoolShutdownError, SpawnError } from "../../../core/src/errors.js";
import { harness, pids, waitFor, type Harness } from "../../helpers/pool-harness.js";
import type { AppOptions } from "../../../core/src/config/schema.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Clients hammering the app until stopped; counts failed checkouts. */
function traffic(h: Harness, app: AppOptions, workers = 3): { stop: () => Promise<void>; failures: () => number; seen: Set<number> } {
  let running = true;
  let failures = 0;
  const seen = new Set<number>();
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      try {
        const s = await h.pool.checkout(app);
        seen.add(s.pid);
        await sleep(15);
        s.release("ok");
      } catch {
        failures++;
        await sleep(15);
      }
    }
  });
  return { stop: async () => ((running = false), void (await Promise.all(loops))), failures: () => failures, seen };
}

test("crash: the process is removed at once, open sessions see processGone, the group respawns", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app();
  const s = await h.pool.checkout(app);
  const fake = h.spawner.byPid(s.pid);
  fake.exit(1, null);
  await fake.exited;
  await new Promise((r) => setImmediate(r));
  t.true(s.processGone.aborted);
  t.true(s.processGone.reason instanceof AppCrashedError);
  t.false(pids(h.pool, app.appGroupName).includes(fake.pid), "removed without polling");
  s.release("app_error"); // harmless after the exit
  await waitFor("respawned", () => pids(h.pool, app.appGroupName, "ready").length === 1);
  const s2 = await h.pool.checkout(app);
  t.not(s2.pid, fake.pid);
  s2.release("ok");
});

test("crash by signal while idle is also replaced; quick repeated crashes back off", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app();
  (await h.pool.checkout(app)).release("ok");
  const [first] = pids(h.pool, app.appGroupName, "ready");
  h.spawner.byPid(first ?? 0).exit(null, "SIGSEGV");
  await waitFor("respawn", () => {
    const now = pids(h.pool, app.appGroupName, "ready");
    return now.length === 1 && now[0] !== first;
  });
  // Second quick crash in a row: respawn waits ≥ 1 s instead of looping.
  const calls = h.spawner.spawnCalls;
  const [pid] = pids(h.pool, app.appGroupName, "ready");
  h.spawner.byPid(pid ?? 0).exit(1, null);
  await sleep(400);
  t.is(h.spawner.spawnCalls, calls);
  await waitFor("respawn after backoff", () => h.spawner.spawnCalls === calls + 1, 5_000);
});

test("spawn failure: waiters get the SpawnError, later requests get it at once during the backoff, retries back off", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  h.spawner.behaviour = { kind: "fail", output: "Error: cannot find module 'express'" };
  const app = h.app();
  const e1 = await t.throwsAsync(h.pool.checkout(app), { instanceOf: SpawnError });
  t.is(e1?.output, "Error: cannot find module 'express'");
  const failedAt = Date.now();
  const st = h.pool.status().groups[0];
  t.is(st?.lastError?.code, "FERRY_ERR_SPAWN");
  t.is(st?.lastError?.output, "Error: cannot find module 'express'");
  const e2 = await t.throwsAsync(h.pool.checkout(app), { instanceOf: SpawnError });
  t.is(e2?.output, "Error: cannot find module 'express'");
  t.is(h.spawner.spawnCalls, 1, "no new spawn inside the backoff");
  await waitFor("first retry", () => h.spawner.spawnCalls === 2, 5_000);
  t.true(Date.now() - failedAt >= 800, "retry waited for the backoff");
  await sleep(1_000);
  t.is(h.spawner.spawnCalls, 2, "second backoff is longer (2 s)");
  h.spawner.behaviour = { kind: "ok" };
  await waitFor("recovered", () => pids(h.pool, app.appGroupName, "ready").length === 1, 6_000);
  t.is(h.pool.status().groups[0]?.lastError, null);
  (await h.pool.checkout(app)).release("ok");
});

test("start timeout: a spawn that never gets ready fails with FERRY_ERR_SPAWN_TIMEOUT", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  h.spawner.behaviour = { kind: "hang" };
  const app = h.app({ startTimeoutMs: 300 });
  const started = Date.now();
  const e = await t.throwsAsync(h.pool.checkout(app), { instanceOf: SpawnError });
  t.is(e?.code, "FERRY_ERR_SPAWN_TIMEOUT");
  t.true(Date.now() - started >= 250);
  t.true(h.spawner.requests[0]?.signal.aborted);
});

test("restart.txt: rolling restart with no failed request; old processes drain once new ones are ready", async (t) => {
  const h = harness({}, 150);
  t.teardown(() => h.close());
  const app = h.app({ minInstances: 2 });
  (await h.pool.checkout(app)).release("ok"); // first check records "absent"
  await waitFor("2 processes", () => pids(h.pool, app.appGroupName, "ready").length === 2);
  const old = pids(h.pool, app.appGroupName, "ready");
  const gen = traffic(h, app);
  let minReady = Infinity;
  let sawRestarting = false;
  const sampler = setInterval(() => {
    const g = h.pool.status().groups[0];
    sawRestarting ||= g?.restarting === true;
    minReady = Math.min(minReady, g?.processes.filter((p) => p.state === "ready").length ?? 0);
  }, 5);
  t.teardown(() => clearInterval(sampler));
  writeFileSync(join(h.root, "tmp", "restart.txt"), "");
  await waitFor("all processes replaced", () => {
    const now = pids(h.pool, app.appGroupName, "ready");
    return now.length === 2 && now.every((p) => !old.includes(p)) && h.pool.status().groups[0]?.restarting === false;
  });
  await gen.stop();
  t.true(sawRestarting);
  t.is(gen.failures(), 0);
  t.true(minReady >= 1, "something was always ready");
  for (const pid of old) {
    const f = h.spawner.byPid(pid);
    await waitFor(`old ${pid} stopped`, () => f.hasExited);
    t.is(f.shutdownCalls, 1);
  }
});

test("restart.txt: a new version that fails to start leaves the old processes serving", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app();
  const first = await h.pool.checkout(app);
  first.release("ok");
  h.spawner.behaviour = { kind: "fail", output: "SyntaxError: Unexpected token" };
  writeFileSync(join(h.root, "tmp", "restart.txt"), "");
  const s = await h.pool.checkout(app);
  t.is(s.pid, first.pid, "the old process serves while the new one starts");
  s.release("ok");
  await waitFor("restart failed", () => {
    const g = h.pool.status().groups[0];
    return g?.restarting === false && g.lastError !== null;
  });
  const g = h.pool.status().groups[0];
  t.is(g?.lastError?.output, "SyntaxError: Unexpected token");
  t.deepEqual(pids(h.pool, app.appGroupName, "ready"), [first.pid]);
  for (let i = 0; i < 3; i++) {
    const x = await h.pool.checkout(app);
    t.is(x.pid, first.pid);
    x.release("ok");
  }
  // A fixed deploy (touch again) replaces it.
  h.spawner.behaviour = { kind: "ok" };
  utimesSync(join(h.root, "tmp", "restart.txt"), new Date(), new Date(Date.now() + 5_000));
  (await h.pool.checkout(app)).release("ok");
  await waitFor("replaced", () => {
    const now = pids(h.pool, app.appGroupName, "ready");
    return now.length === 1 && now[0] !== first.pid;
  });
  t.is(h.pool.status().groups[0]?.lastError, null);
});

test("restart.txt: stat throttle delays detection; an unchanged file does not restart", async (t) => {
  const h = harness({ statThrottleRateMs: 400 });
  t.teardown(() => h.close());
  const app = h.app();
  writeFileSync(join(h.root, "tmp", "restart.txt"), "");
  const s = await h.pool.checkout(app); // records the existing file: no restart
  s.release("ok");
  await sleep(450);
  (await h.pool.checkout(app)).release("ok");
  await sleep(100);
  t.is(h.spawner.spawnCalls, 1);
  utimesSync(join(h.root, "tmp", "restart.txt"), new Date(), new Date(Date.now() + 10_000));
  (await h.pool.checkout(app)).release("ok"); // within the throttle: not seen yet
  await sleep(100);
  t.is(h.spawner.spawnCalls, 1);
  await sleep(400);
  (await h.pool.checkout(app)).release("ok");
  await waitFor("restarted", () => pids(h.pool, app.appGroupName, "ready").every((p) => p !== s.pid) && h.spawner.spawnCalls === 2);
});

test("restart requested during a restart coalesces into one rolling restart", async (t) => {
  const h = harness({}, 200);
  t.teardown(() => h.close());
  const app = h.app();
  const s = await h.pool.checkout(app);
  s.release("ok");
  t.is(await h.pool.restartApp(h.root), 1);
  t.is(await h.pool.restartApp(app.appGroupName), 1);
  t.is(await h.pool.restartApp("/no/such/app"), 0);
  await waitFor("restart done", () => {
    const g = h.pool.status().groups[0];
    return g?.restarting === false && (g.processes.filter((p) => p.state === "ready").length ?? 0) === 1 && !pids(h.pool, app.appGroupName).includes(s.pid);
  });
  t.true(h.spawner.spawnCalls <= 3, `bounded work (${h.spawner.spawnCalls} spawns)`);
  t.is(pids(h.pool, app.appGroupName, "ready").length, 1);
});

test("always_restart.txt restarts on every request while it exists", async (t) => {
  const h = harness({ statThrottleRateMs: 60_000 });
  t.teardown(() => h.close());
  const seen: number[] = [];
  const app2 = h.app({}, h.newRoot("always"));
  writeFileSync(join(app2.appRoot, "tmp", "always_restart.txt"), "");
  for (let i = 0; i < 3; i++) {
    const s = await h.pool.checkout(app2);
    s.release("ok");
    await waitFor("restart settled", () => h.pool.status().groups.find((g) => g.name === app2.appGroupName)?.restarting === false);
    seen.push(pids(h.pool, app2.appGroupName, "ready")[0] ?? 0);
  }
  t.is(new Set(seen).size, 3, "a new process after each request");
  rmSync(join(app2.appRoot, "tmp", "always_restart.txt"));
  const calls = h.spawner.spawnCalls;
  (await h.pool.checkout(app2)).release("ok");
  (await h.pool.checkout(app2)).release("ok");
  await sleep(100);
  t.is(h.spawner.spawnCalls, calls, "no restart once it is gone");
});

test("redeploy: changed restarts only groups whose options changed, off only records, all restarts everything", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const a = h.app({}, h.newRoot("a"));
  const b = h.app({}, h.newRoot("b"));
  const sa = await h.pool.checkout(a, { generation: 1 });
  const sb = await h.pool.checkout(b, { generation: 1 });
  sa.release("ok");
  sb.release("ok");
  const restartsDone = (name: string, oldPid: number): boolean => {
    const g = h.pool.status().groups.find((x) => x.name === name);
    return g?.restarting === false && g.processes.some((p) => p.state === "ready") && g.processes.every((p) => p.pid !== oldPid);
  };

  h.pool.redeploy(2, "changed");
  (await h.pool.checkout(a, { generation: 2 })).release("ok"); // same options
  const a2 = { ...a, env: { FOO: "bar" } };
  (await h.pool.checkout(b, { generation: 2 })).release("ok");
  await sleep(100);
  t.is(h.spawner.spawnCalls, 2, "unchanged options: no restart");
  h.pool.redeploy(3, "changed");
  (await h.pool.checkout(a2, { generation: 3 })).release("ok");
  await waitFor("a restarted", () => restartsDone(a.appGroupName, sa.pid));
  t.deepEqual(h.spawner.requests.at(-1)?.app.env, { FOO: "bar" }, "new options used for the spawn");
  t.is(pids(h.pool, b.appGroupName, "ready")[0], sb.pid, "b untouched");

  h.pool.redeploy(4, "off");
  const calls = h.spawner.spawnCalls;
  const b4 = { ...b, env: { X: "1" } };
  (await h.pool.checkout(b4, { generation: 4 })).release("ok");
  await sleep(100);
  t.is(h.spawner.spawnCalls, calls, "off: no restart");
  await h.pool.restartApp(b.appRoot);
  await waitFor("b restarted", () => restartsDone(b.appGroupName, sb.pid));
  t.deepEqual(h.spawner.requests.at(-1)?.app.env, { X: "1" }, "off: options recorded for future spawns");

  const before = [...pids(h.pool, a.appGroupName, "ready"), ...pids(h.pool, b.appGroupName, "ready")];
  h.pool.redeploy(5, "all");
  await waitFor("all restarted", () => {
    const now = [...pids(h.pool, a.appGroupName, "ready"), ...pids(h.pool, b.appGroupName, "ready")];
    return now.length === 2 && now.every((p) => !before.includes(p)) && h.pool.status().groups.every((g) => !g.restarting);
  });
  t.pass();
});

test("session outcomes: timeout recycles, app_error detaches only an unreachable process", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app();
  const s1 = await h.pool.checkout(app);
  s1.release("app_error"); // the fake's socket still accepts: keep it
  await sleep(200);
  t.deepEqual(pids(h.pool, app.appGroupName, "ready"), [s1.pid]);
  const s2 = await h.pool.checkout(app);
  h.spawner.byPid(s2.pid).stopListening();
  s2.release("app_error");
  await waitFor("unreachable process detached", () => !pids(h.pool, app.appGroupName, "ready").includes(s2.pid));
  const s3 = await h.pool.checkout(app);
  t.not(s3.pid, s2.pid);
  s3.release("timeout");
  t.false(pids(h.pool, app.appGroupName, "ready").includes(s3.pid), "no new requests for a timed-out process");
  await waitFor("timed-out process recycled", () => h.spawner.byPid(s3.pid).shutdownCalls === 1);
  const s4 = await h.pool.checkout(app);
  t.not(s4.pid, s3.pid);
  s4.release("ok");
});

test("upgraded connections: a retiring process aborts them (default) or waits for them", async (t) => {
  for (const abort of [true, false]) {
    const h = harness();
    try {
      const app = h.app({ abortWebsocketsOnProcessShutdown: abort });
      const ws = await h.pool.checkout(app);
      ws.markUpgraded();
      const fake = h.spawner.byPid(ws.pid);
      await h.pool.restartApp(app.appGroupName);
      await waitFor("old process retired", () => h.pool.status().groups[0]?.processes.find((p) => p.pid === ws.pid)?.state !== "ready");
      if (abort) {
        await waitFor("websocket aborted", () => ws.processGone.aborted);
        t.is(fake.shutdownCalls, 1);
      } else {
        await sleep(150);
        t.false(ws.processGone.aborted);
        t.is(fake.shutdownCalls, 0, "waits for the upgraded connection");
        ws.release("ok");
        await waitFor("shutdown after the connection ends", () => fake.shutdownCalls === 1);
      }
    } finally {
      await h.close();
    }
  }
});

test("upgraded connections keep a process from idle retirement", async (t) => {
  const h = harness({ poolIdleTimeMs: 300 });
  t.teardown(() => h.close());
  const app = h.app({ minInstances: 0 });
  const ws = await h.pool.checkout(app);
  ws.markUpgraded();
  await sleep(800);
  t.deepEqual(pids(h.pool, app.appGroupName, "ready"), [ws.pid]);
  ws.release("ok");
  await waitFor("idle retirement after the connection ends", () => pids(h.pool, app.appGroupName).length === 0, 5_000);
});

test("shutdown(): rejects waiters and new checkouts, lets in-flight finish, stops every process", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app({ maxConcurrentRequestsPerProcess: 1, maxInstancesPerApp: 1 });
  const s = await h.pool.checkout(app);
  const waiting = h.pool.checkout(app);
  await waitFor("queued", () => h.pool.status().groups[0]?.queueLength === 1);
  const fake = h.spawner.byPid(s.pid);
  const done = h.pool.shutdown(5_000);
  await t.throwsAsync(waiting, { instanceOf: PoolShutdownError });
  await t.throwsAsync(h.pool.checkout(app), { instanceOf: PoolShutdownError });
  await sleep(100);
  t.is(fake.shutdownCalls, 0, "in-flight request still running");
  s.release("ok");
  await done;
  t.true(fake.hasExited);
  t.is(fake.killCalls, 0);
});

test("shutdown(): SIGKILLs processes that do not stop by the deadline", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app();
  const s = await h.pool.checkout(app);
  const fake = h.spawner.byPid(s.pid);
  fake.exitOnShutdown = false;
  s.release("ok");
  const started = Date.now();
  await h.pool.shutdown(300);
  t.true(fake.hasExited);
  t.is(fake.killCalls, 1);
  t.true(Date.now() - started < 3_000);
});

test("status(): groups, processes and their fields", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  h.spawner.nextPidOverride = process.pid;
  const app = h.app();
  const s = await h.pool.checkout(app);
  await waitFor("metrics sampled", () => (h.pool.status().groups[0]?.processes[0]?.rssBytes ?? 0) > 0);
  const st = h.pool.status();
  t.is(st.maxPoolSize, 6);
  t.is(st.processCount, 1);
  const g = st.groups[0];
  t.is(g?.name, app.appGroupName);
  t.is(g?.appRoot, app.appRoot);
  t.is(g?.appEnv, "production");
  t.is(g?.queueLength, 0);
  t.is(g?.spawning, 0);
  t.false(g?.restarting);
  const p = g?.processes[0];
  t.is(p?.pid, process.pid);
  t.is(p?.state, "ready");
  t.is(p?.inFlight, 1);
  t.true((p?.startedAt ?? 0) > 0 && (p?.lastUsedAt ?? 0) >= (p?.startedAt ?? 0));
  t.true((p?.rssBytes ?? 0) > 1_000_000);
  t.is(typeof p?.cpuPercent, "number");
  t.notThrows(() => JSON.stringify(st));
  s.release("ok");
});

test("after an app_error, a retried checkout does not get the suspect process before its probe answers", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app();
  const s1 = await h.pool.checkout(app);
  const fake = h.spawner.byPid(s1.pid);
  fake.stopListening(); // like a process that died a moment before its exit is reported
  s1.release("app_error");
  const s2 = await h.pool.checkout(app); // the request path's retry
  t.not(s2.pid, s1.pid);
  s2.release("ok");
  t.false(pids(h.pool, app.appGroupName, "ready").includes(s1.pid));
});

test("processGone still fires for a session released with app_error when the process then exits", async (t) => {
  const h = harness();
  t.teardown(() => h.close());
  const app = h.app();
  const s = await h.pool.checkout(app);
  const fake = h.spawner.byPid(s.pid);
  fake.stopListening();
  s.release("app_error");
  t.false(s.processGone.aborted);
  fake.exit(1, null);
  await waitFor("processGone after release", () => s.processGone.aborted, 2_000);
  // A released "ok" session is not tracked.
  const s2 = await h.pool.checkout(app);
  s2.release("ok");
  h.spawner.byPid(s2.pid).exit(1, null);
  await waitFor("gone", () => !pids(h.pool, app.appGroupName).includes(s2.pid));
  t.false(s2.processGone.aborted);
});
