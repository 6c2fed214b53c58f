/**
 * The loader's "reqs" reports (messages.ts): the requests this process serves
 * without the core seeing each one — on connections the core handed over
 * (`ferry start --connection-handoff`, handoff-adopter.ts) and requests the
 * module sent with a pass (pass-requests.ts, docs/protocol.md "Passes") —
 * counted in one place and reported coalesced, so the core's in-flight
 * counts, processed totals, scaling and metrics include them.
 *
 * Runs INSIDE the app process: node: built-ins and this folder only.
 */
import type { DirectErrorPage, DirectRequest, LoaderMessage } from "./messages.js";
import { MAX_REQS_PER_MESSAGE } from "./messages.js";

/**
 * An upgrade, a connection or an error page goes out at the end of the
 * event-loop turn, or this long after the previous report (ms).
 */
export const REPORT_COALESCE_MS = 5;

/**
 * Requests started and finished — the counts (in flight for least-busy
 * routing and scaling, finished ones for totals and metrics) — go out at the
 * end of the turn when no report went out for this long (ms), else this long
 * after the previous one: a process busy with requests writes one report
 * per this many ms instead of one per 5 ms.
 *
 * Each report costs the app a write and the core a wake-up and a parse
 * (about 60 µs of core CPU); at 25 ms those made the tail of Apache's slow
 * scenario worse than mod_proxy_balancer's (bench/, docs/performance.md).
 * Nothing that picks a process per request reads these counts any more: a
 * pass request is picked by the modules' own shared counts, a handed-off
 * connection counts as in flight from the handoff until a report. The core
 * routes the requests it leases, scales and retires by them, for which a
 * tenth of a second is fresh enough.
 */
export const REPORT_STEADY_MS = 100;

/** The handed-off connections' side of a report (zero without connection handoff). */
export interface ConnectionCounts {
  /** Handed-off connections open now. */
  readonly connections: number;
  /** Connections received since the start. */
  readonly adopted: number;
  /** Received connections that have not brought a request yet. */
  readonly fresh: number;
}

const NO_CONNECTIONS: ConnectionCounts = { connections: 0, adopted: 0, fresh: 0 };

/** The clock and timers a reporter uses (tests pass fakes). */
export interface ReporterTimers {
  /** Monotonic ms. */
  now(): number;
  /** Run `fn` after `ms`; returns a handle for cancel(). */
  after(ms: number, fn: () => void): unknown;
  cancel(handle: unknown): void;
  /** Run `fn` at the end of this event-loop turn (after I/O callbacks). */
  endOfTurn(fn: () => void): void;
}

const NODE_TIMERS: ReporterTimers = {
  now: () => performance.now(),
  after: (ms, fn) => setTimeout(fn, ms),
  cancel: (h) => clearTimeout(h as NodeJS.Timeout),
  endOfTurn: (fn) => { setImmediate(fn); },
};

export class RequestReporter {
  #inFlight = 0;
  #upgraded = 0;
  /** Requests started since the last report was sent (this event-loop turn). */
  #turnStarts = 0;
  /** A request started in this event-loop turn already. */
  #inTurn = false;
  #peak = 0;
  /** When the last report went out (performance.now()). */
  #sentAt = -Infinity;
  #done: DirectRequest[] = [];
  #pages: DirectErrorPage[] = [];
  #scheduled = false;
  /** The longest wait from #sentAt the scheduled report allows (REPORT_COALESCE_MS or REPORT_STEADY_MS). */
  #within = 0;
  /** The scheduled report's timer; undefined when none or when it is due at the end of this turn. */
  #timer: unknown;
  readonly #sendNow = (): void => this.#send();
  readonly #turnEnded = (): void => { this.#inTurn = false; };
  /** Something changed since the last report. */
  #dirty = false;
  /** The connection handoff's counts (set by handoff-adopter.ts when it runs). */
  connectionCounts: () => ConnectionCounts = () => NO_CONNECTIONS;

  constructor(private readonly send: (msg: LoaderMessage) => void, private readonly timers: ReporterTimers = NODE_TIMERS) {}

  get inFlight(): number {
    return this.#inFlight;
  }

  get upgraded(): number {
    return this.#upgraded;
  }

  /** A request starts: the requests started in one event-loop turn count as at once (peak). */
  started(): void {
    this.#inFlight++;
    if (!this.#inTurn) {
      this.#inTurn = true;
      this.#turnStarts = 0;
      this.timers.endOfTurn(this.#turnEnded);
    }
    this.#turnStarts++;
    if (this.#inFlight > this.#peak) this.#peak = this.#inFlight;
    if (this.#turnStarts > this.#peak) this.#peak = this.#turnStarts;
    this.#schedule(REPORT_STEADY_MS);
  }

  /** A request ended: status sent (0 = no head), duration in ms, bytes written. */
  finished(status: number, ms: number, bytes: number): void {
    this.#inFlight--;
    this.#done.push([status, Math.round(ms * 100) / 100, bytes > 0 ? bytes : 0]);
    this.#schedule(REPORT_STEADY_MS);
  }

  upgradeOpened(): void {
    this.#upgraded++;
    this.changed();
  }

  upgradeClosed(): void {
    this.#upgraded--;
    this.changed();
  }

  /** An error page the loader answered (the core logs it with its id). */
  page(p: DirectErrorPage): void {
    this.#pages.push(p);
    this.changed();
  }

  /**
   * Report soon: at the end of this event-loop turn when nothing was sent for
   * REPORT_COALESCE_MS, else when that much has passed. Under load this is one
   * message (one write) per few ms instead of one per turn; `peak` still
   * counts per turn (started()).
   */
  changed(): void {
    this.#schedule(REPORT_COALESCE_MS);
  }

  /**
   * Report at the end of this event-loop turn when nothing was sent for
   * `within` ms, else once that much has passed since the last report; a
   * report already scheduled sooner stands.
   */
  #schedule(within: number): void {
    this.#dirty = true;
    if (this.#scheduled) {
      // Due at the end of this turn (setImmediate) or sooner than asked: nothing to change.
      if (this.#timer === undefined || this.#within <= within) return;
      this.timers.cancel(this.#timer);
    }
    this.#scheduled = true;
    this.#within = within;
    const wait = within - (this.timers.now() - this.#sentAt);
    if (wait <= 0) {
      this.#timer = undefined;
      this.timers.endOfTurn(this.#sendNow);
      return;
    }
    this.#timer = this.timers.after(wait, this.#sendNow);
  }

  #send(): void {
    this.#scheduled = false;
    this.#timer = undefined;
    // flush() may have sent everything already (exiting, the handoff's crash pages).
    if (!this.#dirty) return;
    this.#sentAt = this.timers.now();
    this.flush();
  }

  /** The process exits: send what changed since the last report (the scheduled one would not run). */
  exiting(): void {
    if (this.#dirty) this.flush();
  }

  /** Send a report now (also synchronously, from process 'exit'). */
  flush(): void {
    this.#dirty = false;
    const c = this.connectionCounts();
    do {
      const done = this.#done.splice(0, MAX_REQS_PER_MESSAGE);
      const pages = this.#pages.splice(0, MAX_REQS_PER_MESSAGE);
      this.send({
        type: "reqs", inFlight: this.#inFlight, upgraded: this.#upgraded, connections: c.connections, done,
        peak: this.#peak, adopted: c.adopted, fresh: c.fresh, pages,
      });
    } while (this.#done.length > 0 || this.#pages.length > 0);
    this.#peak = this.#inFlight;
  }
}
