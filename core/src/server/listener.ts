/**
 * The Unix-socket server mod_ferry talks to (docs/protocol.md): protocol v2
 * connections carry sequential exchanges (v1: one each). Checks the peer's credentials, decodes the REQUEST_HEAD (within
 * a deadline), turns the connection into an Exchange for the request path
 * (BODY frames → a Readable with backpressure; the response → frames), and
 * after a 101 hands out the raw socket for the tunnel. A malformed frame
 * closes that connection only.
 */
import { promises as fsp } from "node:fs";
import net from "node:net";
import { Duplex, Readable } from "node:stream";
import { ProtocolError } from "../errors.js";
import type { AppOptions } from "../config/schema.js";
import type { Logger } from "../log.js";
import { FrameDecoder, encodeBodyPrefix, encodeFrame } from "../protocol/codec.js";
import { HEAD_DEADLINE_MS, IDLE_DEADLINE_MS, MAX_BODY_CHUNK, MAX_MODULE_CONNECTIONS, type DoneReport, type Frame, type Lease } from "../protocol/frames.js";
import { fromByteString, validateRequestHead } from "../protocol/validate.js";
import type { Exchange, LeaseTaker, RequestHead } from "./exchange.js";

/** Peer credentials of a Unix socket connection. */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** The request path: handles one exchange to completion (server/request.ts's handleExchange). */
export type ExchangeHandler = (ex: Exchange, generation: number) => Promise<void>;

export interface ModuleListenerOptions {
  /** Socket path (`<instance dir>/module.sock`). */
  readonly path: string;
  readonly log: Logger;
  /** Apache's uid (`User`): the only non-root uid allowed to connect. */
  readonly apacheUid: number;
  /** Apache's gid: group owner of the socket when the core runs as root. */
  readonly apacheGid?: number;
  readonly handler: ExchangeHandler;
  /** Peer credentials of a socket fd; default the native addon's (core/src/os/native.ts). */
  readonly peerCred?: (fd: number) => PeerCredentials;
  /**
   * Close a connection that sent no complete REQUEST_HEAD within this time
   * after it opened, or after the first byte of a later head. Default 30 s.
   */
  readonly headDeadlineMs?: number;
  /** Close a v2 connection idle between exchanges (no byte of the next head) this long. Default 5 min. */
  readonly idleDeadlineMs?: number;
  /**
   * Open module connections at most. At the cap, a new connection displaces
   * the oldest one that is between exchanges; when none is, it is refused. Default 4096.
   */
  readonly maxConnections?: number;
  /** After the response went out, how long to keep reading (discarding) what the module still sends. */
  readonly lingerMs?: number;
  /** listen() backlog (PassengerSocketBacklog). */
  readonly backlog?: number;
  /** Buffered request body bytes before the socket is paused. Default 64 KiB. */
  readonly bodyHighWaterMark?: number;
  /** Send bytes with a descriptor attached (SCM_RIGHTS); default the native addon's (os/native.ts). */
  readonly sendFd?: SendFdFn;
}

/** sendmsg with one descriptor attached; returns the bytes sent, throws (code EAGAIN) when none could be. */
export type SendFdFn = (sockFd: number, data: Buffer, fd: number) => number;

/** The lease could not be handed over now (the connection's send buffer is busy): use the relay path. */
export class LeaseNotSentError extends Error {
  constructor(message: string, opts?: ErrorOptions) {
    super(message, opts);
    this.name = "LeaseNotSentError";
  }
}

/** Whether a peer may use the module socket: root and Apache's uid only. */
export function isPeerAllowed(cred: Pick<PeerCredentials, "uid">, apacheUid: number): boolean {
  return cred.uid === 0 || cred.uid === apacheUid;
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

/** The file descriptor of a connected net.Socket (Node keeps it on the internal handle). */
export function socketFd(socket: net.Socket): number | undefined {
  const handle: unknown = Reflect.get(socket, "_handle");
  if (typeof handle !== "object" || handle === null) return undefined;
  const fd: unknown = Reflect.get(handle, "fd");
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
}

async function defaultPeerCred(): Promise<(fd: number) => PeerCredentials> {
  const native = await import("../os/native.js");
  return native.peerCred;
}

async function defaultSendFd(): Promise<SendFdFn> {
  const native = await import("../os/native.js");
  return native.sendFd;
}

export class ModuleListener {
  readonly path: string;
  readonly #opts: ModuleListenerOptions;
  readonly #server: net.Server;
  readonly #connections = new Set<ModuleConnection>();
  #peerCred: ((fd: number) => PeerCredentials) | undefined;
  #sendFd: SendFdFn | undefined;
  #closing = false;
  #emptyWaiters: Array<() => void> = [];
  /** When the "too many connections" warning was last logged (one a minute at most). */
  #capWarnedAt = 0;

  constructor(opts: ModuleListenerOptions) {
    this.#opts = opts;
    this.path = opts.path;
    this.#peerCred = opts.peerCred;
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
    this.#server.on("error", (e: unknown) => opts.log.error({ err: e }, "module socket server error"));
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Listen on the socket path (replacing a stale socket), mode 0660, group Apache's when root. */
  async start(): Promise<void> {
    this.#peerCred ??= await defaultPeerCred();
    this.#sendFd = this.#opts.sendFd ?? await defaultSendFd();
    const st = await fsp.lstat(this.path).catch(() => undefined);
    if (st !== undefined) {
      if (!st.isSocket()) throw new Error(`Cannot listen on module socket ${this.path}: a file that is not a socket is in the way`);
      await fsp.rm(this.path, { force: true });
    }
    // Listen on a temporary name, set the permissions, then rename into place:
    // a client never sees the socket with the wrong mode or owner (EACCES race).
    const tmpPath = `${this.path}.${process.pid}.tmp`;
    await fsp.rm(tmpPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      const onError = (e: unknown): void => reject(e);
      this.#server.once("error", onError);
      this.#server.listen({ path: tmpPath, backlog: this.#opts.backlog ?? 2048 }, () => {
        this.#server.off("error", onError);
        resolve();
      });
    });
    await fsp.chmod(tmpPath, 0o660);
    if (process.getuid?.() === 0 && this.#opts.apacheGid !== undefined) {
      await fsp.chown(tmpPath, 0, this.#opts.apacheGid);
    }
    await fsp.rename(tmpPath, this.path);
  }

  /**
   * Stop accepting new connections. Exchanges in progress continue; a
   * connection then closes after its exchange instead of waiting for the next
   * one, and idle (v2) connections close now.
   */
  stopAccepting(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#server.close();
    for (const c of this.#connections) c.closeWhenIdle();
  }

  /**
   * Stop accepting, wait up to `deadlineMs` for open exchanges to finish, then
   * cut the rest and remove the socket file. Resolves true if all finished.
   */
  async close(deadlineMs = 0): Promise<boolean> {
    this.stopAccepting();
    let drained = this.#connections.size === 0;
    if (!drained && deadlineMs > 0) {
      drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), deadlineMs);
        this.#emptyWaiters.push(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    }
    for (const c of this.#connections) c.destroy();
    await fsp.rm(this.path, { force: true }).catch(() => undefined);
    return drained;
  }

  #accept(socket: net.Socket): void {
    const log = this.#opts.log;
    socket.on("error", (e: unknown) => log.debug({ err: e }, "module connection error"));
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const fd = socketFd(socket);
    let cred: PeerCredentials | undefined;
    try {
      if (fd !== undefined && this.#peerCred !== undefined) cred = this.#peerCred(fd);
    } catch (e: unknown) {
      log.warn({ err: e }, "Cannot read peer credentials of a module connection: closing it");
    }
    if (cred === undefined) {
      if (fd === undefined) log.warn("Cannot read peer credentials of a module connection: no file descriptor; closing it");
      socket.destroy();
      return;
    }
    if (!isPeerAllowed(cred, this.#opts.apacheUid)) {
      log.warn({ peerUid: cred.uid, peerPid: cred.pid }, `Cannot accept module connection from uid ${cred.uid} (pid ${cred.pid}): only root and Apache's uid ${this.#opts.apacheUid} may connect`);
      socket.destroy();
      return;
    }
    if (!this.#makeRoom()) {
      this.#warnCap(`Cannot accept module connection from pid ${cred.pid}: ${this.#connections.size} are open (the cap) and none is idle`);
      socket.destroy();
      return;
    }
    const conn = new ModuleConnection(socket, this.#opts, log, cred.pid, this.#sendFd);
    this.#connections.add(conn);
    socket.once("close", () => {
      this.#connections.delete(conn);
      if (this.#connections.size === 0) {
        const waiters = this.#emptyWaiters;
        this.#emptyWaiters = [];
        for (const w of waiters) w();
      }
    });
  }

  /**
   * Below the cap, or made so by closing the oldest connection between
   * exchanges (a reconnect costs Apache little; an exchange is never cut).
   */
  #makeRoom(): boolean {
    const cap = this.#opts.maxConnections ?? MAX_MODULE_CONNECTIONS;
    if (this.#connections.size < cap) return true;
    for (const c of this.#connections) {
      if (c.idle) {
        this.#connections.delete(c);
        c.destroy();
        this.#warnCap(`Closing the oldest idle module connection: ${cap} are open (the cap)`);
        return true;
      }
    }
    return false;
  }

  #warnCap(msg: string): void {
    const now = Date.now();
    if (now - this.#capWarnedAt < 60_000) return;
    this.#capWarnedAt = now;
    this.#opts.log.warn(msg);
  }
}
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
class ModuleConnection {
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
    const { head, app, generation, version, held } = validateRequestHead(map);
    this.#persistent = version >= 2;
    this.#state = version >= 3 ? "decide" : "body";
    const ex = new ModuleExchange(head, app, this, this.#socket, this.#opts.bodyHighWaterMark ?? 64 * 1024, version >= 3 ? held : undefined);
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

/** The END and PROCEED frames' bytes (constant). */
const END_FRAME = encodeFrame({ kind: "end" });
const PROCEED_FRAME = encodeFrame({ kind: "proceed" });

/** The Exchange the request path sees for one module connection. */
class ModuleExchange implements Exchange {
  readonly head: RequestHead;
  /** v3 only: the direct path (docs/protocol.md, "Version 3: leases"). */
  readonly lease: LeaseTaker | undefined;
  readonly app: AppOptions;
  readonly body: Readable;
  readonly signal: AbortSignal;
  readonly #abort = new AbortController();
  readonly #conn: ModuleConnection;
  readonly #socket: net.Socket;
  #headSent = false;
  #tunnel: Duplex | undefined;
  #finished = false;
  /** The socket is corked by us; an uncork is scheduled for the end of this loop turn. */
  #corked = false;

  constructor(head: RequestHead, app: AppOptions, conn: ModuleConnection, socket: net.Socket, highWaterMark: number, held: readonly string[] | undefined) {
    this.head = head;
    this.app = app;
    this.#conn = conn;
    this.#socket = socket;
    this.signal = this.#abort.signal;
    this.body = new Readable({
      highWaterMark,
      read: () => {
        conn.proceed();
        if (conn.state !== "upgraded") socket.resume();
      },
    });
    this.lease = held === undefined ? undefined : {
      held,
      take: (lease: Lease, appFd: number | undefined): Promise<DoneReport | undefined> => {
        if (this.#finished) return Promise.resolve(undefined);
        return conn.lease(lease, appFd);
      },
    };
  }

  /** DONE arrived: the exchange is over (no response frames of ours). */
  leaseEnded(): void {
    this.#finished = true;
    if (!this.body.destroyed) this.body.destroy();
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
    if (!this.body.readableEnded) this.body.destroy();
  }

  /** The client (or the module) went away: abort the signal unless the response already completed. */
  clientGone(): void {
    if (!this.body.readableEnded) this.body.destroy();
    if (this.#finished && this.#tunnel === undefined) return;
    this.#finished = true;
    if (!this.#abort.signal.aborted) this.#abort.abort();
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
    const s = this.#socket;
    if (!s.writableNeedDrain || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        s.off("drain", done);
        s.off("close", done);
        resolve();
      };
      s.on("drain", done);
      s.on("close", done);
    });
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
}
