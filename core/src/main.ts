/**
 * Composition root of module mode: mod_ferry starts
 * `node build/core/src/main.js --config <instance dir>/config.json`
 * (docs/core-config.md). Reads and validates the config, builds the spawner,
 * pool, module listener and admin API, writes core.pid, and wires the
 * signals: SIGHUP re-reads the config (graceful), SIGTERM/SIGINT drain and
 * exit, and the core also exits when its parent (Apache) is gone or the
 * lifeline fd reaches EOF. Tests build a core in-process with startModuleCore().
 */
import { promises as fsp, realpathSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { readCoreConfig, unknownServerKeys, type CoreConfig } from "./config/core-config.js";
import { ControlServer } from "./control/server.js";
import { ConfigError } from "./errors.js";
import { openLogger, pinoLevelFor, type Logger } from "./log.js";
import { Pool } from "./pool/pool.js";
import { AppAgents } from "./exchange/relay/app-agents.js";
import { ModuleListener } from "./front/module/listener.js";
import { handleExchange, type RequestDeps } from "./exchange/handle.js";
import type { Exchange } from "./exchange/exchange.js";
import type { PoolStatus } from "./control/status.js";
import { affinitySettings, startAffinity, withClusterStatus } from "./affinity/service.js";
import { ChildSpawner } from "./spawn/child-spawner.js";
import type { Spawner } from "./spawn/spawner.js";
import { FERRY_VERSION } from "./version.js";
import { processGone } from "./os/probes.js";
import { createMetrics, type MetricsService } from "./metrics/service.js";
import { metricsUrl } from "./metrics/server.js";

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
export async function startModuleCore(opts: ModuleCoreOptions): Promise<ModuleCore> {
  const { log } = opts;
  let config = opts.config;
  await ensureDir(config.instanceDir, 0o711);
  const socketDir = path.join(config.instanceDir, "apps.s");
  // Traversable, not listable: each app gets a private subdir (spawn/child-spawner.ts).
  await ensureDir(socketDir, 0o711);
  await fsp.chmod(socketDir, 0o711);

  // Component loggers, kept so a reload can change their level (pino children copy it at creation).
  const loggers: Logger[] = [log];
  const component = (name: string): Logger => {
    const child = log.child({ component: name });
    loggers.push(child);
    return child;
  };
  const spawner = opts.spawner ?? new ChildSpawner({ log: component("spawner"), socketDir });
  // Metrics read the pool (and the listener) only when scraped: built first, bound after the listener.
  let sources: { pool?: Pool; listener?: ModuleListener; status?: () => PoolStatus } = {};
  const metrics = createMetrics(config.server.metricsListen, {
    status: () => sources.status?.() ?? { version: FERRY_VERSION, maxPoolSize: config.server.maxPoolSize, processCount: 0, groups: [] },
    moduleConnections: () => sources.listener?.connectionCount ?? 0,
  }, component("metrics"));
  const pool = new Pool({ spawner, server: config.server, log: component("pool"), ...(metrics !== undefined ? { observer: metrics.metrics } : {}) });
  pool.redeploy(config.generation, config.redeployOnGraceful);
  const agents = new AppAgents();
  const reqLog = component("request");
  // Shared session affinity across hosts (docs/affinity.md), when PassengerAffinityRedis is set.
  const shared = affinitySettings(config.server);
  const affinity = shared === undefined ? undefined : await startAffinity(shared, {
    log,
    poolStatus: () => pool.status(),
    serveLocal: (ex, hook) => handleExchange(ex, { pool, log: reqLog, agents, affinity: hook }),
  }).catch(async (e: unknown) => {
    await pool.shutdown(1_000).catch(() => undefined);
    agents.destroy();
    throw e;
  });
  // Each exchange is counted once when it ends (metrics/recorder.ts), when metrics are on.
  const handleRecorded = (ex: Exchange, deps: RequestDeps): Promise<void> =>
    metrics === undefined ? handleExchange(ex, deps) : metrics.wrap((e) => handleExchange(e, deps))(ex);
  const listener = new ModuleListener({
    path: config.moduleSocket,
    log: component("module-listener"),
    apacheUid: config.apacheUid,
    apacheGid: config.apacheGid,
    backlog: config.server.socketBacklog,
    handler: (ex, generation) => handleRecorded(ex, { pool, log: reqLog, generation, agents, ...(affinity !== undefined ? { affinity: affinity.hook } : {}) }),
    ...(opts.peerCred !== undefined ? { peerCred: opts.peerCred } : {}),
  });
  // Mutable: GET /instance and properties.json show the current generation.
  const properties: Record<string, unknown> = {
    pid: process.pid,
    version: FERRY_VERSION,
    integration_mode: "apache",
    created_at: Date.now(),
    generation: config.generation,
    module_socket: config.moduleSocket,
  };
  const statusSource = withClusterStatus(pool, affinity);
  sources = { pool, listener, status: () => statusSource.status() };
  const reopenLogs = async (): Promise<number> => {
    opts.reopenCoreLog?.();
    const apps = await spawner.reopenLogs?.() ?? 0;
    log.info({ logno: 306, appLogs: apps }, "Log files reopened");
    return apps + (opts.reopenCoreLog !== undefined ? 1 : 0);
  };
  const control = new ControlServer({
    reopenLogs,
    instanceDir: config.instanceDir,
    pool: statusSource,
    log: component("control"),
    socketPath: config.controlSocket,
    properties,
    adminGroup: config.server.adminGroup ?? "",
  });
  const pidFile = path.join(config.instanceDir, "core.pid");
  const propsFile = path.join(config.instanceDir, "properties.json");
  try {
    await listener.start();
    await control.start();
    if (metrics !== undefined) properties["metrics_url"] = metricsUrl(await metrics.start());
    await control.writeRegistryFile(path.basename(propsFile), JSON.stringify(properties, null, 2) + "\n");
    await control.writeRegistryFile(path.basename(pidFile), `${process.pid}\n`);
  } catch (e: unknown) {
    await listener.close(0).catch(() => undefined);
    await control.close().catch(() => undefined);
    await metrics?.stop().catch(() => undefined);
    await affinity?.stop(0).catch(() => undefined);
    await pool.shutdown(1_000).catch(() => undefined);
    agents.destroy();
    throw e;
  }
  log.info({ logno: 300, version: FERRY_VERSION, generation: config.generation, moduleSocket: config.moduleSocket }, "Ferry core started");

  let stopping: Promise<void> | undefined;
  return {
    pool,
    listener,
    control,
    metrics,
    reopenLogs,
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
      if (next.server.logFile !== prev.server.logFile) {
        log.warn("Cannot apply a changed log_file on reload: it takes effect when the core restarts");
      }
      config = { ...next, instanceDir: prev.instanceDir, moduleSocket: prev.moduleSocket, controlSocket: prev.controlSocket, apacheUid: prev.apacheUid, apacheGid: prev.apacheGid };
      for (const l of loggers) l.level = pinoLevelFor(next.server.logLevel);
      opts.setLogFormat?.(next.server.logFormat ?? "text");
      pool.setServerOptions(next.server);
      if (next.generation !== prev.generation || next.redeployOnGraceful !== prev.redeployOnGraceful) {
        pool.redeploy(next.generation, next.redeployOnGraceful);
      }
      properties["generation"] = next.generation;
      control.writeRegistryFile(path.basename(propsFile), JSON.stringify(properties, null, 2) + "\n").catch((e: unknown) => {
        log.warn({ err: e }, `Cannot update ${propsFile}`);
      });
      log.info({ generation: next.generation, redeploy: next.redeployOnGraceful }, "Configuration reloaded");
    },
    stop(deadlineMs = 30_000): Promise<void> {
      stopping ??= (async () => {
        const until = Date.now() + deadlineMs;
        log.info({ deadlineMs }, "Ferry core stopping");
        const drained = await listener.close(Math.max(0, Math.min(deadlineMs / 2, until - Date.now())));
        if (!drained) log.warn("Stopping with requests still in flight: the drain deadline passed");
        await control.close().catch((e: unknown) => log.warn({ err: e }, "Cannot close the admin API"));
        await metrics?.stop().catch((e: unknown) => log.warn({ err: e }, "Cannot close the metrics endpoint"));
        await affinity?.stop(Math.max(0, Math.min(5_000, until - Date.now()))).catch((e: unknown) => log.warn({ err: e }, "Cannot stop shared affinity cleanly"));
        await pool.shutdown(Math.max(1_000, until - Date.now()));
        agents.destroy();
        await fsp.rm(pidFile, { force: true });
        await fsp.rm(propsFile, { force: true });
        log.info("Ferry core stopped");
      })();
      return stopping;
    },
  };
}

/**
 * Request each PassengerPreStart URL so its app spawns before the first real
 * request. Apache may not listen yet when the core starts: retry for a while.
 */
export async function prestartUrls(urls: readonly string[], log: Logger, signal: AbortSignal): Promise<void> {
  await Promise.all(urls.map(async (url) => {
    const giveUp = Date.now() + 60_000;
    for (let delay = 500; !signal.aborted; delay = Math.min(delay * 2, 5_000)) {
      try {
        const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(120_000)]), redirect: "manual" });
        await res.arrayBuffer().catch(() => undefined);
        log.info({ url, status: res.status }, "Prestarted");
        return;
      } catch (e: unknown) {
        if (signal.aborted) return;
        if (Date.now() + delay > giveUp) {
          log.warn({ url, err: e }, "Cannot prestart: the URL did not answer");
          return;
        }
      }
      await new Promise<void>((r) => {
        const onAbort = (): void => {
          clearTimeout(t);
          r();
        };
        // Removed when the timer fires: one listener per retry would pile up on the shared signal.
        const t = setTimeout(() => {
          signal.removeEventListener("abort", onAbort);
          r();
        }, delay);
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
  }));
}

async function flushLog(log: Logger): Promise<void> {
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 1_000);
    try {
      log.flush(() => {
        clearTimeout(t);
        resolve();
      });
    } catch {
      clearTimeout(t);
      resolve();
    }
  });
}

/** `main.js --config <file>`: run a module-mode core until told to stop. Returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let configFile: string;
  try {
    const { values } = parseArgs({ args: [...argv], options: { config: { type: "string" } }, strict: true });
    if (values.config === undefined) throw new Error("--config <file> is required");
    configFile = path.resolve(values.config);
  } catch (e: unknown) {
    process.stderr.write(`ferry core: ${e instanceof Error ? e.message : String(e)}\nusage: main.js --config <file>\n`);
    return 2;
  }
  let config: CoreConfig;
  let raw: unknown;
  try {
    ({ config, raw } = await readCoreConfig(configFile));
  } catch (e: unknown) {
    process.stderr.write(`ferry core: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  // Readable lines in Apache's error-log shape by default; to PassengerLogFile, else Apache's ErrorLog file
  // (opened by name, so a graceful after a rotation moves to the new file), else the stderr Apache gave us.
  const logHandle = openLogger({
    level: config.server.logLevel, file: config.server.logFile || config.server.errorLog || "", name: "ferry-core",
    format: config.server.logFormat ?? "text", style: "apache",
  });
  const log = logHandle.log;
  const unknown = unknownServerKeys(raw);
  if (unknown.length > 0) log.warn({ keys: unknown }, "Ignoring unknown server keys in the core config");

  let exiting = false;
  const die = async (code: number, why: string, err?: unknown): Promise<never> => {
    if (err !== undefined) log.fatal({ err }, why);
    else log.fatal(why);
    await flushLog(log);
    process.exit(code);
  };
  process.on("unhandledRejection", (reason: unknown) => void die(1, "Unhandled promise rejection", reason));
  process.on("uncaughtException", (err: unknown) => void die(1, "Uncaught exception", err));

  let core: ModuleCore;
  try {
    core = await startModuleCore({ config, log, reopenCoreLog: () => logHandle.reopen(), setLogFormat: (f) => logHandle.setFormat(f) });
  } catch (e: unknown) {
    log.fatal({ logno: 304, err: e }, `Cannot start the Ferry core: ${e instanceof Error ? e.message : String(e)}`);
    await flushLog(log);
    return 1;
  }
  const prestartAbort = new AbortController();
  void prestartUrls(config.prestart, log.child({ component: "prestart" }), prestartAbort.signal);

  const shutdown = async (why: string): Promise<void> => {
    if (exiting) return;
    exiting = true;
    log.info(`Shutting down: ${why}`);
    prestartAbort.abort();
    const hardStop = setTimeout(() => void die(1, "Shutdown did not finish in time"), 60_000);
    hardStop.unref();
    try {
      await core.stop(Math.min(30_000, Math.max(5_000, core.config.server.processShutdownTimeoutMs)));
    } catch (e: unknown) {
      log.error({ err: e }, "Cannot stop cleanly");
    }
    await flushLog(log);
    process.exit(0);
  };

  let reloading = Promise.resolve();
  process.on("SIGHUP", () => {
    reloading = reloading.then(async () => {
      if (exiting) return;
      try {
        const next = await readCoreConfig(configFile);
        const unk = unknownServerKeys(next.raw);
        if (unk.length > 0) log.warn({ keys: unk }, "Ignoring unknown server keys in the core config");
        core.reload(next.config);
        // A graceful follows a log rotation (logrotate's postrotate): write to the new files from now on.
        await core.reopenLogs();
      } catch (e: unknown) {
        log.error({ logno: 305, err: e }, `Cannot reload the configuration, keeping the current one: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  });
  process.on("SIGUSR1", () => {
    core.reopenLogs().catch((e: unknown) => log.error({ err: e }, "Cannot reopen the log files"));
  });
  let signals = 0;
  const onStop = (sig: string): void => {
    if (++signals > 1) void die(1, `${sig} again: exiting without waiting`);
    else void shutdown(sig);
  };
  process.on("SIGTERM", () => onStop("SIGTERM"));
  process.on("SIGINT", () => onStop("SIGINT"));

  if (config.parentPid > 0) {
    const parent = config.parentPid;
    const watchedPpid = process.ppid;
    const timer = setInterval(() => {
      const reparented = watchedPpid === parent && process.ppid !== parent;
      if (reparented || processGone(parent)) {
        clearInterval(timer);
        void shutdown(`parent process ${parent} is gone`);
      }
    }, 1_000);
  }
  if (config.lifelineFd >= 0) {
    try {
      const lifeline = new net.Socket({ fd: config.lifelineFd, readable: true, writable: false });
      lifeline.on("data", () => undefined);
      lifeline.on("error", (e: unknown) => log.warn({ err: e }, "lifeline fd error"));
      lifeline.on("close", () => void shutdown(`lifeline fd ${config.lifelineFd} closed`));
      lifeline.unref();
    } catch (e: unknown) {
      log.warn({ err: e, fd: config.lifelineFd }, "Cannot watch the lifeline fd");
    }
  }
  return new Promise<number>(() => undefined);
}

/** Whether this file is the program node was started with (also through a symlinked PassengerRoot). */
function isEntryPoint(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`ferry core: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
