/**
 * Pool: app group name → Group, the pool-wide process cap (PassengerMaxPoolSize)
 * with eviction across apps, idle collection, CPU/RSS sampling, restart.txt
 * probes, redeploys and shutdown. Routing and scaling decisions are the pure
 * functions in core/src/policy; Group applies them.
 */
import { randomInt } from "node:crypto";
import { resolve } from "node:path";
import type { AppOptions, ServerOptions } from "../config/schema.js";
import { AbortedError, PoolShutdownError } from "../errors.js";
import type { Logger } from "../log.js";
import { chooseEvictionVictim, processesOverPoolLimit, type EvictableGroup } from "../policy/eviction.js";
import { MAX_STICKY_ID } from "../policy/sticky.js";
import type { Spawner } from "../spawn/spawner.js";
import { systemClock, type Clock } from "../util/clock.js";
import { FERRY_VERSION } from "../version.js";
import { Group, type GroupContext } from "./group.js";
import { cpuPercent, sampleProcess } from "./process-usage.js";
import { NO_OBSERVER, type PoolObserver } from "./observer.js";
import { NO_RECORDER, type RequestRecorder } from "./request-recorder.js";
import type { PoolProcess } from "./process.js";
import type { Session } from "./session.js";
import type { PoolStatus } from "../control/status.js";

export interface PoolDeps {
  readonly spawner: Spawner;
  readonly server: ServerOptions;
  readonly log: Logger;
  readonly clock?: Clock;
  /** Told of spawns as they happen (metrics). */
  readonly observer?: PoolObserver;
  /** Counts the requests served on handed-off connections (the relay counts its own). */
  readonly recorder?: RequestRecorder;
}

export interface CheckoutOptions {
  /** Sticky cookie value from the request, if any. */
  readonly stickyId?: string;
  /** Client went away → stop waiting (AbortedError), leave the queue. */
  readonly signal?: AbortSignal;
  /** Apache config generation of the request (see redeploy). */
  readonly generation?: number;
}

export type RedeployMode = "all" | "changed" | "off";

/** How often CPU/RSS are sampled. */
const METRICS_INTERVAL_MS = 5_000;
/** How often health (stuck event loops, due HTTP checks) is evaluated. */
const HEALTH_TICK_MS = 500;
/** Idle collection runs at least this often when idle retirement is on… */
const MAX_GC_INTERVAL_MS = 10_000;
/** …and at most this often. */
const MIN_GC_INTERVAL_MS = 100;

/** Idle-collector period: a quarter of the idle time, between 100 ms and 10 s. */
export function gcIntervalMs(poolIdleTimeMs: number): number {
  if (poolIdleTimeMs <= 0) return MAX_GC_INTERVAL_MS;
  return Math.max(MIN_GC_INTERVAL_MS, Math.min(MAX_GC_INTERVAL_MS, Math.floor(poolIdleTimeMs / 4)));
}

/** Stable comparison of two option sets (keys sorted, nested env included). */
function sameOptions(a: AppOptions, b: AppOptions): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "undefined";
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  const entries = Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(",")}}`;
}

export class Pool {
  private readonly spawner: Spawner;
  private server: ServerOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly groups = new Map<string, Group>();
  private readonly shutdownController = new AbortController();
  private readonly ctx: GroupContext;
  private closing = false;
  private generation = 0;
  private redeployMode: RedeployMode = "changed";
  private gcTimer: NodeJS.Timeout | null = null;
  private metricsTimer: NodeJS.Timeout | null = null;
  private healthTimer: NodeJS.Timeout | null = null;
  private capacityScheduled = false;
  /** Spawns let through spawnSlot() whose process has not joined its group yet. */
  private executing = 0;
  /** Spawns waiting in spawnSlot() for an app process to exit. */
  private slotWaiters: Array<() => void> = [];

  constructor(deps: PoolDeps) {
    this.spawner = deps.spawner;
    this.server = deps.server;
    this.log = deps.log;
    this.clock = deps.clock ?? systemClock;
    this.ctx = {
      spawner: this.spawner,
      log: this.log,
      clock: this.clock,
      shutdownSignal: this.shutdownController.signal,
      server: () => this.server,
      poolRoom: () => this.poolRoom(),
      freeCapacity: (g) => this.freeCapacity(g),
      spawnSlot: (bypass, signal) => this.spawnSlot(bypass, signal),
      capacityChanged: () => this.capacityChanged(),
      randomStickyId: () => randomInt(1, MAX_STICKY_ID + 1),
      sample: (g, p) => void this.sample(g, p),
      observer: deps.observer ?? NO_OBSERVER,
      recorder: deps.recorder ?? NO_RECORDER,
    };
    this.armTimers();
  }

  /**
   * Check out a process of the app, creating its Group lazily with these
   * options (group key = app.appGroupName). Rejects with QueueFullError,
   * SpawnError, PoolShutdownError or AbortedError.
   */
  async checkout(app: AppOptions, opts: CheckoutOptions = {}): Promise<Session> {
    if (this.closing) throw new PoolShutdownError(`Cannot check out a process of "${app.appGroupName}": the pool is shutting down`);
    if (opts.signal?.aborted === true) {
      throw new AbortedError(`Cannot check out a process of "${app.appGroupName}": the request was aborted`);
    }
    const group = this.groupFor(app, opts.generation);
    try {
      const reason = group.probe.check(this.clock.now(), this.server.statThrottleRateMs);
      if (reason !== null) group.requestRestart(reason);
    } catch (e: unknown) {
      group.log.warn({ err: e }, "Cannot check the restart files");
    }
    return group.checkout(opts.stickyId, opts.signal);
  }

  /**
   * Connection handoff: pass an accepted client connection (its fd) to the
   * least busy ready process of the app's group, after the restart.txt check.
   * False when no process can take it now (none ready, requests queued, the
   * pass failed): the caller serves the connection itself.
   */
  async handOff(app: AppOptions, fd: number): Promise<boolean> {
    if (this.closing) return false;
    const group = this.groups.get(app.appGroupName);
    if (group === undefined) return false;
    try {
      const reason = group.probe.check(this.clock.now(), this.server.statThrottleRateMs);
      if (reason !== null) group.requestRestart(reason);
    } catch (e: unknown) {
      group.log.warn({ err: e }, "Cannot check the restart files");
    }
    return group.handOff(fd);
  }

  private groupFor(app: AppOptions, generation: number | undefined): Group {
    const existing = this.groups.get(app.appGroupName);
    if (existing === undefined) {
      const g = new Group(app, generation ?? this.generation, this.ctx);
      this.groups.set(g.name, g);
      g.log.info({ appRoot: app.appRoot, generation: g.appGeneration }, "Group created");
      return g;
    }
    if (generation !== undefined && generation > existing.appGeneration) {
      const changed = !sameOptions(existing.app, app);
      existing.setOptions(app, generation);
      if (changed && this.redeployMode !== "off") {
        existing.log.info({ generation }, "Options changed by a new configuration generation");
        existing.requestRestart("configuration changed");
        existing.redeployedGeneration = Math.max(existing.redeployedGeneration, generation);
      }
    }
    return existing;
  }

  /** Rolling restart of every group whose appRoot or appGroupName equals `selector`; resolves with the number of groups. */
  async restartApp(selector: string): Promise<number> {
    const root = selector.startsWith("/") ? resolve(selector) : selector;
    let n = 0;
    for (const g of this.groups.values()) {
      if (g.name === selector || g.app.appRoot === selector || resolve(g.app.appRoot) === root) {
        g.requestRestart("restart requested");
        n++;
      }
    }
    return Promise.resolve(n);
  }

  /**
   * A new Apache configuration generation: "all" → rolling restart of every
   * group now; "changed" → a group restarts when the first request carrying
   * `generation` has different options; "off" → new options only recorded.
   */
  redeploy(generation: number, mode: RedeployMode): void {
    this.generation = Math.max(this.generation, generation);
    this.redeployMode = mode;
    this.log.info({ generation, mode }, "Redeploy");
    if (mode !== "all") return;
    for (const g of this.groups.values()) {
      if (g.redeployedGeneration >= generation) continue;
      g.redeployedGeneration = generation;
      g.requestRestart("redeploy");
    }
  }

  /** Apply new server-wide options (graceful): pool size etc. */
  setServerOptions(server: ServerOptions): void {
    this.server = server;
    this.armTimers();
    this.trimToPoolSize();
    this.capacityChanged();
  }

  /** Event-loop lag reported for a process (optional input of the load policy). */
  status(): PoolStatus {
    const groups = [...this.groups.values()].map((g) => g.status());
    return {
      version: FERRY_VERSION,
      maxPoolSize: this.server.maxPoolSize,
      processCount: groups.reduce((n, g) => n + g.processes.length, 0),
      groups,
    };
  }

  /** Stop accepting, let in-flight finish up to timeoutMs, stop all processes (graceful then SIGKILL). */
  async shutdown(timeoutMs: number): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.log.info({ timeoutMs }, "Pool shutting down");
    this.shutdownController.abort(new PoolShutdownError("Cannot spawn: the pool is shutting down"));
    if (this.gcTimer !== null) clearInterval(this.gcTimer);
    if (this.metricsTimer !== null) clearInterval(this.metricsTimer);
    if (this.healthTimer !== null) clearInterval(this.healthTimer);
    this.gcTimer = null;
    this.metricsTimer = null;
    this.healthTimer = null;
    const groups = [...this.groups.values()];
    for (const g of groups) g.close();
    const all = async (): Promise<void> => {
      await Promise.all(groups.map((g) => g.spawnsSettled()));
      await Promise.all(groups.map((g) => g.exited()));
    };
    if (!(await withDeadline(all(), timeoutMs))) {
      for (const g of groups) g.killAll();
      await withDeadline(
        Promise.all(groups.map((g) => g.exited())),
        Math.max(1_000, Math.min(5_000, timeoutMs)),
      );
    }
    this.log.info("Pool stopped");
  }

  // ---- Capacity ---------------------------------------------------------------------------------

  private poolRoom(): number {
    let used = 0;
    for (const g of this.groups.values()) used += g.accepting.length + g.spawning;
    return this.server.maxPoolSize - used;
  }

  private freeCapacity(requester: Group): boolean {
    const victim = chooseEvictionVictim(this.evictable(), requester.name, this.server.maxPoolSize);
    if (victim === null) return false;
    const g = this.groups.get(victim.group);
    if (g === undefined) return false;
    const why = victim.busy
      ? `giving its pool share to "${requester.name}" (pool full, fair share)`
      : `evicted to make room for "${requester.name}" (pool full)`;
    return g.retireByPid(victim.id, why);
  }

  /**
   * App processes in the process table now: ready ones, retired ones that
   * were told to exit, and spawns let through the gate. (A retired process
   * still finishing requests or WebSockets is not counted: it may take long.)
   */
  private processesInTable(): number {
    let n = this.executing;
    for (const g of this.groups.values()) {
      for (const p of g.live) if (p.state === "ready" || p.shutdownSent) n++;
    }
    return n;
  }

  /**
   * The gate before a spawn execs its process: it waits until fewer than
   * maxPoolSize app processes exist, so a process evicted to make room has
   * exited before its replacement starts and the process table never holds
   * more than PassengerMaxPoolSize app processes (issue 4). Rolling restarts
   * (`bypass`) go through at once. Resolves with the release function, to be
   * called once the process joined its group or the spawn failed.
   */
  private spawnSlot(bypass: boolean, signal: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        this.executing--;
        this.grantSlots();
      };
      const grant = (): void => {
        signal.removeEventListener("abort", onAbort);
        this.executing++;
        resolve(release);
      };
      const onAbort = (): void => {
        this.slotWaiters = this.slotWaiters.filter((w) => w !== grant);
        reject(signal.reason instanceof Error ? signal.reason : new Error("Cannot start the process: the spawn was aborted"));
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      if (bypass || (this.slotWaiters.length === 0 && this.processesInTable() < this.server.maxPoolSize)) {
        grant();
        return;
      }
      signal.addEventListener("abort", onAbort, { once: true });
      this.slotWaiters.push(grant);
      // Over the limit (it was lowered, or a restart took one more): make room now.
      this.trimToPoolSize();
    });
  }

  private grantSlots(): void {
    while (this.slotWaiters.length > 0 && this.processesInTable() < this.server.maxPoolSize) {
      const next = this.slotWaiters.shift();
      next?.();
    }
  }

  private evictable(): EvictableGroup[] {
    return [...this.groups.values()].map((g) => ({
      name: g.name,
      minInstances: g.app.minInstances,
      processes: g.accepting.map((p) => ({ id: p.pid, inFlight: p.totalInFlight, upgraded: p.totalUpgraded, lastUsedAt: p.lastUsedAt })),
    }));
  }

  /** Let every group re-evaluate (coalesced): one may be waiting for room. */
  private capacityChanged(): void {
    if (this.capacityScheduled || this.closing) return;
    this.capacityScheduled = true;
    queueMicrotask(() => {
      this.capacityScheduled = false;
      this.grantSlots();
      for (const g of this.groups.values()) g.schedule();
    });
  }

  private trimToPoolSize(): void {
    // Spawns in progress will need their room too.
    let spawning = 0;
    for (const g of this.groups.values()) spawning += g.spawning;
    for (const v of processesOverPoolLimit(this.evictable(), Math.max(0, this.server.maxPoolSize - spawning))) {
      this.groups.get(v.group)?.retireByPid(v.id, `the pool is over its size limit (${this.server.maxPoolSize})`);
    }
  }

  // ---- Timers ---------------------------------------------------------------------------------

  private armTimers(): void {
    if (this.closing) return;
    if (this.gcTimer !== null) clearInterval(this.gcTimer);
    this.gcTimer = setInterval(() => this.collect(), gcIntervalMs(this.server.poolIdleTimeMs));
    this.gcTimer.unref();
    if (this.metricsTimer === null) {
      this.metricsTimer = setInterval(() => this.sampleAll(), METRICS_INTERVAL_MS);
      this.metricsTimer.unref();
    }
    if (this.healthTimer === null) {
      this.healthTimer = setInterval(() => {
        const now = this.clock.now();
        for (const g of this.groups.values()) g.checkHealth(now);
      }, HEALTH_TICK_MS);
      this.healthTimer.unref();
    }
  }

  private collect(): void {
    const now = this.clock.now();
    if (this.server.poolIdleTimeMs > 0) {
      for (const g of this.groups.values()) g.collectIdle(this.server.poolIdleTimeMs, now);
    }
    this.trimToPoolSize();
  }

  private sampleAll(): void {
    for (const g of this.groups.values()) for (const p of g.live) void this.sample(g, p);
  }

  private async sample(g: Group, p: PoolProcess): Promise<void> {
    const s = await sampleProcess(p.pid, this.clock.now());
    if (s === null || p.state === "dead") return;
    const prev = p.lastSample;
    p.lastSample = s;
    g.applySample(p, prev === null ? null : cpuPercent(prev, s), s.rssBytes);
  }
}

/** True when `p` settled within `ms`. */
async function withDeadline(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<boolean>((res) => {
    timer = setTimeout(() => res(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true, () => true), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
