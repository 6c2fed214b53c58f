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

/** Reports go out at most this often while requests keep coming (ms). */
export const REPORT_COALESCE_MS = 5;

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
  /** Something changed since the last report. */
  #dirty = false;
  /** The connection handoff's counts (set by handoff-adopter.ts when it runs). */
  connectionCounts: () => ConnectionCounts = () => NO_CONNECTIONS;

  constructor(private readonly send: (msg: LoaderMessage) => void) {}

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
      setImmediate(() => { this.#inTurn = false; });
    }
    this.#turnStarts++;
    this.#peak = Math.max(this.#peak, this.#inFlight, this.#turnStarts);
    this.changed();
  }

  /** A request ended: status sent (0 = no head), duration in ms, bytes written. */
  finished(status: number, ms: number, bytes: number): void {
    this.#inFlight--;
    this.#done.push([status, Math.round(ms * 100) / 100, Math.max(0, bytes)]);
    this.changed();
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
    this.#dirty = true;
    if (this.#scheduled) return;
    this.#scheduled = true;
    const wait = REPORT_COALESCE_MS - (performance.now() - this.#sentAt);
    if (wait <= 0) {
      setImmediate(() => this.#send());
      return;
    }
    setTimeout(() => this.#send(), wait);
  }

  #send(): void {
    this.#scheduled = false;
    this.#sentAt = performance.now();
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
