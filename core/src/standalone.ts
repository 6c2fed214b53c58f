/**
 * Composition root of standalone mode (`ferry start`): instance directory,
 * spawner, pool, front HTTP server and admin API for one app. `main.ts` is the
 * module-mode counterpart. Tests start an instance in-process through
 * `startStandalone()`.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { affinitySettings, startAffinity, withClusterStatus, type AffinityService } from "./affinity/service.js";
import type { StandaloneConfig } from "./config/standalone-config.js";
import { ControlServer } from "./control/server.js";
import type { Logger } from "./log.js";
import { Pool } from "./pool/pool.js";
import { AppAgents } from "./exchange/relay/app-agents.js";
import { handleExchange } from "./exchange/handle.js";
import { DEFAULT_HEADER_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, FrontServer } from "./front/http/server.js";
import { ChildSpawner } from "./spawn/child-spawner.js";
import { handoffSettings } from "./front/http/handoff-settings.js";
import type { Spawner } from "./spawn/spawner.js";
import { FERRY_VERSION } from "./version.js";
import { metricsUrl } from "./metrics/server.js";
import { createMetrics } from "./metrics/service.js";
import type { PoolStatus } from "./control/status.js";

export interface StandaloneOptions {
  readonly config: StandaloneConfig;
  readonly log: Logger;
  /** Default: the real ChildSpawner. */
  readonly spawner?: Spawner;
  /** Reopen the instance's own log file (rotation); `ferry start` passes its logger's. */
  readonly reopenLog?: () => void;
  /** Start the app's first process at once instead of on the first request (default true). */
  readonly prestart?: boolean;
}

export interface StandaloneInstance {
  /** http://address:port/ */
  readonly url: string;
  readonly port: number;
  readonly instanceDir: string;
  readonly controlSocket: string;
  readonly pool: Pool;
  /** http://ADDR:PORT/metrics when --metrics-listen is set. */
  readonly metricsUrl: string | undefined;
  /** Shared session affinity, when --affinity-redis is set. */
  readonly affinity: AffinityService | undefined;
  /** Reopen the log file and the app's log files (SIGUSR1, `ferry reopen-logs`); resolves with how many. */
  reopenLogs(): Promise<number>;
  /** Graceful stop: stop accepting, drain until the deadline, stop the app processes. */
  stop(deadlineMs?: number): Promise<void>;
}

/**
 * Create `<registry>/ferry-<pid>` (or `ferry-<pid>-<n>` when taken), mode 0755 like
 * Passenger's: app processes running as another user must traverse it to reach
 * their socket dir; the tokens inside are 0600.
 */
async function makeInstanceDir(registryDir: string): Promise<string> {
  await fsp.mkdir(registryDir, { recursive: true });
  for (let n = 0; n < 1000; n++) {
    const dir = path.join(registryDir, n === 0 ? `ferry-${process.pid}` : `ferry-${process.pid}-${n}`);
    try {
      await fsp.mkdir(dir, { mode: 0o755 });
      await fsp.chmod(dir, 0o755);
      return dir;
    } catch (e: unknown) {
      if (typeof e === "object" && e !== null && Reflect.get(e, "code") === "EEXIST") continue;
      throw e;
    }
  }
  throw new Error(`Cannot create an instance dir in ${registryDir}: every name is taken`);
}

/**
 * Connection handoff (--connection-handoff) serves a connection's requests in
 * the app process, so it needs every per-request decision to be the app's
 * own: a Node app (the loader adopts connections), no sticky sessions (the
 * cookie picks a process per request), no concurrency limit (requests queue
 * in the core), no max request time (the core cuts slow requests) and no
 * shared affinity. Otherwise every connection is relayed.
 */
export function handoffEligible(config: StandaloneConfig, sharedAffinity: boolean): boolean {
  const app = config.app;
  return config.server.connectionHandoff === true && app.appType !== "generic" && !app.stickySessions &&
    app.maxConcurrentRequestsPerProcess <= 0 && app.maxRequestTimeMs === 0 && !sharedAffinity;
}

export async function startStandalone(opts: StandaloneOptions): Promise<StandaloneInstance> {
  const { config, log } = opts;
  const instanceDir = await makeInstanceDir(config.server.instanceRegistryDir);
  const socketDir = path.join(instanceDir, "apps.s");
  // Traversable, not listable: each app gets a private 0700 subdir (spawn/child-spawner.ts).
  await fsp.mkdir(socketDir, { mode: 0o711 });
  await fsp.chmod(socketDir, 0o711);

  const spawner = opts.spawner ?? new ChildSpawner({ log: log.child({ component: "spawner" }), socketDir, handoffSettings });
  // Built before the pool (its observer); reads the pool only when scraped.
  let statusOf: (() => PoolStatus) | undefined;
  const metrics = createMetrics(config.server.metricsListen, {
    status: () => statusOf?.() ?? { version: FERRY_VERSION, maxPoolSize: config.server.maxPoolSize, processCount: 0, groups: [] },
  }, log.child({ component: "metrics" }));
  const pool = new Pool({
    spawner, server: config.server, log: log.child({ component: "pool" }),
    ...(metrics !== undefined ? { observer: metrics.metrics, recorder: metrics.metrics } : {}),
  });
  const agents = new AppAgents();
  let affinity: AffinityService | undefined;
  const shared = affinitySettings(config.server);
  if (shared !== undefined) {
    try {
      affinity = await startAffinity(shared, {
        log,
        poolStatus: () => pool.status(),
        serveLocal: (ex, hook) => handleExchange(ex, { pool, log, agents, affinity: hook }),
      });
      affinity.registerApp(config.app);
    } catch (e: unknown) {
      await pool.shutdown(1_000).catch(() => undefined);
      agents.destroy();
      await fsp.rm(instanceDir, { recursive: true, force: true });
      throw e;
    }
  }
  const statusSource = withClusterStatus(pool, affinity);
  statusOf = () => statusSource.status();
  const front = new FrontServer({
    app: config.app, deps: { pool, log, agents, ...(affinity !== undefined ? { affinity: affinity.hook } : {}) }, log,
    ...(metrics !== undefined ? { wrap: metrics.wrap } : {}),
    headerTimeoutMs: config.server.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS,
    requestTimeoutMs: config.server.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    ...(handoffEligible(config, affinity !== undefined) ? { handOff: (fd: number) => pool.handOff(config.app, fd) } : {}),
  });
  let control: ControlServer | undefined;
  try {
    const addr = await front.listen(config.listen.port, config.listen.address, config.server.socketBacklog);
    const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
    const url = `http://${host}:${addr.port}/`;
    const metricsAddr = metrics === undefined ? undefined : await metrics.start();
    const properties = {
      pid: process.pid,
      version: FERRY_VERSION,
      integration_mode: "standalone",
      created_at: Date.now(),
      app_root: config.appRoot,
      url,
      ...(metricsAddr !== undefined ? { metrics_url: metricsUrl(metricsAddr) } : {}),
    };
    const reopenLogs = async (): Promise<number> => {
      opts.reopenLog?.();
      const apps = await spawner.reopenLogs?.() ?? 0;
      log.info({ appLogs: apps }, "Log files reopened");
      return apps + (opts.reopenLog !== undefined ? 1 : 0);
    };
    control = new ControlServer({ reopenLogs, instanceDir, pool: statusSource, log: log.child({ component: "control" }), properties, adminGroup: config.server.adminGroup ?? "" });
    await control.start();
    await control.writeRegistryFile("properties.json", JSON.stringify(properties, null, 2) + "\n");

    if (opts.prestart !== false) {
      const ac = new AbortController();
      pool.checkout(config.app, { signal: ac.signal }).then(
        (s) => s.release("ok"),
        (e: unknown) => log.warn({ err: e }, "the app could not be prestarted; the first request will retry"),
      );
    }

    let stopping: Promise<void> | undefined;
    const ctl = control;
    const stop = (deadlineMs = 30_000): Promise<void> => {
      stopping ??= (async () => {
        const until = Date.now() + deadlineMs;
        await front.close(deadlineMs);
        await affinity?.stop(Math.max(0, until - Date.now())).catch((e: unknown) => log.warn({ err: e }, "Cannot stop shared affinity cleanly"));
        await ctl.close().catch((e: unknown) => log.warn({ err: e }, "Cannot close the admin API"));
        await metrics?.stop().catch((e: unknown) => log.warn({ err: e }, "Cannot close the metrics endpoint"));
        await pool.shutdown(Math.max(1_000, until - Date.now()));
        agents.destroy();
        await fsp.rm(instanceDir, { recursive: true, force: true });
      })();
      return stopping;
    };
    return { url, port: addr.port, instanceDir, controlSocket: control.socketPath, pool, affinity, metricsUrl: properties.metrics_url, reopenLogs, stop };
  } catch (e: unknown) {
    await front.close(0).catch(() => undefined);
    await affinity?.stop(0).catch(() => undefined);
    await control?.close().catch(() => undefined);
    await metrics?.stop().catch(() => undefined);
    await pool.shutdown(1_000).catch(() => undefined);
    agents.destroy();
    await fsp.rm(instanceDir, { recursive: true, force: true });
    throw e;
  }
}
