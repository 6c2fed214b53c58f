/**
 * Pure scaling policy for one group (Passenger's `Group::shouldSpawn()` and the
 * idle garbage collector), extended with Ferry's default load policy for
 * processes without a concurrency limit (docs/scaling.md):
 *
 *   spawn one more process when every accepting process has had at least one
 *   request in flight continuously for SUSTAINED_BUSY_MS, there are more
 *   requests in flight than processes (or every process reports event-loop lag
 *   of at least LAG_THRESHOLD_MS), and nothing is spawning.
 *
 * Every function here is a function of a snapshot and `now`: no I/O, no timers.
 */

/** How long every process must have been busy before the load policy adds one. */
export const SUSTAINED_BUSY_MS = 500;
/** Event-loop lag (reported by the loader) that counts as saturation. */
export const LAG_THRESHOLD_MS = 100;
/** First spawn-failure backoff, doubled per consecutive failure up to the cap. */
export const SPAWN_BACKOFF_BASE_MS = 1_000;
export const SPAWN_BACKOFF_MAX_MS = 30_000;
/** A process that exits sooner than this after starting counts as a quick crash. */
export const QUICK_CRASH_MS = 10_000;

export interface ScalingProcess {
  readonly id: number;
  /** Requests in flight (upgraded connections excluded). */
  readonly inFlight: number;
  /** Upgraded (WebSocket) connections open. */
  readonly upgraded: number;
  /** Since when inFlight has been ≥ 1 without a break; null when idle. */
  readonly busySince: number | null;
  /** Event-loop lag last reported by the loader, if any. */
  readonly lagMs?: number | undefined;
  readonly lastUsedAt: number;
  /** Belongs to an older restart generation (being replaced by a rolling restart). */
  readonly stale: boolean;
}

export interface ScalingSnapshot {
  /** Accepting processes (ready, not retiring). */
  readonly processes: readonly ScalingProcess[];
  /** Spawns in progress. */
  readonly spawning: number;
  /** Requests waiting in the group's queue. */
  readonly queueLength: number;
  /** A rolling restart is running. */
  readonly restarting: boolean;
  readonly minInstances: number;
  /** Effective per-app cap; 0 = none (see effectiveMaxInstances). */
  readonly maxInstances: number;
  /** PassengerForceMaxConcurrentRequestsPerProcess; 0 = unlimited. */
  readonly maxConcurrency: number;
  /** Processes the pool can still start without evicting (≤ 0 when full). */
  readonly poolRoom: number;
  /** No spawn before this time (spawn-failure or crash backoff); 0 = none. */
  readonly notBefore: number;
  /** Event-loop lag threshold; default LAG_THRESHOLD_MS. */
  readonly lagThresholdMs?: number;
  /** Sustained-busy window; default SUSTAINED_BUSY_MS. */
  readonly sustainedBusyMs?: number;
}

export type SpawnReason =
  /** Replace a stale process during a rolling restart. */
  | "restart"
  /** Below PassengerMinInstances. */
  | "min"
  /** Requests are waiting and nothing serves them. */
  | "demand"
  /** Every process is at its concurrency limit, or requests are queued. */
  | "busy"
  /** Default load policy: sustained in-flight requests on every process. */
  | "load"
  /** Default load policy: event-loop lag on every busy process. */
  | "lag";

export type HoldReason = "backoff" | "spawning" | "app_limit" | "not_needed" | "not_yet";

export type SpawnDecision =
  | {
      readonly kind: "spawn";
      readonly reason: SpawnReason;
      /** The pool is full: the caller must free room first (evict), or wait. */
      readonly needsRoom: boolean;
    }
  | {
      readonly kind: "hold";
      readonly reason: HoldReason;
      /** When the decision may change by time alone (backoff ends, busy window fills). */
      readonly recheckAt?: number;
    };

/** The per-app cap from PassengerMaxInstancesPerApp (app) and the server-wide one; 0 = none. */
export function effectiveMaxInstances(appMax: number, serverMax: number): number {
  const caps = [appMax, serverMax].filter((n) => n > 0);
  return caps.length === 0 ? 0 : Math.min(...caps);
}

/** Backoff after `failures` consecutive spawn failures (≥ 1): 1 s, 2 s, 4 s … capped at 30 s. */
export function spawnBackoffMs(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(SPAWN_BACKOFF_MAX_MS, SPAWN_BACKOFF_BASE_MS * 2 ** Math.min(failures - 1, 30));
}

/** Delay before respawning after the `streak`-th quick crash in a row: none for the first. */
export function crashRespawnDelayMs(streak: number): number {
  return streak <= 1 ? 0 : spawnBackoffMs(streak - 1);
}

/** Should the group start one more process now? */
export function shouldSpawn(s: ScalingSnapshot, now: number): SpawnDecision {
  const live = s.processes.length;
  const total = live + s.spawning;
  const room = (reason: SpawnReason): SpawnDecision => ({ kind: "spawn", reason, needsRoom: s.poolRoom <= 0 });

  if (now < s.notBefore) return { kind: "hold", reason: "backoff", recheckAt: s.notBefore };

  // A rolling restart replaces stale processes one at a time; it may exceed the
  // caps by the one process being spawned (a stale one is retired as soon as it is ready).
  if (s.restarting && s.spawning === 0 && s.processes.some((p) => p.stale)) return room("restart");

  const capped = s.maxInstances > 0 && total >= s.maxInstances;
  if (total < s.minInstances && !capped) return room(s.queueLength > 0 && live === 0 ? "demand" : "min");
  if (live === 0 && s.spawning === 0 && s.queueLength > 0) return room("demand");
  if (s.spawning > 0) return { kind: "hold", reason: "spawning" };
  if (live === 0) return { kind: "hold", reason: "not_needed" };

  let wanted: SpawnReason | null = null;
  let recheckAt: number | undefined;
  if (s.maxConcurrency > 0) {
    if (s.queueLength > 0 || s.processes.every((p) => p.inFlight >= s.maxConcurrency)) wanted = "busy";
  } else if (s.queueLength > 0) {
    wanted = "busy";
  } else if (s.processes.every((p) => p.busySince !== null)) {
    const window = s.sustainedBusyMs ?? SUSTAINED_BUSY_MS;
    const lagLimit = s.lagThresholdMs ?? LAG_THRESHOLD_MS;
    const inFlight = s.processes.reduce((n, p) => n + p.inFlight, 0);
    const lagging = s.processes.every((p) => p.lagMs !== undefined && p.lagMs >= lagLimit);
    if (inFlight > live || lagging) {
      const since = Math.max(...s.processes.map((p) => p.busySince ?? now));
      if (now - since >= window) wanted = inFlight > live ? "load" : "lag";
      else recheckAt = since + window;
    }
  }
  if (wanted === null) {
    return recheckAt === undefined ? { kind: "hold", reason: "not_needed" } : { kind: "hold", reason: "not_yet", recheckAt };
  }
  if (capped) return { kind: "hold", reason: "app_limit" };
  return room(wanted);
}

export interface IdleLimits {
  /** PassengerPoolIdleTime in ms; 0 = never retire idle processes. */
  readonly idleTimeMs: number;
  readonly minInstances: number;
}

/**
 * Processes to retire because they have been idle (no request, no upgraded
 * connection) for the idle time, never going below minInstances accepting
 * processes. Least recently used first.
 */
export function idleProcessesToRetire(processes: readonly ScalingProcess[], limits: IdleLimits, now: number): readonly number[] {
  if (limits.idleTimeMs <= 0) return [];
  const spare = processes.length - Math.max(0, limits.minInstances);
  if (spare <= 0) return [];
  return processes
    .filter((p) => p.inFlight === 0 && p.upgraded === 0 && now - p.lastUsedAt >= limits.idleTimeMs)
    .sort((a, b) => a.lastUsedAt - b.lastUsedAt)
    .slice(0, spare)
    .map((p) => p.id);
}
