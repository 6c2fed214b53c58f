/**
 * The sliding TTL of this core's pins, on an injected clock: which pins to
 * (re)write to the store now, and how many sessions this node owns. A pin is
 * written when first served, when its process changed, and again once a
 * refresh interval (a tenth of the TTL, 1 s to 60 s) has passed since the
 * last successful write, so an active session never expires while each
 * request does not cost a store write. Pins not served for a whole TTL are
 * forgotten (the store expires them too).
 */
import type { Clock } from "../util/clock.js";

interface PinState {
  pid: number;
  /** Last request served with this pin. */
  lastUsedAt: number;
  /** Last successful write to the store; -Infinity = never. */
  writtenAt: number;
}

/** How long a written pin is trusted before it is written again. */
export function refreshIntervalMs(ttlMs: number): number {
  return Math.max(1_000, Math.min(60_000, Math.floor(ttlMs / 10)));
}

export class PinTracker {
  readonly #pins = new Map<string, PinState>();
  readonly #clock: Clock;
  readonly ttlMs: number;

  constructor(ttlMs: number, clock: Clock) {
    this.ttlMs = ttlMs;
    this.#clock = clock;
  }

  static #key(app: string, stickyId: string): string {
    return `${app}\n${stickyId}`;
  }

  /**
   * A request of `app` was served locally by the process (`stickyId`, `pid`).
   * Returns true when the pin must be written to the store now.
   */
  served(app: string, stickyId: string, pid: number): boolean {
    const now = this.#clock.now();
    const key = PinTracker.#key(app, stickyId);
    const p = this.#pins.get(key);
    if (p === undefined || p.pid !== pid) {
      this.#pins.set(key, { pid, lastUsedAt: now, writtenAt: -Infinity });
      return true;
    }
    p.lastUsedAt = now;
    return now - p.writtenAt >= refreshIntervalMs(this.ttlMs);
  }

  /** The write decided by served() succeeded (at the time of the call). */
  written(app: string, stickyId: string, pid: number): void {
    const p = this.#pins.get(PinTracker.#key(app, stickyId));
    if (p !== undefined && p.pid === pid) p.writtenAt = this.#clock.now();
  }

  /** The store lost its data or came back: write every pin again on its next use. */
  invalidate(): void {
    for (const p of this.#pins.values()) p.writtenAt = -Infinity;
  }

  /** The pins used within the TTL (to write them all again). */
  entries(): Array<{ app: string; stickyId: string; pid: number }> {
    this.count();
    return [...this.#pins].map(([k, p]) => {
      const at = k.indexOf("\n");
      return { app: k.slice(0, at), stickyId: k.slice(at + 1), pid: p.pid };
    });
  }

  /** Pins used within the TTL (sessions this node owns); forgets the others. */
  count(): number {
    const now = this.#clock.now();
    for (const [k, p] of this.#pins) if (now - p.lastUsedAt >= this.ttlMs) this.#pins.delete(k);
    return this.#pins.size;
  }
}
