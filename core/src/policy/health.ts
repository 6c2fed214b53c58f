/**
 * Pure: is a ready process unhealthy (docs/health.md)? A Node app process whose
 * loader has not reported its event loop for longer than the event-loop
 * timeout has a stuck loop; a process whose HTTP health check failed the
 * configured number of times in a row fails its check. Either takes it out of
 * rotation and replaces it (pool/group.ts acts). No I/O, no clock.
 */

export type UnhealthyKind = "event_loop" | "health_check";

export interface HealthInput {
  /** Clock ms of the latest event-loop report; null when none arrived yet (or a generic app). */
  readonly loopAt: number | null;
  /** Consecutive failed HTTP health checks. */
  readonly failures: number;
  /** The last failure's reason ("" when none). */
  readonly lastFailure: string;
}

export interface HealthLimits {
  /** No event-loop report for this long = stuck; 0 = not checked. */
  readonly eventLoopTimeoutMs: number;
  /** Failed checks in a row before action; 0 = HTTP checks off. */
  readonly maxFailures: number;
}

export interface Unhealthy {
  readonly kind: UnhealthyKind;
  readonly why: string;
}

export function unhealthy(p: HealthInput, limits: HealthLimits, now: number): Unhealthy | null {
  if (limits.eventLoopTimeoutMs > 0 && p.loopAt !== null && now - p.loopAt > limits.eventLoopTimeoutMs) {
    return { kind: "event_loop", why: `its event loop is stuck (no report for ${Math.round((now - p.loopAt) / 100) / 10} s, limit ${limits.eventLoopTimeoutMs / 1000} s)` };
  }
  if (limits.maxFailures > 0 && p.failures >= limits.maxFailures) {
    return { kind: "health_check", why: `its health check failed ${p.failures} times in a row (${p.lastFailure})` };
  }
  return null;
}
