/**
 * One Ferry instance, assembled the same way in both modes: the spawner with
 * its sockets under `<instance dir>/apps.s`, the metrics endpoint, the pool,
 * the app connection agents, shared session affinity, the admin API and the
 * registry files, and the stop sequence. The modes differ only in their front
 * (module-mode.ts: mod_ferry's Unix socket; standalone-mode.ts: an HTTP
 * server) and where their config comes from (the core config file; `ferry
 * start`'s flags and Passengerfile); each passes its front as a factory that
 * receives the assembled parts.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { affinitySettings, startAffinity, withClusterStatus, type AffinityService } from "./affinity/service.js";
import type { AppOptions, ServerOptions } from "./config/schema.js";
import { ControlServer } from "./control/admin-api.js";
import type { PoolStatus } from "./control/status.js";
import type { Exchange } from "./exchange/exchange.js";
import { handleExchange, type RequestDeps } from "./exchange/handle.js";
import { AppAgents } from "./exchange/relay/app-agents.js";
import type { Logger } from "./log.js";
import { metricsUrl } from "./metrics/endpoint.js";
import { createMetrics, type MetricsService } from "./metrics/service.js";
import { Pool } from "./pool/pool.js";
import { ChildSpawner, type ChildSpawnerOptions } from "./spawn/child-spawner.js";
import type { Spawner } from "./spawn/spawner.js";
import { FERRY_VERSION } from "./version.js";

/** What a mode's front does for the instance. */
export interface InstanceFront {
  /** Start accepting; resolves with properties.json fields it adds (the URL it serves). */
  start(): Promise<Readonly<Record<string, unknown>>>;
  /** Stop accepting and drain in-flight exchanges within the deadline. */
  close(deadlineMs: number): Promise<void>;
  /** Open connections from the web server, for the metrics (with countConnections). */
  readonly connectionCount?: () => number;
}

/** The assembled parts a front is built from. */
export interface InstanceParts {
  readonly pool: Pool;
  readonly agents: AppAgents;
  readonly affinity: AffinityService | undefined;
  readonly metrics: MetricsService | undefined;
  /** A component's logger; its level follows setLogLevel(). */
  component(name: string): Logger;
  /** The request path (exchange/handle.ts), each exchange counted once when metrics are on. */
  handle(ex: Exchange, deps: RequestDeps): Promise<void>;
}

export interface InstanceOptions {
  readonly server: ServerOptions;
  /** Exists already; mode and owner are the mode's. */
  readonly instanceDir: string;
  readonly log: Logger;
  /** Default: the real ChildSpawner with sockets under `<instance dir>/apps.s`. */
  readonly spawner?: Spawner;
  /** What the loader needs to serve handed-off connections (standalone mode's front/http/handoff-settings.ts). */
  readonly handoffSettings?: ChildSpawnerOptions["handoffSettings"];
  /** The admin socket; default `<instance dir>/control.sock`. */
  readonly controlSocket?: string;
  /** properties.json's fields besides pid, version, created_at and metrics_url. */
  readonly properties: Readonly<Record<string, unknown>>;
  /** Also write core.pid (module mode: mod_ferry and `ferry status` read it). */
  readonly pidFile?: boolean;
  /** Reopen the instance's own log file (rotation). */
  readonly reopenOwnLog?: () => void;
  /** An app known at start (ferry start's): shared affinity learns its site. */
  readonly app?: AppOptions;
  /** Ask the pool to spawn a process for this app at once, before the first request. */
  readonly prestart?: AppOptions;
  /** The metrics count the front's connections (module mode: ferry_module_connections). */
  readonly countConnections?: boolean;
  /** Build the front from the parts. */
  readonly front: (parts: InstanceParts) => InstanceFront;
  /** Stop budgets: the front's drain, shared affinity's (default: what is left). */
  readonly drainMs?: (deadlineMs: number) => number;
  readonly affinityStopMs?: number;
  /** Remove the whole instance dir when stopped or when the start fails (ferry start made it). */
  readonly removeInstanceDir?: boolean;
}

export interface Instance {
  readonly pool: Pool;
  readonly control: ControlServer;
  readonly metrics: MetricsService | undefined;
  readonly affinity: AffinityService | undefined;
  readonly metricsUrl: string | undefined;
  /** properties.json as served by GET /instance; update() rewrites the file. */
  readonly properties: Readonly<Record<string, unknown>>;
  updateProperties(fields: Readonly<Record<string, unknown>>): Promise<void>;
  /** Set the level of the instance's loggers (a reload). */
  setLogLevel(level: string): void;
  /** Reopen the own and the apps' log files (SIGUSR1, `ferry reopen-logs`, a graceful); resolves with how many. */
  reopenLogs(): Promise<number>;
  /** Stop accepting, drain until the deadline, stop the apps, remove the registry files. */
  stop(deadlineMs?: number): Promise<void>;
}

/** Create (if missing) the app sockets dir: traversable, not listable (each app gets a private subdir). */
async function makeSocketDir(instanceDir: string): Promise<string> {
  const socketDir = path.join(instanceDir, "apps.s");
  await fsp.mkdir(socketDir, { recursive: true, mode: 0o711 });
  await fsp.chmod(socketDir, 0o711);
  return socketDir;
}

/** Assemble and start an instance; on failure everything started is stopped again and the error rethrown. */
export async function startInstance(opts: InstanceOptions): Promise<Instance> {
  const { log, server, instanceDir } = opts;
  const removeFiles = async (): Promise<void> => {
    if (opts.removeInstanceDir === true) await fsp.rm(instanceDir, { recursive: true, force: true });
  };
  // Component loggers, kept so a reload can change their level (pino children copy it at creation).
  const loggers: Logger[] = [log];
  const component = (name: string): Logger => {
    const child = log.child({ component: name });
    loggers.push(child);
    return child;
  };
  let front: InstanceFront | undefined;
  let pool: Pool | undefined;
  let agents: AppAgents | undefined;
  let affinity: AffinityService | undefined;
  let metrics: MetricsService | undefined;
  let control: ControlServer | undefined;
  try {
    const socketDir = await makeSocketDir(instanceDir);
    const spawner = opts.spawner ?? new ChildSpawner({
      log: component("spawner"), socketDir, ...(opts.handoffSettings !== undefined ? { handoffSettings: opts.handoffSettings } : {}),
    });
    // Metrics read the pool (and the front) only when scraped: built first, as the pool's observer.
    let statusOf: (() => PoolStatus) | undefined;
    metrics = createMetrics(server.metricsListen, {
      status: () => statusOf?.() ?? { version: FERRY_VERSION, maxPoolSize: server.maxPoolSize, processCount: 0, groups: [] },
      ...(opts.countConnections === true ? { moduleConnections: () => front?.connectionCount?.() ?? 0 } : {}),
    }, component("metrics"));
    const p = new Pool({
      spawner, server, log: component("pool"),
      ...(metrics !== undefined ? { observer: metrics.metrics, recorder: metrics.metrics } : {}),
    });
    pool = p;
    const a = new AppAgents();
    agents = a;
    // Shared session affinity across hosts (docs/affinity.md), when PassengerAffinityRedis / --affinity-redis is set.
    const shared = affinitySettings(server);
    if (shared !== undefined) {
      affinity = await startAffinity(shared, {
        log,
        poolStatus: () => p.status(),
        serveLocal: (ex, hook) => handleExchange(ex, { pool: p, log, agents: a, affinity: hook }),
      });
      if (opts.app !== undefined) affinity.registerApp(opts.app);
    }
    const statusSource = withClusterStatus(p, affinity);
    statusOf = () => statusSource.status();
    const m = metrics;
    front = opts.front({
      pool: p,
      agents: a,
      affinity,
      metrics,
      component,
      handle: (ex, deps) => (m === undefined ? handleExchange(ex, deps) : m.wrap((e) => handleExchange(e, deps))(ex)),
    });
    const reopenLogs = async (): Promise<number> => {
      opts.reopenOwnLog?.();
      const apps = await spawner.reopenLogs?.() ?? 0;
      log.info({ logno: 306, appLogs: apps }, "Log files reopened");
      return apps + (opts.reopenOwnLog !== undefined ? 1 : 0);
    };
    // Mutable: GET /instance serves it, updateProperties() changes it.
    const properties: Record<string, unknown> = {
      pid: process.pid, version: FERRY_VERSION, created_at: Date.now(), ...opts.properties,
    };
    const c = new ControlServer({
      reopenLogs, instanceDir, pool: statusSource, log: component("control"), properties, adminGroup: server.adminGroup ?? "",
      ...(opts.controlSocket !== undefined ? { socketPath: opts.controlSocket } : {}),
    });
    control = c;
    Object.assign(properties, await front.start());
    if (metrics !== undefined) properties["metrics_url"] = metricsUrl(await metrics.start());
    await c.start();
    const writeProperties = (): Promise<void> => c.writeRegistryFile("properties.json", JSON.stringify(properties, null, 2) + "\n");
    await writeProperties();
    if (opts.pidFile === true) await c.writeRegistryFile("core.pid", `${process.pid}\n`);

    if (opts.prestart !== undefined) {
      p.checkout(opts.prestart, { signal: new AbortController().signal }).then(
        (s) => s.release("ok"),
        (e: unknown) => log.warn({ err: e }, "the app could not be prestarted; the first request will retry"),
      );
    }

    const f = front;
    let stopping: Promise<void> | undefined;
    return {
      pool: p,
      control: c,
      metrics,
      affinity,
      metricsUrl: typeof properties["metrics_url"] === "string" ? properties["metrics_url"] : undefined,
      properties,
      async updateProperties(fields) {
        Object.assign(properties, fields);
        await writeProperties();
      },
      setLogLevel(level) {
        for (const l of loggers) l.level = level;
      },
      reopenLogs,
      stop(deadlineMs = 30_000): Promise<void> {
        stopping ??= (async () => {
          const until = Date.now() + deadlineMs;
          await f.close(opts.drainMs?.(deadlineMs) ?? deadlineMs);
          await c.close().catch((e: unknown) => log.warn({ err: e }, "Cannot close the admin API"));
          await metrics?.stop().catch((e: unknown) => log.warn({ err: e }, "Cannot close the metrics endpoint"));
          const left = Math.max(0, until - Date.now());
          await affinity?.stop(Math.min(opts.affinityStopMs ?? left, left)).catch((e: unknown) => log.warn({ err: e }, "Cannot stop shared affinity cleanly"));
          await p.shutdown(Math.max(1_000, until - Date.now()));
          a.destroy();
          if (opts.pidFile === true) await fsp.rm(path.join(instanceDir, "core.pid"), { force: true });
          await fsp.rm(path.join(instanceDir, "properties.json"), { force: true });
          await removeFiles();
        })();
        return stopping;
      },
    };
  } catch (e: unknown) {
    await front?.close(0).catch(() => undefined);
    await control?.close().catch(() => undefined);
    await metrics?.stop().catch(() => undefined);
    await affinity?.stop(0).catch(() => undefined);
    await pool?.shutdown(1_000).catch(() => undefined);
    agents?.destroy();
    await removeFiles().catch(() => undefined);
    throw e;
  }
}
