/**
 * What the pool tells an observer as it happens (metrics, docs/metrics.md).
 * Counts that status() can carry live in the snapshot instead; this is for
 * events whose individual values matter (durations for a histogram).
 */
export interface PoolObserver {
  /** A process of `app` became ready, `seconds` after its spawn started. */
  spawned(app: string, seconds: number): void;
}

export const NO_OBSERVER: PoolObserver = { spawned: () => undefined };
