/**
 * Helpers for pool integration tests: a Pool over a FakeSpawner with short
 * timings, app options in a temp app root, and condition polling with a deadline.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeAppOptions, SERVER_DEFAULTS, type AppOptions, type ServerOptions } from "../../core/src/config/schema.js";
import { silentLogger } from "../../core/src/log.js";
import { Pool } from "../../core/src/pool/pool.js";
import { FakeSpawner } from "./fake-spawner.js";

/** Poll `cond` every 10 ms until true; throw with `what` after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Harness {
  readonly pool: Pool;
  /** The server options the pool was built with. */
  readonly server: ServerOptions;
  readonly spawner: FakeSpawner;
  readonly root: string;
  app(over?: Partial<AppOptions>, root?: string): AppOptions;
  /** A second app root (another group). */
  newRoot(name: string): string;
  close(): Promise<void>;
}

export function harness(server: Partial<ServerOptions> = {}, spawnDelayMs = 20): Harness {
  const base = mkdtempSync(join(tmpdir(), "ferry-pool-test-"));
  const root = join(base, "app");
  mkdirSync(join(root, "tmp"), { recursive: true });
  const spawner = new FakeSpawner({ delayMs: spawnDelayMs });
  const opts: ServerOptions = { ...SERVER_DEFAULTS, processShutdownTimeoutMs: 2_000, statThrottleRateMs: 0, ...server };
  const pool = new Pool({ spawner, log: silentLogger(), server: opts });
  return {
    pool,
    server: opts,
    spawner,
    root,
    app: (over = {}, r = root) => makeAppOptions(r, { maxRequestQueueSize: 100, ...over }),
    newRoot: (name) => {
      const r = join(base, name);
      mkdirSync(join(r, "tmp"), { recursive: true });
      return r;
    },
    close: async () => {
      await pool.shutdown(3_000);
      spawner.cleanup();
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Live (ready or draining) pids of the group in the pool status. */
export function pids(pool: Pool, groupName: string, state?: "ready" | "draining"): number[] {
  const g = pool.status().groups.find((x) => x.name === groupName);
  return (g?.processes ?? []).filter((p) => state === undefined || p.state === state).map((p) => p.pid);
}
