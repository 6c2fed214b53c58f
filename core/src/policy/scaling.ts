/**
 * Pure scaling policy for one group (Passenger's `Group::shouldSpawn()` and the
 * idle garbage collector), extended with Ferry's saturation policy for
 * processes without a concurrency limit (docs/scaling.md):
 *
 *   Node apps (processes that send event-loop reports): spawn one more process
 *   when EVERY accepting process is saturated — its last report shows the
 *   event loop busy (utilisation ≥ ELU_SATURATED) while it had two or more
 *   requests at once (work was waiting behind work), or its reports stopped
 *   for LOOP_STALE_MS while it holds two or more requests (a blocked loop) —
 *   and nothing is spawning.
 *
 *   Other apps (generic: no reports): spawn when every accepting process has
 *   had at least one request in flight continuously for SUSTAINED_BUSY_MS and
 *   there are more requests in flight than processes.
 *
 * Every function here is a function of a snapshot and `now`: no I/O, no timers.
 */

/** Event-loop utilisation (0..1) at which a Node process counts as saturated. */
export const ELU_SATURATED = 0.9;
/** Requests a process must have had at once for its busy loop to mean waiting work. */
export const SATURATED_MIN_IN_FLIGHT = 2;
/** A process that reports its loop but has sent nothing for this long is blocked (4 report intervals). */
export const LOOP_STALE_MS = 1_000;
/** Generic apps: how long every process must have been busy before one is added. */
export const SUSTAINED_BUSY_MS = 500;
/** First spawn-failure backoff, doubled per consecutive failure up to the cap. */
export const SPAWN_BACKOFF_BASE_MS = 1_000;
export const SPAWN_BACKOFF_MAX_MS = 30_000;
/** A process that exits sooner than this after starting counts as a quick crash. */
export const QUICK_CRASH_MS = 10_000;

/** What the policy needs of a process's latest event-loop report. */
export interface LoopFigures {
  /** Event-loop utilisation over the report's interval, 0..1. */
  readonly elu: number;
  /** The most requests the process had in flight at once during that interval. */
  readonly peakInFlight: number;
  /** Clock time the report arrived. */
  readonly at: number;
}

export interface ScalingProcess {
  readonly id: number;
  /** Requests in flight (upgraded connections excluded). */
  readonly inFlight: number;
  /** Upgraded (WebSocket) connections open. */
  readonly upgraded: number;
  /** Since when inFlight has been ≥ 1 without a break; null when idle. */
  readonly busySince: number | null;
  /** The process sends event-loop reports (Node apps through the loader). */
  readonly reportsLoop: boolean;
  /** Its latest event-loop report; undefined until the first arrives. */
  readonly loop?: LoopFigures | undefined;
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
  /** Saturation threshold; default ELU_SATURATED. */
  readonly eluSaturated?: number;
  /** Silence after which a reporting process counts as blocked; default LOOP_STALE_MS. */
  readonly loopStaleMs?: number;
  /** Sustained-busy window for generic apps; default SUSTAINED_BUSY_MS. */
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
  /** No limit, Node apps: every process's event loop is saturated with waiting work. */
  | "saturated"
  /** No limit, generic apps: sustained in-flight requests on every process. */
  | "load";

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
  } else if (s.processes.every((p) => p.reportsLoop)) {
    const staleMs = s.loopStaleMs ?? LOOP_STALE_MS;
    const eluLimit = s.eluSaturated ?? ELU_SATURATED;
    if (s.processes.every((p) => isSaturated(p, eluLimit, staleMs, now))) wanted = "saturated";
    else recheckAt = nextStaleAt(s.processes, eluLimit, staleMs, now);
  } else if (s.processes.every((p) => p.busySince !== null)) {
    const window = s.sustainedBusyMs ?? SUSTAINED_BUSY_MS;
    const inFlight = s.processes.reduce((n, p) => n + p.inFlight, 0);
    if (inFlight > live) {
      const since = Math.max(...s.processes.map((p) => p.busySince ?? now));
      if (now - since >= window) wanted = "load";
      else recheckAt = since + window;
    }
  }
  if (wanted === null) {
    return recheckAt === undefined ? { kind: "hold", reason: "not_needed" } : { kind: "hold", reason: "not_yet", recheckAt };
  }
  if (capped) return { kind: "hold", reason: "app_limit" };
  return room(wanted);
}

/**
 * A Node process is saturated when more work is waiting for its event loop
 * than the loop can take: its latest report shows utilisation ≥ `eluLimit`
 * over an interval in which it had SATURATED_MIN_IN_FLIGHT or more requests at
 * once; or its reports stopped `staleMs` ago while it holds that many requests
 * (the loop is blocked, e.g. a long synchronous computation). A process that
 * has not reported yet is not saturated.
 */
export function isSaturated(p: ScalingProcess, eluLimit: number, staleMs: number, now: number): boolean {
  const l = p.loop;
  if (l === undefined) return false;
  if (now - l.at >= staleMs) return p.inFlight >= SATURATED_MIN_IN_FLIGHT;
  return l.elu >= eluLimit && l.peakInFlight >= SATURATED_MIN_IN_FLIGHT;
}

/**
 * When every process will count as saturated by time alone (the loaded ones
 * whose reports stop count as blocked); undefined when some process never will.
 */
function nextStaleAt(processes: readonly ScalingProcess[], eluLimit: number, staleMs: number, now: number): number | undefined {
  let at: number | undefined;
  for (const p of processes) {
    if (isSaturated(p, eluLimit, staleMs, now)) continue;
    if (p.loop === undefined || p.inFlight < SATURATED_MIN_IN_FLIGHT) return undefined;
    at = Math.max(at ?? 0, p.loop.at + staleMs);
  }
  return at;
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
