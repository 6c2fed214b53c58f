/**
 * An Exchange is one HTTP request as a front end hands it to the core's request
 * path (exchange/handle.ts), whatever carried it: a mod_ferry frame connection
 * (front/module/listener.ts) or the standalone HTTP front server (front/http/front-server.ts).
 */
import type { Duplex, Readable } from "node:stream";
import type { AppOptions } from "../config/schema.js";
import type { DoneReport, Lease } from "../protocol/frames.js";

/** The lease could not be handed over now (the connection's send buffer is busy): use the relay path. */
export class LeaseNotSentError extends Error {
  constructor(message: string, opts?: ErrorOptions) {
    super(message, opts);
    this.name = "LeaseNotSentError";
  }
}

/**
 * The direct path of a module front end (docs/protocol.md, "Version 3:
 * leases"): hand the module the process and a connection to it; the module
 * talks to the app itself and reports the end.
 */
export interface LeaseTaker {
  /** Ids of the idle app connections the module holds for this app. */
  readonly held: readonly string[];
  /** The module can use passes (REQUEST_HEAD `pass`, docs/protocol.md "Passes"). */
  readonly pass: boolean;
  /** The module can route pass requests by the sticky-session cookie (REQUEST_HEAD `pass_sticky`). */
  readonly passSticky: boolean;
  /**
   * Send the lease (with `appFd` attached unless `lease.reuse`); resolves with
   * the module's report, or undefined when the module connection closed first.
   * Throws LeaseNotSentError when the descriptor cannot be
   * passed now: nothing was sent, the relay path is still open.
   */
  take(lease: Lease, appFd: number | undefined): Promise<DoneReport | undefined>;
}

export type { RequestHead } from "../protocol/request-head.js";
import type { RequestHead } from "../protocol/request-head.js";


export interface Exchange {
  readonly head: RequestHead;
  readonly app: AppOptions;
  /** Present when the front end can take a lease (mod_ferry, protocol v3). */
  readonly lease?: LeaseTaker | undefined;
  /** The request body; ends at once when there is none. Honour backpressure by reading. */
  readonly body: Readable;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
  /** Send the response head. Call once. */
  writeHead(status: number, headers: readonly string[]): void;
  /** Send a body chunk; false means wait for 'drain' via waitDrain(). */
  write(chunk: Uint8Array): boolean;
  /** Resolves when the client side can take more data (or the exchange ended). */
  waitDrain(): Promise<void>;
  /** Complete the response. */
  end(): void;
  /** The response cannot be completed after the head went out: cut the client connection. */
  abort(code: string, message: string): void;
  /**
   * After writeHead(101, …): the raw client byte stream (both directions).
   * Writing to it sends to the client; reading yields what the client sends.
   */
  upgraded(): Duplex;
  /**
   * After a 101, once the tunnel has closed: `bytesToClient` is what the app
   * (or the host owning the session) sent through it, the upgraded exchange's
   * response bytes as a module's DONE reports them (docs/metrics.md).
   */
  tunnelEnded(bytesToClient: number): void;
}
