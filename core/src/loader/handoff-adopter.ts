/**
 * Connection handoff inside the app process (docs/standalone.md "Connection
 * handoff"): the core accepts client TCP connections and passes each one to
 * a process as Node's cluster module does, over the IPC socket at HANDOFF_FD.
 * This file adopts each passed handle as a net.Socket and gives it to the
 * server Ferry bound (reverse-binding.ts `installed`), which then serves every
 * request of that connection itself, with no proxy hop. It also counts the
 * requests on adopted connections, reported to the core by request-reporter.ts
 * ("reqs" message), so routing, scaling, max requests and metrics stay per request,
 * and does there what the relay would (HandoffSettings): `X-Powered-By`,
 * `--header-timeout` / `--request-timeout` (408, and 504 when the app does not
 * answer in time), `Connection: close` after `max_requests`, and the relay's
 * 502 page for requests in flight when the process exits.
 *
 * Runs INSIDE the app process: node: built-ins and this folder only. The IPC
 * pipe comes from `process.binding("pipe_wrap")` (what child_process uses for
 * its IPC channel; the app's own process.send stays untouched).
 */
import { randomBytes } from "node:crypto";
import { fstatSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import type { HandoffSettings } from "./messages.js";
import { ERROR_ID_MARK, HANDOFF_FD, PID_MARK, crashMessage, maxRequestTimeMessage } from "./messages.js";
import type { RequestReporter } from "./request-reporter.js";
import { StaticFiles, interceptStaticRequests } from "./static-files.js";
import { afterRawHeadersEdit, beforeRawHeadersEdit, setCachedHeader } from "./raw-headers.js";
import { wantsJson } from "./wants-json.js";

interface PipeHandle {
  open(fd: number): number;
  readStart(): number;
  readStop(): number;
  close(cb?: () => void): void;
  unref(): void;
  onread: ((buf: ArrayBuffer | undefined) => void) | null;
  pendingHandle: unknown;
}

interface PipeWrapBinding {
  Pipe: new (type: number) => PipeHandle;
  constants: { IPC: number };
}

interface StreamWrapBinding {
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
}

/** Marks a socket the core handed over. */
const ADOPTED = Symbol("ferry.adopted");

export interface HandoffOptions {
  /** The server that serves adopted connections (undefined until the app listens). */
  server(): net.Server | undefined;
  /** Counts and reports the requests on adopted connections. */
  readonly reporter: RequestReporter;
  warn(message: string): void;
  /** The process is shutting down: answers close their connection. */
  shuttingDown(): boolean;
  /** What to do as the relay would; absent = only count and report. */
  readonly settings?: HandoffSettings | undefined;
}

/** How long a shutting-down process waits for passed connections to bring their first request. */
const FIRST_REQUEST_GRACE_MS = 2_000;
/** How long it waits for connections the core passed just before the shutdown message. */
const IN_TRANSIT_GRACE_MS = 100;
/**
 * How long a shutting-down process keeps idle kept-alive connections open
 * for a last request (answered with `Connection: close`) before closing
 * them: closing an idle connection races with a request the client is
 * sending on it; Node's own keepAliveTimeout (5 s) closes them no later.
 */
const KEEPALIVE_GRACE_MS = 5_000;

export interface Handoff {
  /**
   * The app called listen() on `server`, the server Ferry binds: apply the
   * deadlines before Node starts checking them (it does from 'listening').
   */
  prepare(server: net.Server): void;
  /**
   * Resolves once connections passed before the shutdown have been received
   * (a short grace), each adopted one brought its first request or closed
   * (at most FIRST_REQUEST_GRACE_MS), and every adopted connection closed
   * after its last answer (at most KEEPALIVE_GRACE_MS; answers during the
   * shutdown close their connection).
   */
  settled(): Promise<void>;
  stop(): void;
}

/**
 * Whether HANDOFF_FD is the core's handoff channel: a socket. Without
 * handoff the number is free when Node starts, and Node's own event-loop
 * descriptor (epoll) takes it: reading that as a pipe would break the loop.
 */
export function hasHandoffChannel(): boolean {
  try {
    return fstatSync(HANDOFF_FD).isSocket();
  } catch {
    return false;
  }
}

/** Start receiving connections on HANDOFF_FD; undefined when the process has no handoff channel there. */
export function startHandoff(opts: HandoffOptions): Handoff | undefined {
  if (!hasHandoffChannel()) return undefined;
  const binding = (Reflect.get(process, "binding") as (name: string) => unknown).bind(process);
  const { Pipe, constants } = binding("pipe_wrap") as PipeWrapBinding;
  const { streamBaseState, kReadBytesOrError } = binding("stream_wrap") as StreamWrapBinding;
  const pipe = new Pipe(constants.IPC);
  if (pipe.open(HANDOFF_FD) !== 0) {
    opts.warn(`Ferry: cannot open the connection handoff channel (fd ${HANDOFF_FD})`);
    return undefined;
  }
  const tracker = new RequestTracker(opts.reporter, opts.shuttingDown, opts.settings);
  const prepared = new WeakSet<net.Server>();
  const prepare = (server: net.Server): void => {
    if (prepared.has(server)) return;
    prepared.add(server);
    tracker.watch(server);
  };
  let stopped = false;
  pipe.onread = () => {
    const handle = pipe.pendingHandle;
    pipe.pendingHandle = null;
    if (handle === null || handle === undefined) {
      // EOF or an error: the core is gone; the control channel handles that.
      if ((streamBaseState[kReadBytesOrError] ?? 0) < 0) stop();
      return;
    }
    const socket = new net.Socket({ handle, readable: true, writable: true } as net.SocketConstructorOpts);
    // Also after shutdown began: a connection passed just before the core retired
    // this process is still served (its answer closes the connection).
    const server = opts.server();
    tracker.received();
    if (server === undefined || stopped) {
      socket.destroy();
      return;
    }
    prepare(server);
    (socket as unknown as Record<symbol, boolean>)[ADOPTED] = true;
    tracker.adopted(socket);
    server.emit("connection", socket);
    socket.resume();
  };
  pipe.readStart();
  pipe.unref();
  // The process exits (a crash, process.exit()) with requests in flight: they get the relay's 502 page.
  process.on("exit", () => tracker.exiting());
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    pipe.readStop();
    pipe.close();
  };
  const settled = async (): Promise<void> => {
    await new Promise((resolve) => setTimeout(resolve, IN_TRANSIT_GRACE_MS));
    await tracker.firstRequests(FIRST_REQUEST_GRACE_MS);
    await tracker.allClosed(KEEPALIVE_GRACE_MS);
  };
  return { prepare, settled, stop };
}

/** Whether a socket is a connection the core handed over. */
export function isAdopted(socket: unknown): boolean {
  return typeof socket === "object" && socket !== null && (socket as Record<symbol, unknown>)[ADOPTED] === true;
}

/**
 * The headers the core's relay adds (exchange/headers.ts): X-Forwarded-For
 * with the client address appended, X-Forwarded-Proto (plain HTTP here; a
 * client's value is replaced), both at the end of rawHeaders as the relay
 * sends them; and as the relay, no client-sent X-Ferry-Pass (the pass marker).
 */
export function forwardedHeaders(req: http.IncomingMessage): void {
  const addr = req.socket.remoteAddress ?? "";
  const raw = req.rawHeaders;
  // As Node joins repeated headers in req.headers (and the relay joins them).
  let xff = "";
  let drop = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? "";
    // "x-ferry-pass" has 12 characters, "x-forwarded-for" 15, "x-forwarded-proto" 17: most names are skipped without lower-casing.
    if (name.length !== 12 && name.length !== 15 && name.length !== 17) continue;
    const lower = name.toLowerCase();
    if (lower === "x-forwarded-for") {
      const v = raw[i + 1] ?? "";
      xff = xff === "" ? v : `${xff}, ${v}`;
      drop = true;
    } else if (lower === "x-forwarded-proto" || lower === "x-ferry-pass") {
      drop = true;
    }
  }
  const value = xff === "" ? addr : `${xff}, ${addr}`;
  beforeRawHeadersEdit(req);
  if (drop) {
    let w = 0;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] ?? "";
      if (name.length === 12 || name.length === 15 || name.length === 17) {
        const lower = name.toLowerCase();
        if (lower === "x-forwarded-for" || lower === "x-forwarded-proto" || lower === "x-ferry-pass") continue;
      }
      raw[w++] = name;
      raw[w++] = raw[i + 1] ?? "";
    }
    raw.length = w;
  }
  raw.push("X-Forwarded-For", value, "X-Forwarded-Proto", "http");
  afterRawHeadersEdit(req);
  setCachedHeader(req, "x-forwarded-for", value);
  setCachedHeader(req, "x-forwarded-proto", "http");
  if (drop) setCachedHeader(req, "x-ferry-pass", undefined);
}

type WriteHeadArgs = [number, ...unknown[]];

/**
 * Add `X-Powered-By: value` to the head `writeHead(args)` is about to send,
 * after any the app set (the relay appends it to the app's headers).
 */
function addPoweredBy(res: http.ServerResponse, args: WriteHeadArgs, value: string): void {
  const at = typeof args[1] === "string" ? 2 : 1;
  const h = args[at];
  if (Array.isArray(h)) {
    // Flat [name, value, …] or a list of [name, value] pairs (both are Node's).
    args[at] = Array.isArray(h[0]) ? [...(h as unknown[]), ["X-Powered-By", value]] : [...(h as unknown[]), "X-Powered-By", value];
    return;
  }
  if (typeof h === "object" && h !== null) {
    const own = Object.keys(h).find((k) => k.toLowerCase() === "x-powered-by");
    if (own !== undefined) {
      const theirs: unknown = (h as Record<string, unknown>)[own];
      args[at] = { ...h, [own]: [...(Array.isArray(theirs) ? theirs as unknown[] : [theirs]), value] };
      return;
    }
  }
  res.appendHeader("X-Powered-By", value);
}

/** A request in flight on an adopted connection. */
interface Running {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly started: number;
  /** The connection's bytesWritten when the request started. */
  readonly written: number;
  /** The response's writeHead before the loader's (called by it). */
  readonly writeHead: (...args: WriteHeadArgs) => http.ServerResponse;
  /** The response head went out (the app's writeHead ran). */
  headSent: boolean;
  /** Status the loader answered itself (504, 502), 0 = none. */
  answered: number;
  /** The request's end was reported. */
  reported: boolean;
}

/** The Running entry of a response on an adopted connection. */
const RUNNING = Symbol("ferry.running");

function runningOf(res: http.ServerResponse): Running | undefined {
  return (res as unknown as Record<symbol, Running | undefined>)[RUNNING];
}

/** Counts requests and upgrades on adopted connections; the reporter sends them to the core. */
class RequestTracker {
  /** Adopted connections open now. */
  #connections = 0;
  /** Connections received since the start. */
  #received = 0;
  /** Requests served by the installed server (every path), for max_requests. */
  #served = 0;
  /** Adopted connections that have not brought a request yet. */
  readonly #waiting = new Set<net.Socket>();
  readonly #running = new Set<Running>();
  #onNoneWaiting: Array<() => void> = [];
  #onNoneOpen: Array<() => void> = [];
  #sweep: NodeJS.Timeout | undefined;

  constructor(
    private readonly reporter: RequestReporter,
    private readonly shuttingDown: () => boolean,
    private readonly settings: HandoffSettings | undefined,
  ) {
    reporter.connectionCounts = () => ({ connections: this.#connections, adopted: this.#received, fresh: this.#waiting.size });
  }

  received(): void {
    this.#received++;
    this.reporter.changed();
  }

  adopted(socket: net.Socket): void {
    this.#waiting.add(socket);
    this.#connections++;
    this.reporter.changed();
    socket.once("close", () => {
      this.#connections--;
      this.reporter.changed();
      this.#firstRequest(socket);
      this.#checkOpen();
    });
  }

  /** Adopted connections still speaking HTTP (upgraded ones are the app's to close). */
  get #httpConnections(): number {
    return this.#connections - this.reporter.upgraded;
  }

  #checkOpen(): void {
    if (this.#httpConnections > 0) return;
    const fns = this.#onNoneOpen;
    this.#onNoneOpen = [];
    for (const f of fns) f();
  }

  /** Resolves when no adopted connection speaks HTTP any more, or after `maxMs`. */
  allClosed(maxMs: number): Promise<void> {
    if (this.#httpConnections <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, maxMs);
      this.#onNoneOpen.push(() => { clearTimeout(timer); resolve(); });
    });
  }

  #firstRequest(socket: net.Socket): void {
    if (!this.#waiting.delete(socket) || this.#waiting.size > 0) return;
    const fns = this.#onNoneWaiting;
    this.#onNoneWaiting = [];
    for (const f of fns) f();
  }

  /** Resolves when every adopted connection brought its first request or closed, or after `maxMs`. */
  firstRequests(maxMs: number): Promise<void> {
    if (this.#waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, maxMs);
      this.#onNoneWaiting.push(() => { clearTimeout(timer); resolve(); });
    });
  }

  watch(server: net.Server): void {
    if (!(server instanceof http.Server)) return;
    const settings = this.settings;
    if (settings !== undefined) {
      // As the relay's front server (front/http/front-server.ts): the request head within
      // --header-timeout, the whole request within --request-timeout, else 408.
      const requestTimeout = settings.requestTimeoutMs;
      const headersTimeout = requestTimeout > 0 ? Math.min(settings.headerTimeoutMs, requestTimeout) : settings.headerTimeoutMs;
      server.headersTimeout = headersTimeout;
      server.requestTimeout = requestTimeout;
      // Node checks both on this interval (default 30 s), read when the server starts listening.
      Reflect.set(server, "connectionsCheckingInterval", Math.max(100, Math.min(1_000, Math.floor(headersTimeout / 4))));
      const deadlines = [requestTimeout, settings.maxRequestTimeMs].filter((ms) => ms > 0);
      if (deadlines.length > 0) {
        const every = Math.max(100, Math.min(1_000, Math.floor(Math.min(...deadlines) / 4)));
        this.#sweep = setInterval(() => this.#expire(requestTimeout, settings.maxRequestTimeMs), every);
        this.#sweep.unref();
      }
    }
    const poweredBy = settings?.poweredBy ?? "";
    const maxRequests = settings?.maxRequests ?? 0;
    // One writeHead and one close handler for every response (no closure per request).
    const running = this.#running;
    const reporter = this.reporter;
    function writeHead(this: http.ServerResponse, ...args: WriteHeadArgs): http.ServerResponse {
      const entry = runningOf(this);
      if (entry === undefined) return Reflect.apply(http.ServerResponse.prototype.writeHead, this, args) as http.ServerResponse;
      entry.headSent = true;
      if (poweredBy !== "" && !this.headersSent) addPoweredBy(this, args, poweredBy);
      return Reflect.apply(entry.writeHead, this, args) as http.ServerResponse;
    }
    function closed(this: http.ServerResponse): void {
      const entry = runningOf(this);
      if (entry === undefined || entry.reported) return;
      entry.reported = true;
      running.delete(entry);
      const status = entry.answered !== 0 ? entry.answered : this.headersSent ? this.statusCode : 0;
      reporter.finished(status, performance.now() - entry.started, entry.req.socket.bytesWritten - entry.written);
    }
    server.prependListener("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.#served++;
      const socket = req.socket;
      if (!isAdopted(socket)) return;
      const started = performance.now();
      this.#firstRequest(socket);
      forwardedHeaders(req);
      // After max_requests the process retires: its last answers close their connection.
      if (this.shuttingDown() || (maxRequests > 0 && this.#served >= maxRequests)) res.shouldKeepAlive = false;
      const entry: Running = {
        req, res, started, written: socket.bytesWritten, writeHead: res.writeHead as Running["writeHead"], headSent: false, answered: 0, reported: false,
      };
      running.add(entry);
      (res as unknown as Record<symbol, Running | undefined>)[RUNNING] = entry;
      res.writeHead = writeHead as typeof res.writeHead;
      reporter.started();
      res.on("close", closed);
    });
    // Upgrades are observed without adding an 'upgrade' listener: Node decides
    // from the app's own listeners whether an Upgrade request is an upgrade.
    const emit = server.emit;
    const onUpgrade = (req: http.IncomingMessage, socket: net.Socket): void => {
      if (!isAdopted(req.socket)) return;
      this.reporter.upgradeOpened();
      this.#checkOpen();
      socket.once("close", () => {
        this.reporter.upgradeClosed();
      });
    };
    server.emit = function (this: net.Server, event: string | symbol, a?: unknown, b?: unknown): boolean {
      if (event === "upgrade" && server.listenerCount("upgrade") > 0) onUpgrade(a as http.IncomingMessage, b as net.Socket);
      // All the arguments as given (no copy: V8 forwards `arguments` to apply as is).
      return emit.apply(this, arguments as unknown as Parameters<typeof emit>);
    } as typeof server.emit;
    // Static files on adopted connections are answered before the app (and the counting above) sees them.
    const staticDir = settings?.staticFilesDir;
    if (staticDir !== undefined) {
      const files = new StaticFiles({ root: staticDir, poweredBy });
      interceptStaticRequests(server, files, (req) => isAdopted(req.socket), (req, res) => {
        this.#firstRequest(req.socket);
        if (this.shuttingDown() || (maxRequests > 0 && this.#served >= maxRequests)) res.shouldKeepAlive = false;
      });
    }
  }

  /**
   * --request-timeout (`requestMs`): a complete request whose response head
   * has not gone out within it gets the relay's 504 (exchange/response-deadline.ts)
   * and its connection is closed; the app's late answer goes nowhere. An
   * incomplete request is Node's to answer (408, server.requestTimeout).
   * max_request_time (`maxMs`): a request still running gets the relay's 504
   * error page, or its connection is cut when the head went out; the core
   * then recycles the process, as for a relayed request.
   */
  #expire(requestMs: number, maxMs: number): void {
    const now = performance.now();
    const page = this.settings?.timeoutPage;
    for (const p of this.#running) {
      const age = now - p.started;
      if (maxMs > 0 && age >= maxMs && page !== undefined) {
        this.#running.delete(p);
        const errorId = randomBytes(4).toString("hex");
        if (!p.headSent) {
          p.answered = 504;
          this.#answerPage(p, 504, "Gateway Timeout", page, errorId);
        }
        this.reporter.page({
          status: p.headSent ? 0 : 504, code: "FERRY_ERR_APP_TIMEOUT", errorId, method: p.req.method ?? "GET", uri: p.req.url ?? "/",
          message: maxRequestTimeMessage(process.pid, maxMs),
        });
        p.res.destroy();
        continue;
      }
      if (requestMs > 0 && age >= requestMs && !p.headSent && p.req.complete) {
        this.#running.delete(p);
        p.answered = 504;
        const text = `504 Gateway Timeout: the app did not answer within ${requestMs / 1000} s (ferry start --request-timeout)\n`;
        this.#answer(p, 504, "Gateway Timeout", "text/plain; charset=utf-8", text, false);
        p.res.destroy();
      }
    }
  }

  /** Answer one of the relay's error pages (HTML or JSON as the request asks), its marks filled in. */
  #answerPage(p: Running, status: number, reason: string, page: { readonly html: string; readonly json: string }, errorId: string): void {
    const json = wantsJson(p.req.rawHeaders);
    const body = (json ? page.json : page.html).replaceAll(ERROR_ID_MARK, errorId).replaceAll(PID_MARK, String(process.pid));
    this.#answer(p, status, reason, json ? "application/json; charset=utf-8" : "text/html; charset=utf-8", body, true);
  }

  /** Write a whole response on the request's connection, bypassing the app's ServerResponse. */
  #answer(p: Running, status: number, reason: string, type: string, body: string, poweredBy: boolean): void {
    const socket = p.req.socket;
    if (socket.destroyed || !socket.writable) return;
    const bytes = Buffer.from(body, "utf8");
    const lines = [
      `HTTP/1.1 ${status} ${reason}`,
      `Content-Type: ${type}`,
      `Content-Length: ${bytes.length}`,
      `Date: ${new Date().toUTCString()}`,
    ];
    if (status >= 500 && poweredBy) lines.push("Cache-Control: no-cache, no-store, must-revalidate");
    if (poweredBy && this.settings !== undefined && this.settings.poweredBy !== "") lines.push(`X-Powered-By: ${this.settings.poweredBy}`);
    lines.push("Connection: close");
    const head = Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1");
    socket.write(p.req.method === "HEAD" ? head : Buffer.concat([head, bytes]));
  }

  /**
   * The process is exiting (synchronously, from process 'exit'): each request
   * in flight on an adopted connection whose head has not gone out gets the
   * relay's 502 page, and the core learns their error ids for its log.
   */
  exiting(): void {
    const page = this.settings?.crashPage;
    if (page === undefined || this.#running.size === 0) return;
    for (const p of this.#running) {
      if (p.headSent) continue;
      const errorId = randomBytes(4).toString("hex");
      this.#answerPage(p, 502, "Bad Gateway", page, errorId);
      this.reporter.page({
        status: 502, code: "FERRY_ERR_APP_CRASHED", errorId, method: p.req.method ?? "GET", uri: p.req.url ?? "/",
        message: crashMessage(process.pid),
      });
    }
    this.#running.clear();
    this.reporter.flush();
  }
}
