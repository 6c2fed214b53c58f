/**
 * One module connection (docs/protocol.md, "Connections"): decodes frames,
 * runs one exchange at a time — version 1 one per connection, version 2
 * sequential exchanges, version 3 a lease (LEASE … DONE) or PROCEED and the
 * version 2 relay — with the head, idle and linger deadlines, and after a 101
 * hands out the raw socket for the tunnel.
 */
import net from "node:net";
import { Duplex } from "node:stream";
import { ProtocolError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { FrameDecoder, encodeFrame } from "../../protocol/codec.js";
import { HEAD_DEADLINE_MS, IDLE_DEADLINE_MS, type DoneReport, type Frame, type Lease } from "../../protocol/frames.js";
import { LeaseNotSentError } from "../../exchange/exchange.js";
import { socketFd } from "../../os/socket-fd.js";
import { readModuleHead, type AppMemo } from "./head.js";
import { ModuleExchange } from "./module-exchange.js";
import type { ModuleListenerOptions, SendFdFn } from "./listener-options.js";

type ConnState =
  | "head" // waiting for REQUEST_HEAD (v2: also between exchanges)
  | "decide" // v3: the head was read; the core routes it and answers LEASE or PROCEED (the module sends nothing meanwhile)
  | "leased" // v3: LEASE sent; the module talks to the app and reports DONE
  | "body" // reading BODY frames until END
  | "after-end" // request complete; only ABORT may still come
  | "drain-body" // v2: the response went out before the request's END; discarding BODY until it
  | "upgraded" // after a 101: raw bytes both ways (once the module's END was read)
  | "done"; // response complete; discarding input until the module closes

/**
 * The raw byte stream of an upgraded connection, as the request path sees it.
 * Reading yields what the module sends after the 101 (and its END); writing
 * goes to the socket with its backpressure; end() half-closes the socket.
 */
class RawTunnel extends Duplex {
  readonly #socket: net.Socket;

  constructor(socket: net.Socket) {
    super({ allowHalfOpen: true });
    this.#socket = socket;
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#socket.destroyed) {
      cb(new Error("Cannot write to the upgraded connection: it is closed"));
      return;
    }
    if (this.#socket.write(chunk)) cb();
    else this.#socket.once("drain", () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#socket.destroy();
    cb(err);
  }
}

/**
 * One module connection: one exchange (protocol v1), or sequential exchanges
 * (v2): after the core's END and the module's END the next REQUEST_HEAD may follow.
 */
/** The PROCEED frame's bytes (constant). */
const PROCEED_FRAME = encodeFrame({ kind: "proceed" });

export class ModuleConnection {
  readonly #socket: net.Socket;
  readonly #opts: ModuleListenerOptions;
  readonly #baseLog: Logger;
  readonly #peerPid: number;
  #childLog: Logger | undefined;
  readonly #decoder = new FrameDecoder();
  #state: ConnState = "head";
  #endSeen = false;
  #tunnel: RawTunnel | undefined;
  #headTimer: NodeJS.Timeout | undefined;
  /** #headTimer is the idle deadline (no byte of the next head yet), not the head deadline. */
  #headIdle = false;
  #lingerTimer: NodeJS.Timeout | undefined;
  #exchange: ModuleExchange | undefined;
  /** The current exchange came with a v2 head: the connection may carry the next one. */
  #persistent = false;
  /** The listener is closing: no further exchange on this connection. */
  #closeWhenIdle = false;
  /** Exchanges completed on this connection. */
  #served = 0;
  readonly #sendFd: SendFdFn | undefined;
  /** The client-gone signal of the connection's exchanges (made on first use). */
  #gone: AbortController | undefined;
  #goneNow = false;
  /** The last app options read on this connection and their wire form (a vhost sends the same map every time). */
  #appMemo: AppMemo | undefined;
  /** v3: resolves the current lease with the module's DONE (undefined: the connection closed first). */
  #leaseDone: ((report: DoneReport | undefined) => void) | undefined;

  constructor(socket: net.Socket, opts: ModuleListenerOptions, log: Logger, peerPid: number, sendFd: SendFdFn | undefined) {
    this.#sendFd = sendFd;
    this.#socket = socket;
    this.#opts = opts;
    this.#baseLog = log;
    this.#peerPid = peerPid;
    this.#armHeadTimer();
    socket.on("data", this.#onData);
    socket.on("end", this.#onEof);
    socket.once("close", () => this.#onClose());
  }

  get state(): ConnState {
    return this.#state;
  }

  get signal(): AbortSignal {
    if (this.#gone === undefined) {
      this.#gone = new AbortController();
      if (this.#goneNow) this.#gone.abort();
    }
    return this.#gone.signal;
  }

  abortSignal(): void {
    this.#goneNow = true;
    if (this.#gone !== undefined && !this.#gone.signal.aborted) this.#gone.abort();
  }

  /** Between exchanges (or before the first) with no byte of a head read. */
  get idle(): boolean {
    return this.#state === "head" && this.#exchange === undefined && this.#decoder.bufferedBytes === 0;
  }

  /** A complete REQUEST_HEAD must arrive within the head deadline. */
  #armHeadTimer(): void {
    clearTimeout(this.#headTimer);
    const ms = this.#opts.headDeadlineMs ?? HEAD_DEADLINE_MS;
    this.#headIdle = false;
    this.#headTimer = setTimeout(() => {
      this.#log.warn(`Cannot read request head from module connection: none within ${ms} ms, closing it`);
      this.destroy();
    }, ms);
  }

  /** v2, between exchanges: the next head's first byte must come within the idle deadline. */
  #armIdleTimer(): void {
    clearTimeout(this.#headTimer);
    this.#headIdle = true;
    this.#headTimer = setTimeout(() => {
      this.#log.debug("closing a module connection idle between exchanges");
      this.destroy();
    }, this.#opts.idleDeadlineMs ?? IDLE_DEADLINE_MS);
  }

  /** The connection's logger, made on first use (a pino child per connection is costly on the hot path). */
  get #log(): Logger {
    this.#childLog ??= this.#baseLog.child({ peerPid: this.#peerPid });
    return this.#childLog;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /** No further exchange: close now if between exchanges, else after the current one. */
  closeWhenIdle(): void {
    this.#closeWhenIdle = true;
    if (this.#served > 0 && this.#state === "head" && this.#exchange === undefined && this.#decoder.bufferedBytes === 0) {
      this.destroy();
    }
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#state === "done") return; // response complete: discard
    if (this.#headIdle) this.#armHeadTimer(); // the next head started: it has the head deadline
    const tunnel = this.#tunnel;
    if (tunnel !== undefined && this.#endSeen) {
      if (!tunnel.push(chunk)) this.#socket.pause();
      return;
    }
    try {
      this.#decoder.push(chunk);
      this.#decodeFrames();
    } catch (e: unknown) {
      this.#protocolError(e);
    }
  };

  #decodeFrames(): void {
    for (;;) {
      if (this.#state === "done" || this.#socket.destroyed) return;
      if (this.#tunnel !== undefined && this.#endSeen) return;
      const frame = this.#decoder.next();
      if (frame === undefined) return;
      this.#onFrame(frame);
    }
  }

  #onFrame(frame: Frame): void {
    switch (this.#state) {
      case "head":
        if (frame.kind === "abort" && this.#served > 0) {
          // v2: the client went away while the module relayed a response we had completed.
          this.destroy();
          return;
        }
        if (frame.kind !== "request-head") throw new ProtocolError(`Cannot accept ${frame.kind} frame: expected REQUEST_HEAD first`);
        this.#startExchange(frame.head);
        return;
      case "body":
      case "upgraded": // a 101 went out before the module's END was read
        if (frame.kind === "body") {
          if (this.#state === "body") this.#exchange?.pushBody(frame.data);
        } else if (frame.kind === "end") {
          this.#endSeen = true;
          if (this.#state === "body") {
            this.#state = "after-end";
            this.#exchange?.endBody();
          } else {
            this.#startRaw();
          }
        } else if (frame.kind === "abort") {
          this.#clientAbort(frame.code, frame.message);
        } else {
          throw new ProtocolError(`Cannot accept ${frame.kind} frame: expected BODY, END or ABORT`);
        }
        return;
      case "decide":
        throw new ProtocolError(`Cannot accept ${frame.kind} frame: no frame may follow a version 3 REQUEST_HEAD before LEASE or PROCEED`);
      case "leased":
        if (frame.kind !== "done") throw new ProtocolError(`Cannot accept ${frame.kind} frame: expected DONE for the lease`);
        this.#onDone(frame.report);
        return;
      case "after-end":
        if (frame.kind === "abort") this.#clientAbort(frame.code, frame.message);
        else throw new ProtocolError(`Cannot accept ${frame.kind} frame: the request was complete`);
        return;
      case "drain-body":
        if (frame.kind === "end") this.#nextExchange();
        else if (frame.kind === "abort") this.destroy();
        else if (frame.kind !== "body") throw new ProtocolError(`Cannot accept ${frame.kind} frame: expected BODY, END or ABORT`);
        return;
      case "done":
        return;
    }
  }

  #startExchange(map: Readonly<Record<string, unknown>>): void {
    clearTimeout(this.#headTimer);
    this.#headTimer = undefined;
    const { head, app, generation, version, held, pass, passSticky, memo } = readModuleHead(map, this.#appMemo);
    this.#appMemo = memo;
    this.#persistent = version >= 2;
    this.#state = version >= 3 ? "decide" : "body";
    const ex = new ModuleExchange(head, app, this, this.#socket, this.#opts.bodyHighWaterMark ?? 64 * 1024, version >= 3 ? { held, pass, passSticky } : undefined);
    this.#exchange = ex;
    let handled: Promise<void>;
    try {
      handled = this.#opts.handler(ex, generation);
    } catch (e: unknown) {
      handled = Promise.reject(e);
    }
    handled.then(
      () => this.#handlerDone(ex),
      (e: unknown) => {
        this.#log.error({ err: e }, "Cannot handle request: the request path failed");
        this.#handlerDone(ex);
      },
    );
  }

  /** The request path returned for ex (by then the connection may carry a later exchange). */
  #handlerDone(ex: ModuleExchange): void {
    if (this.#exchange === ex && this.#state === "upgraded") {
      this.destroy();
    } else if (!ex.finished) {
      this.#log.error("Cannot complete response: the request path returned without ending it");
      ex.abort("internal", "The response was not completed");
    }
  }

  /** The module sent ABORT: the client went away. */
  #clientAbort(code: string, message: string): void {
    this.#log.debug({ code }, `module aborted the request: ${message}`);
    this.#exchange?.clientGone();
    this.destroy();
  }

  #protocolError(e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    if (e instanceof ProtocolError) this.#log.warn(`Closing module connection after a protocol error: ${msg}`);
    else this.#log.error({ err: e }, `Closing module connection after an internal error: ${msg}`);
    this.#exchange?.clientGone();
    this.destroy();
  }

  readonly #onEof = (): void => {
    switch (this.#state) {
      case "head":
        try {
          this.#decoder.finish();
        } catch (e: unknown) {
          this.#protocolError(e);
          return;
        }
        this.destroy();
        return;
      case "body":
      case "decide":
        // The module closed its side before END: the request body is incomplete.
        this.#clientAbort("client_aborted", "connection closed before END");
        return;
      case "leased":
        // The Apache child went away before its DONE.
        this.destroy();
        return;
      case "after-end":
        // A half-close after END is allowed: keep sending the response.
        return;
      case "drain-body":
        this.destroy();
        return;
      case "upgraded":
        if (!this.#endSeen) this.#clientAbort("client_aborted", "connection closed before END");
        else this.#tunnel?.push(null); // the client half-closed the tunnel
        return;
      case "done":
        this.destroy();
        return;
    }
  };

  #onClose(): void {
    clearTimeout(this.#headTimer);
    clearTimeout(this.#lingerTimer);
    this.#settleLease(undefined);
    this.#tunnel?.destroy();
    this.#exchange?.clientGone();
  }

  /** v3, relay path: answer PROCEED; the module then sends the body as in version 2. */
  proceed(): void {
    if (this.#state !== "decide") return;
    this.#state = "body";
    this.#socket.write(PROCEED_FRAME);
  }

  /**
   * v3, direct path: send LEASE (with `appFd` attached unless the module
   * reuses its own connection) and resolve with the module's DONE, or
   * undefined when the connection closes first. Throws LeaseNotSentError
   * when the descriptor cannot be passed now (nothing was sent: relay instead).
   */
  lease(lease: Lease, appFd: number | undefined): Promise<DoneReport | undefined> {
    if (this.#state !== "decide") throw new Error(`Cannot send LEASE: the connection is in state ${this.#state}`);
    const frame = encodeFrame({ kind: "lease", lease });
    if (appFd !== undefined) {
      const fd = socketFd(this.#socket);
      if (this.#sendFd === undefined || fd === undefined) throw new LeaseNotSentError("Cannot pass a descriptor on this connection");
      if (this.#socket.writableLength > 0) throw new LeaseNotSentError("Cannot pass a descriptor now: earlier frames are still queued");
      let sent: number;
      try {
        sent = this.#sendFd(fd, frame, appFd);
      } catch (e: unknown) {
        const code = typeof e === "object" && e !== null && "code" in e ? (e as { code: unknown }).code : undefined;
        if (code === "EAGAIN" || code === "EWOULDBLOCK") throw new LeaseNotSentError("Cannot pass a descriptor now: the send buffer is full", { cause: e });
        // The module connection is broken: the exchange ends as if the client went away.
        this.destroy();
        return Promise.resolve(undefined);
      }
      if (sent < frame.length) this.#socket.write(frame.subarray(sent));
    } else {
      this.#socket.write(frame);
    }
    this.#state = "leased";
    return new Promise<DoneReport | undefined>((resolve) => {
      this.#leaseDone = resolve;
    });
  }

  #settleLease(report: DoneReport | undefined): void {
    const done = this.#leaseDone;
    this.#leaseDone = undefined;
    done?.(report);
  }

  /** DONE: the leased exchange is over; the connection is back at its start. */
  #onDone(report: DoneReport): void {
    const ex = this.#exchange;
    this.#served++;
    ex?.leaseEnded();
    this.#exchange = undefined;
    this.#endSeen = false;
    this.#state = "head";
    this.#settleLease(report);
    if (this.#closeWhenIdle || this.#socket.readableEnded) {
      this.destroy();
      return;
    }
    // The next head may already be buffered (DONE and it come in one write): #decodeFrames goes on with it.
    if (this.#decoder.bufferedBytes > 0) this.#armHeadTimer();
    else this.#armIdleTimer();
  }

  /**
   * Called by the exchange at writeHead(101): frames end here. Returns the
   * stream of raw bytes; they start after the module's END (already read, or
   * still to come).
   */
  switchToRaw(): Duplex {
    const tunnel = new RawTunnel(this.#socket);
    this.#tunnel = tunnel;
    this.#state = "upgraded";
    if (this.#endSeen) this.#startRaw();
    return tunnel;
  }

  /** v2: the exchange is over both ways; wait for the next REQUEST_HEAD, within the idle then the head deadline. */
  #nextExchange(): void {
    this.#exchange = undefined;
    this.#endSeen = false;
    this.#state = "head";
    if (this.#closeWhenIdle || this.#socket.readableEnded) {
      this.destroy();
      return;
    }
    if (this.#decoder.bufferedBytes > 0) this.#armHeadTimer();
    else this.#armIdleTimer();
    this.#socket.resume();
    // A head already buffered (the module does not pipeline, but may) is
    // decoded outside the caller's stack (ex.end() runs inside the request path).
    if (this.#decoder.bufferedBytes > 0) {
      setImmediate(() => {
        try {
          this.#decodeFrames();
        } catch (e: unknown) {
          this.#protocolError(e);
        }
      });
    }
  }

  /** The END was read after the 101: what follows it is raw. */
  #startRaw(): void {
    const rest = this.#decoder.takeRaw();
    if (rest.length > 0 && this.#tunnel?.push(rest) === false) this.#socket.pause();
  }

  /**
   * Called by the exchange when the response went out: with END (`complete`)
   * a v2 connection goes on to the next exchange once the module's END is
   * read; after an ABORT, or on v1, the connection ends.
   */
  responseDone(complete: boolean): void {
    if (this.#state === "upgraded") return;
    this.#served++;
    // A module that half-closed after its END gets no further exchange.
    if (complete && this.#persistent && !this.#closeWhenIdle && !this.#socket.destroyed && !this.#socket.readableEnded) {
      if (this.#state === "after-end") {
        this.#nextExchange();
        return;
      }
      if (this.#state === "body") {
        // The app answered before reading the whole body: skip the rest of it.
        this.#state = "drain-body";
        this.#exchange?.discardBody();
        this.#socket.resume();
        return;
      }
    }
    this.#state = "done";
    this.#socket.end();
    this.#exchange?.discardBody();
    if (this.#socket.readableEnded) {
      this.destroy();
      return;
    }
    // Keep reading (and discarding) what the module still sends, so it sees our
    // frames rather than a reset; close when it closes, or after the linger time.
    this.#socket.resume();
    this.#lingerTimer = setTimeout(() => this.destroy(), this.#opts.lingerMs ?? HEAD_DEADLINE_MS);
  }
}
