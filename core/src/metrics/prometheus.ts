/**
 * Ferry's Prometheus metrics (docs/metrics.md): the one file that knows
 * prom-client. Request counters and histograms are fed as requests finish
 * (RequestRecorder), spawn times as processes become ready (PoolObserver);
 * everything the pool snapshot already carries (processes by state, queue,
 * totals, memory and CPU per process, affinity) is read from status() at
 * scrape time, so the pool keeps no second copy of its state.
 */
import { readdirSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { createRequire } from "node:module";
import type * as PromClient from "prom-client";
import type { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { PoolObserver } from "../pool/observer.js";
import type { PoolStatus } from "../control/status.js";
import { FERRY_VERSION } from "../version.js";
import type { RequestRecorder } from "../pool/request-recorder.js";
import { statusClass } from "./recorder.js";

/** prom-client, loaded when metrics are on: it is ~13 MB of the core's RSS otherwise. */
let promModule: typeof PromClient | undefined;
function prom(): typeof PromClient {
  promModule ??= createRequire(import.meta.url)("prom-client") as typeof PromClient;
  return promModule;
}

export interface MetricsSources {
  /** The pool snapshot (with the cluster view when shared affinity is on). */
  readonly status: () => PoolStatus;
  /** Connections from Apache children to this core (module mode only). */
  readonly moduleConnections?: () => number;
}

/** Request duration buckets (seconds): 5 ms … 60 s. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Spawn time buckets (seconds): 50 ms … 2 min. */
const SPAWN_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120];

/** Per-app request tallies: plain numbers on the hot path, handed to prom-client at scrape time. */
interface AppSeries {
  readonly byClass: Map<string, number>;
  readonly duration: { observe(v: number): void };
  bytes: number;
}

export class FerryMetrics implements RequestRecorder, PoolObserver {
  readonly registry = new (prom().Registry)();
  readonly #sources: MetricsSources;
  readonly #duration: Histogram<"app">;
  readonly #spawnTime: Histogram<"app">;
  readonly #apps = new Map<string, AppSeries>();
  /** The snapshot of the scrape in progress. */
  #snap: PoolStatus | undefined;

  constructor(sources: MetricsSources) {
    this.#sources = sources;
    const registers = [this.registry];
    // The core process itself. (prom-client's default metrics name some gauges *_total, which promtool rejects.)
    new (prom().Gauge)({ name: "ferry_core_resident_memory_bytes", help: "Resident memory of the core", registers, collect(this: Gauge) {
      this.set(process.memoryUsage.rss());
    } });
    new (prom().Gauge)({ name: "ferry_core_open_fds", help: "Open file descriptors of the core", registers, collect(this: Gauge) {
      const n = openFds();
      if (n !== undefined) this.set(n);
    } });
    new (prom().Counter)({ name: "ferry_core_cpu_seconds_total", help: "CPU time (user + system) of the core", registers, collect(this: Counter) {
      const u = process.cpuUsage();
      this.reset();
      this.inc((u.user + u.system) / 1e6);
    } });
    new (prom().Gauge)({ name: "ferry_core_start_time_seconds", help: "Start time of the core since the Unix epoch", registers })
      .set(Math.round(performance.timeOrigin / 1000));
    let elu = performance.eventLoopUtilization();
    new (prom().Gauge)({ name: "ferry_core_event_loop_utilization", help: "Share of time the core's event loop was busy since the previous scrape (0-1)", registers, collect(this: Gauge) {
      const now = performance.eventLoopUtilization();
      this.set(performance.eventLoopUtilization(now, elu).utilization);
      elu = now;
    } });
    new (prom().Gauge)({ name: "ferry_build_info", help: "Ferry version (value 1)", labelNames: ["version"], registers })
      .set({ version: FERRY_VERSION }, 1);

    const apps = this.#apps;
    new (prom().Counter)({
      name: "ferry_app_requests_total", help: "Requests finished, by app and HTTP status class (aborted: no response was sent)",
      labelNames: ["app", "status_class"], registers,
      collect(this: Counter<"app" | "status_class">) {
        this.reset();
        for (const [app, s] of apps) for (const [cls, n] of s.byClass) this.inc({ app, status_class: cls }, n);
      },
    });
    this.#duration = new (prom().Histogram)({
      name: "ferry_app_request_duration_seconds", help: "Time from the request head to the end of the response (upgraded connections excluded)",
      labelNames: ["app"], buckets: DURATION_BUCKETS, registers,
    });
    new (prom().Counter)({
      name: "ferry_app_response_bytes_total", help: "Response body bytes sent to clients", labelNames: ["app"], registers,
      collect(this: Counter<"app">) {
        this.reset();
        for (const [app, s] of apps) this.inc({ app }, s.bytes);
      },
    });
    this.#spawnTime = new (prom().Histogram)({
      name: "ferry_app_spawn_duration_seconds", help: "Time from starting a process to its socket accepting connections",
      labelNames: ["app"], buckets: SPAWN_BUCKETS, registers,
    });

    const snap = (): PoolStatus => (this.#snap ??= this.#sources.status());
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (g: Gauge<L>, s: PoolStatus) => void): void => {
      new (prom().Gauge)<L>({
        name, help, labelNames, registers,
        collect(this: Gauge<L>) {
          this.reset();
          fill(this, snap());
        },
      });
    };
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (c: Counter<L>, s: PoolStatus) => void): void => {
      new (prom().Counter)<L>({
        name, help, labelNames, registers,
        collect(this: Counter<L>) {
          this.reset();
          fill(this, snap());
        },
      });
    };

    gauge("ferry_app_requests_in_flight", "Requests being served now (upgraded connections not counted)", ["app"], (g, s) => {
      for (const a of s.groups) g.set({ app: a.name }, a.processes.reduce((n, p) => n + p.inFlight, 0));
    });
    gauge("ferry_app_upgraded_connections", "Upgraded (WebSocket) connections open now", ["app"], (g, s) => {
      for (const a of s.groups) g.set({ app: a.name }, a.processes.reduce((n, p) => n + p.upgraded, 0));
    });
    gauge("ferry_app_requests_queued", "Requests waiting for a process", ["app"], (g, s) => {
      for (const a of s.groups) g.set({ app: a.name }, a.queueLength);
    });
    counter("ferry_app_queue_overflows_total", "Requests refused with 503 because the queue was full", ["app"], (c, s) => {
      for (const a of s.groups) c.inc({ app: a.name }, a.queueOverflows);
    });
    counter("ferry_app_leases_total", "LEASEs sent: requests that took the direct path through the core", ["app"], (c, s) => {
      for (const a of s.groups) c.inc({ app: a.name }, a.leases);
    });
    counter("ferry_app_passes_total", "LEASEs that carried a pass", ["app"], (c, s) => {
      for (const a of s.groups) c.inc({ app: a.name }, a.passes);
    });
    counter("ferry_app_direct_requests_total", "Requests the app processes served without the core (with a pass, or on handed-off connections)", ["app"], (c, s) => {
      for (const a of s.groups) c.inc({ app: a.name }, a.directRequests);
    });
    gauge("ferry_app_processes", "App processes by state", ["app", "state"], (g, s) => {
      for (const a of s.groups) {
        const by: Record<string, number> = { spawning: a.spawning, ready: 0, draining: 0 };
        for (const p of a.processes) if (p.state !== "spawning") by[p.state] = (by[p.state] ?? 0) + 1;
        for (const [state, n] of Object.entries(by)) if (state !== "dead") g.set({ app: a.name, state }, n);
      }
    });
    counter("ferry_app_spawns_total", "Processes started successfully", ["app"], (c, s) => {
      for (const a of s.groups) c.inc({ app: a.name }, a.spawns);
    });
    counter("ferry_app_spawn_failures_total", "Process starts that failed", ["app"], (c, s) => {
      for (const a of s.groups) c.inc({ app: a.name }, a.spawnFailures);
    });
    counter("ferry_app_process_crashes_total", "Processes that exited without being asked to, by exit reason", ["app", "reason"], (c, s) => {
      for (const a of s.groups) for (const [reason, n] of Object.entries(a.crashReasons)) c.inc({ app: a.name, reason }, n);
    });
    gauge("ferry_app_restart_generation", "Restart generation of the app (bumped by each restart request)", ["app"], (g, s) => {
      for (const a of s.groups) g.set({ app: a.name }, a.restartGeneration);
    });
    gauge("ferry_app_process_resident_memory_bytes", "Resident memory of each app process", ["app", "pid"], (g, s) => {
      for (const a of s.groups) for (const p of a.processes) g.set({ app: a.name, pid: String(p.pid) }, p.rssBytes);
    });
    counter("ferry_app_process_cpu_seconds_total", "CPU time (user + system) of each app process", ["app", "pid"], (c, s) => {
      for (const a of s.groups) for (const p of a.processes) c.inc({ app: a.name, pid: String(p.pid) }, p.cpuSeconds);
    });
    gauge("ferry_app_process_event_loop_utilization", "Share of time each Node app process's event loop was busy over the loader's last report (0-1)", ["app", "pid"], (g, s) => {
      for (const a of s.groups) for (const p of a.processes) if (p.loop !== undefined) g.set({ app: a.name, pid: String(p.pid) }, p.loop.elu);
    });
    gauge("ferry_app_process_event_loop_delay_p99_seconds", "99th percentile event-loop delay of each Node app process over the loader's last report", ["app", "pid"], (g, s) => {
      for (const a of s.groups) for (const p of a.processes) if (p.loop !== undefined) g.set({ app: a.name, pid: String(p.pid) }, p.loop.delayP99Ms / 1000);
    });
    counter("ferry_app_unhealthy_replacements_total", "Processes taken out of rotation and replaced by a health check, by reason (event_loop, health_check)", ["app", "reason"], (c, s) => {
      for (const a of s.groups) for (const [reason, n] of Object.entries(a.unhealthy)) c.inc({ app: a.name, reason }, n);
    });
    gauge("ferry_app_process_health_check_failures", "Consecutive failed HTTP health checks of each app process", ["app", "pid"], (g, s) => {
      for (const a of s.groups) for (const p of a.processes) g.set({ app: a.name, pid: String(p.pid) }, p.healthFailures);
    });

    gauge("ferry_pool_max_size", "PassengerMaxPoolSize", [], (g, s) => g.set(s.maxPoolSize));
    gauge("ferry_pool_processes", "App processes in the pool", [], (g, s) => g.set(s.processCount));
    const conns = sources.moduleConnections;
    if (conns !== undefined) {
      new (prom().Gauge)({ name: "ferry_core_module_connections", help: "Connections from Apache children to the core", registers, collect(this: Gauge) {
        this.set(conns());
      } });
    }
    gauge("ferry_affinity_redis_up", "1 when Redis answered the last heartbeat (shared affinity on), 0 when not", [], (g, s) => {
      if (s.cluster !== undefined) g.set(s.cluster.storeAvailable ? 1 : 0);
    });
    gauge("ferry_affinity_nodes", "Hosts of the affinity cluster by liveness", ["alive"], (g, s) => {
      if (s.cluster === undefined) return;
      const alive = s.cluster.nodes.filter((n) => n.alive).length;
      g.set({ alive: "true" }, alive);
      g.set({ alive: "false" }, s.cluster.nodes.length - alive);
    });
    gauge("ferry_affinity_sessions", "Sticky sessions this host owns in the shared store", [], (g, s) => {
      const self = s.cluster?.nodes.find((n) => n.self);
      if (self !== undefined) g.set(self.sessions);
    });
  }

  /** The text exposition (one scrape). */
  async scrape(): Promise<string> {
    this.#snap = undefined;
    try {
      return await this.registry.metrics();
    } finally {
      this.#snap = undefined;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  requestFinished(app: string, status: number, durationSeconds: number, bytesSent: number): void {
    const s = this.#series(app);
    const cls = statusClass(status);
    s.byClass.set(cls, (s.byClass.get(cls) ?? 0) + 1);
    if (status !== 101) s.duration.observe(durationSeconds);
    s.bytes += bytesSent;
  }

  spawned(app: string, seconds: number): void {
    this.#spawnTime.observe({ app }, seconds);
  }

  #series(app: string): AppSeries {
    let s = this.#apps.get(app);
    if (s === undefined) {
      s = { byClass: new Map(), duration: this.#duration.labels({ app }), bytes: 0 };
      this.#apps.set(app, s);
    }
    return s;
  }
}

/** Entries of /proc/self/fd (Linux), undefined elsewhere. */
function openFds(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length - 1; // minus the fd of the listing itself
  } catch {
    return undefined;
  }
}
