/** A source of time, injected so policy and pool logic can be tested with a fake. */
export interface Clock {
  /** Milliseconds, monotonic enough for durations (performance.timeOrigin + now()). */
  now(): number;
}

/** The longest delay setTimeout() and AbortSignal.timeout() take: 2^31-1 ms, about 24.8 days. */
export const MAX_TIMER_DELAY_MS = 2_147_483_647;

/**
 * A configured duration as a timer delay. Longer durations (directives allow a
 * year) are clamped: setTimeout() would fire after 1 ms, AbortSignal.timeout() throw.
 */
export function timerDelay(ms: number): number {
  return Math.max(0, Math.min(ms, MAX_TIMER_DELAY_MS));
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
};
