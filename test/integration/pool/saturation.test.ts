/**
 * Scaling on saturation with real Node app processes (docs/scaling.md): CPU-bound
 * load in bursts shorter than 500 ms grows a group from 1 process to its limit
 * and back after the idle time; I/O-wait load of the same concurrency leaves it
 * at one process.
 */
import test from "ava";
import type { AppOptions } from "../../../core/src/config/schema.js";
import { silentLogger } from "../../../core/src/log.js";
import { Pool } from "../../../core/src/pool/pool.js";
import { fixtureApp, httpRequest, makeHarness, waitUntil, type Harness } from "../../helpers/spawn-harness.js";

let h: Harness;
test.before(async () => { h = await makeHarness("pool-saturation"); });
test.after.always(async () => { await h.cleanup(); });

const CONCURRENCY = 12;

/** `CONCURRENCY` clients sending `path` through the pool during `burstMs`, pausing `gapMs` between bursts, until stopped. */
function load(pool: Pool, app: AppOptions, path: string, burstMs: number, gapMs: number): { stop: () => Promise<{ ok: number; failed: number }> } {
  let running = true;
  let ok = 0;
  let failed = 0;
  const client = async (): Promise<void> => {
    while (running) {
      const burstEnd = Date.now() + burstMs;
      while (running && Date.now() < burstEnd) {
        try {
          const s = await pool.checkout(app, { signal: AbortSignal.timeout(20_000) });
          try {
            const r = await httpRequest(s.address, { path, timeoutMs: 20_000 });
            if (r.status === 200) ok++;
            else failed++;
            s.release("ok");
          } catch (e: unknown) {
            s.release("app_error");
            throw e;
          }
        } catch {
          failed++;
        }
      }
      if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
    }
  };
  const clients = Array.from({ length: CONCURRENCY }, client);
  return {
    stop: async () => {
      running = false;
      await Promise.all(clients);
      return { ok, failed };
    },
  };
}

function processes(pool: Pool, state?: "ready"): number {
  return (pool.status().groups[0]?.processes ?? []).filter((p) => state === undefined || p.state === state).length;
}

test.serial("CPU-bound bursts (300 ms on, 400 ms off: each shorter than 500 ms) grow the group from 1 to its limit, and it shrinks back after the idle time", async (t) => {
  const pool = new Pool({ spawner: h.spawner, log: silentLogger(), server: h.server({ maxPoolSize: 6, poolIdleTimeMs: 1500 }) });
  t.teardown(() => pool.shutdown(10_000));
  const app = h.app(fixtureApp("load-app"), { minInstances: 1, maxInstancesPerApp: 3, maxRequestQueueSize: 1000 });
  (await pool.checkout(app)).release("ok");
  t.is(processes(pool), 1);
  const gen = load(pool, app, "/cpu?ms=10", 300, 400);
  await waitUntil(() => processes(pool, "ready") === 3, 45_000, "3 ready processes under CPU-bound bursts");
  const done = await gen.stop();
  t.is(done.failed, 0);
  t.true(done.ok > 0);
  t.true(processes(pool) <= 3, "never above the per-app limit");
  await waitUntil(() => processes(pool) === 1, 20_000, "the group to shrink back to 1 process");
});

test.serial("I/O-wait load of the same concurrency (each request waits 400 ms) stays on one process", async (t) => {
  const pool = new Pool({ spawner: h.spawner, log: silentLogger(), server: h.server({ maxPoolSize: 6, poolIdleTimeMs: 1500 }) });
  t.teardown(() => pool.shutdown(10_000));
  const app = h.app(fixtureApp("load-app"), { minInstances: 1, maxInstancesPerApp: 3, maxRequestQueueSize: 1000 });
  (await pool.checkout(app)).release("ok");
  let most = 0;
  let elu = 0;
  const sampler = setInterval(() => {
    most = Math.max(most, processes(pool));
    elu = Math.max(elu, pool.status().groups[0]?.processes[0]?.loop?.elu ?? 0);
  }, 20);
  t.teardown(() => clearInterval(sampler));
  const gen = load(pool, app, "/io?ms=400", 400, 400);
  const until = Date.now() + 5_000;
  await waitUntil(() => Date.now() >= until, 10_000, "5 s of I/O-wait load");
  const done = await gen.stop();
  clearInterval(sampler);
  t.is(done.failed, 0);
  t.true(done.ok >= CONCURRENCY * 5, `requests served: ${done.ok}`);
  t.is(most, 1, "no process was added");
  t.true(elu < 0.9, `event loop never saturated (max ELU ${elu})`);
});
