/**
 * Module mode: an instance (instance.ts) behind mod_ferry (or the nginx
 * module), configured by the core config file the module writes
 * (docs/core-config.md, config/core-config.ts). Its front is the module
 * listener on `<instance dir>/module.sock`; a re-read config (SIGHUP, an
 * `apachectl graceful`) is applied with reload(). main.ts runs it as a process.
 */
import { promises as fsp } from "node:fs";
import type { ControlServer } from "./control/admin-api.js";
import type { CoreConfig } from "./config/core-config.js";
import type { ServerOptions } from "./config/schema.js";
import { ConfigError } from "./errors.js";
import { ModuleListener } from "./front/module/listener.js";
import { startInstance } from "./instance.js";
import { readPidFile } from "./os/probes.js";
import { pinoLevelFor, type Logger } from "./log.js";
import type { MetricsService } from "./metrics/service.js";
import type { Pool } from "./pool/pool.js";
import type { Spawner } from "./spawn/spawner.js";
import { FERRY_VERSION } from "./version.js";

/**
 * Shared affinity's settings (docs/affinity.md), with their config keys: the
 * cluster service starts with the core, so a reload that changes one says
 * when it applies instead of ignoring it silently.
 */
const AFFINITY_KEYS: ReadonlyArray<readonly [keyof ServerOptions, string]> = [
  ["affinityRedis", "affinity_redis"], ["affinityNodeName", "affinity_node_name"], ["affinityListen", "affinity_listen"],
  ["affinitySecretFile", "affinity_secret_file"], ["affinityTtlMs", "affinity_ttl"], ["affinityRedisTimeoutMs", "affinity_redis_timeout"],
  ["affinityTlsCertFile", "affinity_tls_cert_file"], ["affinityTlsKeyFile", "affinity_tls_key_file"], ["affinityTlsCaFile", "affinity_tls_ca_file"],
];

export interface ModuleCoreOptions {
  readonly config: CoreConfig;
  readonly log: Logger;
  /** Default: the real ChildSpawner with sockets under `<instance dir>/apps.s`. */
  readonly spawner?: Spawner;
  /** Reopen the core's own log file (rotation); main() passes its logger's. */
  readonly reopenCoreLog?: () => void;
  /** Switch the core's log lines between text and JSON (a graceful with a new PassengerLogFormat). */
  readonly setLogFormat?: (format: "text" | "json") => void;
  /** Override the peer-credential source of the module listener (tests). */
  readonly peerCred?: (fd: number) => { pid: number; uid: number; gid: number };
}

export interface ModuleCore {
  readonly pool: Pool;
  readonly listener: ModuleListener;
  readonly control: ControlServer;
  /** PassengerMetricsListen's endpoint, when set. */
  readonly metrics: MetricsService | undefined;
  /** The config in effect (updated by reload()). */
  readonly config: CoreConfig;
  /** Reopen the core's and the apps' log files (SIGUSR1, `ferry reopen-logs`, a graceful); resolves with how many. */
  reopenLogs(): Promise<number>;
  /** Apply a re-read config (SIGHUP): server options, log level, redeploy on a new generation. */
  reload(next: CoreConfig): void;
  /** Stop accepting, drain in-flight requests until the deadline, stop the apps, remove sockets and core.pid. */
  stop(deadlineMs?: number): Promise<void>;
}

/** Create (if missing) and check a directory. */
async function ensureDir(dir: string, mode: number): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode });
  const st = await fsp.lstat(dir);
  if (!st.isDirectory()) throw new ConfigError(`Cannot use ${dir}: not a directory`);
  if ((st.mode & 0o002) !== 0) throw new ConfigError(`Cannot use ${dir}: it is world-writable`);
}

/** Build and start a module-mode core from a validated config. */
/**
 * The web server's parent processes, whose children alone may use the module
 * socket with the workers' uid (docs/security.md): Apache's parent
 * (`parent_pid`); nginx's master from its pid file (`front_pid_file`, with
 * `.oldbin` for the old master during a binary upgrade), read at each check
 * since nginx writes it only once it daemonized. None when the core is not
 * root or the workers run as root (nothing to tell apart then), or when the
 * module named no parent (an older module).
 */
function frontParents(config: CoreConfig): { frontPids?: () => readonly number[] } {
  if (process.getuid?.() !== 0 || config.apacheUid === 0) return {};
  if (config.integrationMode === "apache") {
    const parent = config.parentPid;
    return parent > 0 ? { frontPids: () => [parent] } : {};
  }
  const file = config.frontPidFile;
  if (file === "") return {};
  return {
    frontPids: () => [readPidFile(file), readPidFile(`${file}.oldbin`)].filter((p): p is number => p !== undefined),
  };
}

export async function startModuleCore(opts: ModuleCoreOptions): Promise<ModuleCore> {
  const { log } = opts;
  let config = opts.config;
  await ensureDir(config.instanceDir, 0o711);
  let listener: ModuleListener | undefined;
  const instance = await startInstance({
    server: config.server,
    instanceDir: config.instanceDir,
    log,
    ...(opts.spawner !== undefined ? { spawner: opts.spawner } : {}),
    controlSocket: config.controlSocket,
    properties: { integration_mode: config.integrationMode, generation: config.generation, module_socket: config.moduleSocket },
    pidFile: true,
    ...(opts.reopenCoreLog !== undefined ? { reopenOwnLog: opts.reopenCoreLog } : {}),
    countConnections: true,
    // Half the deadline drains the module's requests; the rest stops the apps.
    drainMs: (deadlineMs) => deadlineMs / 2,
    affinityStopMs: 5_000,
    front: (parts) => {
      parts.pool.redeploy(config.generation, config.redeployOnGraceful);
      const reqLog = parts.component("request");
      const l = new ModuleListener({
        path: config.moduleSocket,
        log: parts.component("module-listener"),
        apacheUid: config.apacheUid,
        apacheGid: config.apacheGid,
        ...frontParents(config),
        backlog: config.server.socketBacklog,
        handler: (ex, generation) => parts.handle(ex, {
          pool: parts.pool, log: reqLog, generation, agents: parts.agents,
          ...(parts.affinity !== undefined ? { affinity: parts.affinity.hook } : {}),
        }),
        ...(opts.peerCred !== undefined ? { peerCred: opts.peerCred } : {}),
      });
      listener = l;
      return {
        start: async () => {
          await l.start();
          return {};
        },
        close: async (deadlineMs) => {
          if (!(await l.close(deadlineMs))) log.warn("Stopping with requests still in flight: the drain deadline passed");
        },
        connectionCount: () => l.connectionCount,
      };
    },
  });
  if (listener === undefined) throw new Error("Cannot start the core: the module listener was not built");
  log.info({ logno: 300, version: FERRY_VERSION, generation: config.generation, moduleSocket: config.moduleSocket }, "Ferry core started");

  const { pool, control } = instance;
  let stopping: Promise<void> | undefined;
  return {
    pool,
    listener,
    control,
    metrics: instance.metrics,
    reopenLogs: () => instance.reopenLogs(),
    get config() {
      return config;
    },
    reload(next: CoreConfig): void {
      const prev = config;
      for (const k of ["instanceDir", "moduleSocket", "controlSocket", "apacheUid", "apacheGid"] as const) {
        if (next[k] !== prev[k]) log.warn({ key: k }, `Cannot apply a changed ${k} on reload: it takes effect when the core restarts`);
      }
      if ((next.server.metricsListen ?? "") !== (prev.server.metricsListen ?? "")) {
        log.warn("Cannot apply a changed metrics_listen on reload: it takes effect when the core restarts");
      }
      for (const [field, key] of AFFINITY_KEYS) {
        if ((next.server[field] ?? "") !== (prev.server[field] ?? "")) {
          log.warn({ key }, `Cannot apply a changed ${key} on reload: it takes effect when the core restarts`);
        }
      }
      if (next.server.logFile !== prev.server.logFile) {
        log.warn("Cannot apply a changed log_file on reload: it takes effect when the core restarts");
      }
      config = { ...next, instanceDir: prev.instanceDir, moduleSocket: prev.moduleSocket, controlSocket: prev.controlSocket, apacheUid: prev.apacheUid, apacheGid: prev.apacheGid };
      instance.setLogLevel(pinoLevelFor(next.server.logLevel));
      opts.setLogFormat?.(next.server.logFormat ?? "text");
      pool.setServerOptions(next.server);
      if (next.generation !== prev.generation || next.redeployOnGraceful !== prev.redeployOnGraceful) {
        pool.redeploy(next.generation, next.redeployOnGraceful);
      }
      instance.updateProperties({ generation: next.generation }).catch((e: unknown) => {
        log.warn({ err: e }, "Cannot update properties.json");
      });
      log.info({ generation: next.generation, redeploy: next.redeployOnGraceful }, "Configuration reloaded");
    },
    stop(deadlineMs = 30_000): Promise<void> {
      stopping ??= (async () => {
        log.info({ deadlineMs }, "Ferry core stopping");
        await instance.stop(deadlineMs);
        log.info("Ferry core stopped");
      })();
      return stopping;
    },
  };
}
