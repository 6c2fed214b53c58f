/**
 * The standalone front server: a `node:http` server whose requests and
 * upgrades become Exchanges for the one request path (request.ts). Keep-alive
 * towards clients is Node's; backpressure both ways is honoured by the
 * request path through `write()` / `waitDrain()` and by reading `body`.
 * Static files (`--static-files-dir`) are answered before a request becomes
 * an Exchange (loader/static-files.ts, shared with handed-off connections).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { AppOptions } from "../../config/schema.js";
import type { Logger } from "../../log.js";
import type { Exchange, RequestHead } from "../../exchange/exchange.js";
import { ExchangeTracker, NodeHttpExchange, NodeUpgradeExchange, listenTcp } from "./node-exchange.js";
import { handleExchange, type RequestDeps } from "../../exchange/handle.js";
import { HandoffListener, relayedOnce } from "./handoff-listener.js";
import { ResponseDeadlineExchange } from "../../exchange/response-deadline.js";
import type { StaticFiles } from "../../loader/static-files.js";

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"]);

/** The request head as the request path wants it, from a Node IncomingMessage. */
export function headFromIncoming(req: http.IncomingMessage, upgrade: boolean, https: boolean): RequestHead {
  const headers: string[] = [];
  const raw = req.rawHeaders;
  let host = "";
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? "";
    const lower = name.toLowerCase();
    if (lower === "host" && host === "") host = raw[i + 1] ?? "";
    if (HOP_BY_HOP.has(lower) && !(upgrade && lower === "upgrade")) continue;
    headers.push(name, raw[i + 1] ?? "");
  }
  const sock = req.socket;
  const contentLength = req.headers["content-length"];
  const hasBody = req.headers["transfer-encoding"] !== undefined ||
    (contentLength !== undefined && contentLength !== "0");
  const serverName = host !== "" ? host.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1") : (sock.localAddress ?? "");
  return {
    method: req.method ?? "GET",
    uri: req.url ?? "/",
    proto: `HTTP/${req.httpVersion}`,
    headers,
    remoteAddr: sock.remoteAddress ?? "",
    remotePort: sock.remotePort ?? 0,
    serverName,
    serverPort: sock.localPort ?? 0,
    https,
    hasBody,
    upgrade,
  };
}

export interface FrontServerOptions {
  readonly app: AppOptions;
  readonly deps: RequestDeps;
  readonly log: Logger;
  /** Wraps the request path (metrics count each exchange); default: handleExchange itself. */
  readonly wrap?: (handle: (ex: Exchange) => Promise<void>) => (ex: Exchange) => Promise<void>;
  /** The complete request head must arrive within this (`--header-timeout`); default 60 s. */
  readonly headerTimeoutMs?: number;
  /**
   * The whole request must arrive (else 408) and the app's response head must
   * go out (else 504) within this (`--request-timeout`); 0 = no limit. Default 300 s.
   */
  readonly requestTimeoutMs?: number;
  /**
   * Connection handoff: pass an accepted connection (fd) to an app process;
   * false = serve it here. Absent = every connection is relayed.
   */
  readonly handOff?: (fd: number) => Promise<boolean>;
  /** The app's static files: answered here for GET/HEAD before the request path sees the request. Absent = none. */
  readonly staticFiles?: StaticFiles;
}

/** Default of `ferry start --header-timeout`, ms. */
export const DEFAULT_HEADER_TIMEOUT_MS = 60_000;
/** Default of `ferry start --request-timeout`, ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;

/** The standalone HTTP front server with graceful close. */
export class FrontServer {
  readonly server: http.Server;
  readonly #exchanges: ExchangeTracker;
  readonly #log: Logger;
  readonly #handoff: HandoffListener | undefined;

  constructor(opts: FrontServerOptions) {
    this.#log = opts.log;
    const requestTimeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    let headersTimeout = opts.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS;
    if (requestTimeout > 0) headersTimeout = Math.min(headersTimeout, requestTimeout);
    this.server = http.createServer({
      requestTimeout,
      headersTimeout,
      keepAliveTimeout: 5_000,
      // Node checks both timeouts on this interval (default 30 s): check often enough to keep them.
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersTimeout / 4))),
    });
    this.#exchanges = new ExchangeTracker(this.server);
    this.#handoff = opts.handOff === undefined ? undefined : new HandoffListener({ relay: this.server, handOff: opts.handOff, log: opts.log });
    const direct = (ex: Exchange): Promise<void> => handleExchange(ex, opts.deps);
    const handle = opts.wrap?.(direct) ?? direct;
    // The response deadline goes inside the wrapper (metrics), so the 504 it answers is what gets counted.
    const deadlined = (ex: Exchange): Promise<void> => direct(new ResponseDeadlineExchange(ex, requestTimeout));
    const handleRequest = requestTimeout > 0 ? opts.wrap?.(deadlined) ?? deadlined : handle;
    this.server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      // Relayed for want of a ready process: the client's next connection gets handed off.
      if (relayedOnce(req.socket)) res.shouldKeepAlive = false;
      // A static file never reaches the app (nor the pool: no process is needed).
      const answered = opts.staticFiles?.serve(req, res);
      if (answered !== undefined) {
        this.#exchanges.track(answered);
        return;
      }
      const ex: Exchange = new NodeHttpExchange(opts.app, headFromIncoming(req, false, false), req, res);
      this.#exchanges.track(handleRequest(ex));
    });
    this.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, rest: Buffer) => {
      socket.on("error", (e: unknown) => this.#log.debug({ err: e }, "upgraded client socket error"));
      this.#exchanges.trackUpgraded(socket);
      this.#exchanges.track(handle(new NodeUpgradeExchange(opts.app, headFromIncoming(req, true, false), socket, rest)));
    });
    this.server.on("clientError", (err: unknown, socket: Duplex) => {
      this.#log.debug({ err }, "client connection error");
      // --header-timeout / --request-timeout while the request is still arriving: 408, as Node answers by default.
      const timedOut = typeof err === "object" && err !== null && Reflect.get(err, "code") === "ERR_HTTP_REQUEST_TIMEOUT";
      if (socket.writable) socket.end(timedOut ? "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n" : "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      else socket.destroy();
    });
  }

  /** Exchanges in progress (including open WebSocket tunnels). */
  get inFlight(): number {
    return this.#exchanges.size;
  }

  listen(port: number, host: string, backlog = 2048): Promise<AddressInfo> {
    if (this.#handoff !== undefined) return this.#handoff.listen(port, host, backlog);
    return listenTcp(this.server, { port, host, backlog }, (e) => this.#log.error({ err: e }, "front server error"));
  }

  /**
   * Stop accepting, let in-flight exchanges finish until the deadline, then cut
   * whatever is left (idle keep-alive connections and WebSocket tunnels included).
   */
  async close(deadlineMs: number): Promise<void> {
    await this.#handoff?.close();
    await this.#exchanges.close(deadlineMs);
  }
}
