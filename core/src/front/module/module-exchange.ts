/**
 * The Exchange the request path sees for one exchange on a module connection
 * (docs/protocol.md): the request body as a Readable fed by BODY frames, the
 * response written as RESPONSE_HEAD/BODY/END frames, the raw stream after a
 * 101, and on a version 3 connection the lease (the direct path).
 */
import type net from "node:net";
import { Readable, type Duplex } from "node:stream";
import type { AppOptions } from "../../config/schema.js";
import { encodeBodyPrefix, encodeFrame } from "../../protocol/codec.js";
import { MAX_BODY_CHUNK, type DoneReport, type Lease } from "../../protocol/frames.js";
import type { RequestHead } from "../../protocol/request-head.js";
import { fromByteString } from "../../protocol/validate.js";
import type { Exchange, LeaseTaker } from "../../exchange/exchange.js";
import { drained } from "../../util/backpressure.js";

/** What an exchange needs of its module connection (connection.ts). */
export interface ExchangeConnection {
  readonly state: string;
  /**
   * Aborted when the client (the module connection) goes away. One per
   * connection, shared by its sequential exchanges: an AbortController per
   * request is a measurable share of a leased request's cost.
   */
  readonly signal: AbortSignal;
  /** The current exchange's client went away: abort the signal. */
  abortSignal(): void;
  /** v3, relay path: answer PROCEED (no-op unless the connection is deciding). */
  proceed(): void;
  lease(lease: Lease, appFd: number | undefined): Promise<DoneReport | undefined>;
  /** The response went out: END (complete) or ABORT. */
  responseDone(complete: boolean): void;
  /** After a 101: the raw byte stream. */
  switchToRaw(): Duplex;
}

/**
 * The wire form of an ABORT code (docs/protocol.md §ABORT): snake_case;
 * a FerryError code loses its FERRY_ERR_ prefix (FERRY_ERR_APP_CRASHED → app_crashed).
 */
export function wireAbortCode(code: string): string {
  const bare = code.startsWith("FERRY_ERR_") ? code.slice("FERRY_ERR_".length) : code;
  const snake = bare.toLowerCase().replace(/[^a-z0-9_]+/g, "_");
  return snake === "" ? "internal" : snake;
}

/** The END frame's bytes (constant). */
const END_FRAME = encodeFrame({ kind: "end" });

/** The Exchange the request path sees for one module connection. */
export class ModuleExchange implements Exchange {
  readonly head: RequestHead;
  /** v3 only: the direct path (docs/protocol.md, "Version 3: leases"). */
  readonly lease: LeaseTaker | undefined;
  readonly app: AppOptions;
  /** The request body, made on first use (a leased exchange never touches it). */
  #body: Readable | undefined;
  readonly #highWaterMark: number;
  readonly #conn: ExchangeConnection;
  readonly #socket: net.Socket;
  #headSent = false;
  #tunnel: Duplex | undefined;
  #finished = false;
  /** The socket is corked by us; an uncork is scheduled for the end of this loop turn. */
  #corked = false;

  /** `v3`: what a version 3 head said of the direct path (absent for older heads). */
  constructor(
    head: RequestHead, app: AppOptions, conn: ExchangeConnection, socket: net.Socket, highWaterMark: number,
    v3: { readonly held: readonly string[]; readonly pass: boolean; readonly passSticky: boolean } | undefined,
  ) {
    this.head = head;
    this.app = app;
    this.#conn = conn;
    this.#socket = socket;
    this.#highWaterMark = highWaterMark;
    this.lease = v3 === undefined ? undefined : {
      held: v3.held,
      pass: v3.pass,
      passSticky: v3.passSticky,
      take: (lease: Lease, appFd: number | undefined): Promise<DoneReport | undefined> => {
        if (this.#finished) return Promise.resolve(undefined);
        return conn.lease(lease, appFd);
      },
    };
  }

  get signal(): AbortSignal {
    return this.#conn.signal;
  }

  get body(): Readable {
    if (this.#body === undefined) {
      const conn = this.#conn;
      const socket = this.#socket;
      this.#body = new Readable({
        highWaterMark: this.#highWaterMark,
        read: () => {
          conn.proceed();
          if (conn.state !== "upgraded") socket.resume();
        },
      });
    }
    return this.#body;
  }

  /** DONE arrived: the exchange is over (no response frames of ours). */
  leaseEnded(): void {
    this.#finished = true;
    if (this.#body !== undefined && !this.#body.destroyed) this.#body.destroy();
  }

  /** The response went out completely (END or ABORT), or the connection is gone. */
  get finished(): boolean {
    return this.#finished;
  }

  pushBody(data: Uint8Array): void {
    if (this.#finished || this.body.destroyed || data.length === 0) return;
    if (!this.body.push(data)) this.#socket.pause();
  }

  endBody(): void {
    if (!this.body.destroyed) this.body.push(null);
    // Keep reading: an ABORT or the connection closing must still be seen.
    this.#socket.resume();
  }

  /** The response is complete: drop whatever request body is still buffered. */
  discardBody(): void {
    if (this.#body !== undefined && !this.#body.readableEnded) this.#body.destroy();
  }

  /** The client (or the module) went away: abort the signal unless the response already completed. */
  clientGone(): void {
    if (this.#body !== undefined && !this.#body.readableEnded) this.#body.destroy();
    if (this.#finished && this.#tunnel === undefined) return;
    this.#finished = true;
    this.#conn.abortSignal();
  }

  writeHead(status: number, headers: readonly string[]): void {
    if (this.#finished || this.#socket.destroyed) return;
    this.#conn.proceed();
    if (this.#headSent) throw new Error("Cannot send response head: it was already sent");
    if (status === 101 && !this.head.upgrade) throw new Error("Cannot switch protocols: the request did not ask to upgrade");
    const frame = encodeFrame({ kind: "response-head", status, headers: headers.map(fromByteString) });
    this.#headSent = true;
    if (status === 101) {
      this.#socket.write(frame);
      this.#tunnel = this.#conn.switchToRaw();
      return;
    }
    // Head, body and END usually come from one read of the app's answer: cork
    // so they leave in one writev (and the module wakes once), not one syscall each.
    this.#cork();
    this.#socket.write(frame);
  }

  /** Cork until end()/abort() or the end of this event-loop turn, whichever comes first. */
  #cork(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.#socket.cork();
    setImmediate(this.#uncork);
  }

  readonly #uncork = (): void => {
    if (!this.#corked) return;
    this.#corked = false;
    this.#socket.uncork();
  };

  write(chunk: Uint8Array): boolean {
    if (this.#finished || this.#socket.destroyed) return true;
    if (!this.#headSent) throw new Error("Cannot write response body: no head was sent");
    if (this.#tunnel !== undefined) throw new Error("Cannot write response body: the connection was upgraded");
    if (chunk.length === 0) return !this.#socket.writableNeedDrain;
    this.#cork();
    let ok = true;
    for (let at = 0; at < chunk.length; at += MAX_BODY_CHUNK) {
      const piece = chunk.subarray(at, Math.min(chunk.length, at + MAX_BODY_CHUNK));
      this.#socket.write(encodeBodyPrefix(piece.length));
      ok = this.#socket.write(piece);
    }
    return ok;
  }

  waitDrain(): Promise<void> {
    return drained(this.#socket);
  }

  end(): void {
    if (this.#finished || this.#socket.destroyed) return;
    if (this.#tunnel !== undefined) return; // the tunnel ends it
    if (!this.#headSent) {
      this.abort("internal", "The response ended without a head");
      return;
    }
    this.#finished = true;
    this.#socket.write(END_FRAME);
    this.#uncork();
    this.#conn.responseDone(true);
  }

  abort(code: string, message: string): void {
    if (this.#finished || this.#socket.destroyed) return;
    this.#conn.proceed();
    if (this.#tunnel !== undefined) {
      this.#socket.destroy();
      return;
    }
    this.#finished = true;
    this.#socket.write(encodeFrame({ kind: "abort", code: wireAbortCode(code), message }));
    this.#uncork();
    this.#conn.responseDone(false);
  }

  upgraded(): Duplex {
    if (this.#tunnel === undefined) throw new Error("Cannot use the upgraded connection: no 101 response was sent");
    return this.#tunnel;
  }

  tunnelEnded(): void {
    // nothing to report: the module counts nothing of a relayed tunnel
  }
}
