/**
 * Standalone mode (`ferry start`): an instance (instance.ts) for one app,
 * configured by `ferry start`'s flags, environment and Passengerfile
 * (config/standalone-config.ts), in a new instance directory, behind an HTTP
 * front server (front/http/front-server.ts). module-mode.ts is the counterpart
 * behind mod_ferry. Tests start an instance in-process through
 * `startStandalone()`.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import type { AffinityService } from "./affinity/service.js";
import type { StandaloneConfig } from "./config/standalone-config.js";
import { handoffSettings } from "./front/http/handoff-settings.js";
import { DEFAULT_HEADER_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, FrontServer } from "./front/http/front-server.js";
import { poweredBy } from "./exchange/headers.js";
import { startInstance } from "./instance.js";
import { StaticFiles } from "./loader/static-files.js";
import type { Logger } from "./log.js";
import type { Pool } from "./pool/pool.js";
import type { Spawner } from "./spawn/spawner.js";

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
 * Connection handoff (on unless --no-connection-handoff) serves a
 * connection's requests in the app process, so it needs every per-request
 * decision to be the app's own: a Node app (the loader adopts connections),
 * no sticky sessions (the cookie picks a process per request), no
 * concurrency limit (requests queue in the core) and no shared affinity.
 * Otherwise every connection is relayed. (max_request_time is applied by the
 * loader, front/http/handoff-settings.ts.)
 */
export function handoffEligible(config: StandaloneConfig, sharedAffinity: boolean): boolean {
  const app = config.app;
  return config.server.connectionHandoff === true && app.appType !== "generic" && !app.stickySessions &&
    app.maxConcurrentRequestsPerProcess <= 0 && !sharedAffinity;
}

export async function startStandalone(opts: StandaloneOptions): Promise<StandaloneInstance> {
  const { config, log } = opts;
  const instanceDir = await makeInstanceDir(config.server.instanceRegistryDir);
  let url = "";
  let port = 0;
  // `--static-files-dir` (default public): answered by the front for relayed requests, by the loader on handed-off connections.
  const staticDir = config.server.staticFilesDir ?? "";
  const staticFiles = staticDir === "" ? undefined
    : new StaticFiles({ root: path.resolve(config.appRoot, staticDir), poweredBy: poweredBy(config.app) });
  const instance = await startInstance({
    server: config.server,
    instanceDir,
    log,
    ...(opts.spawner !== undefined ? { spawner: opts.spawner } : {}),
    handoffSettings,
    properties: { integration_mode: "standalone", app_root: config.appRoot },
    ...(opts.reopenLog !== undefined ? { reopenOwnLog: opts.reopenLog } : {}),
    app: config.app,
    ...(opts.prestart !== false ? { prestart: config.app } : {}),
    removeInstanceDir: true,
    front: (parts) => {
      const { pool, affinity } = parts;
      const front = new FrontServer({
        app: config.app, deps: { pool, log, agents: parts.agents, ...(affinity !== undefined ? { affinity: affinity.hook } : {}) }, log,
        ...(parts.metrics !== undefined ? { wrap: parts.metrics.wrap } : {}),
        headerTimeoutMs: config.server.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS,
        requestTimeoutMs: config.server.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        ...(handoffEligible(config, affinity !== undefined) ? { handOff: (fd: number) => pool.handOff(config.app, fd) } : {}),
        ...(staticFiles !== undefined ? { staticFiles } : {}),
      });
      return {
        start: async () => {
          const addr = await front.listen(config.listen.port, config.listen.address, config.server.socketBacklog);
          const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
          url = `http://${host}:${addr.port}/`;
          port = addr.port;
          return { url };
        },
        close: (deadlineMs) => front.close(deadlineMs),
      };
    },
  });
  return {
    url,
    port,
    instanceDir,
    controlSocket: instance.control.socketPath,
    pool: instance.pool,
    affinity: instance.affinity,
    metricsUrl: instance.metricsUrl,
    reopenLogs: () => instance.reopenLogs(),
    stop: (deadlineMs) => instance.stop(deadlineMs),
  };
}
