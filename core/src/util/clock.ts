/** A source of time, injected so policy and pool logic can be tested with a fake. */
export interface Clock {
  /** Milliseconds, monotonic enough for durations (performance.timeOrigin + now()). */
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
};
