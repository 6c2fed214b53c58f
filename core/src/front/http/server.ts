/**
 * The standalone front server: a `node:http` server whose requests and
 * upgrades become Exchanges for the one request path (request.ts). Keep-alive
 * towards clients is Node's; backpressure both ways is honoured by the
 * request path through `write()` / `waitDrain()` and by reading `body`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { AppOptions } from "../../config/schema.js";
import type { Logger } from "../../log.js";
import type { Exchange, RequestHead } from "../../exchange/exchange.js";
import { ExchangeTracker, NodeHttpExchange, NodeUpgradeExchange, listenTcp } from "./node-exchange.js";
import { handleExchange, type RequestDeps } from "../../exchange/handle.js";

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
}

/** The standalone HTTP front server with graceful close. */
export class FrontServer {
  readonly server: http.Server;
  readonly #exchanges: ExchangeTracker;
  readonly #log: Logger;

  constructor(opts: FrontServerOptions) {
    this.#log = opts.log;
    this.server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 });
    this.#exchanges = new ExchangeTracker(this.server);
    const direct = (ex: Exchange): Promise<void> => handleExchange(ex, opts.deps);
    const handle = opts.wrap?.(direct) ?? direct;
    this.server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.#exchanges.track(handle(new NodeHttpExchange(opts.app, headFromIncoming(req, false, false), req, res)));
    });
    this.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, rest: Buffer) => {
      socket.on("error", (e: unknown) => this.#log.debug({ err: e }, "upgraded client socket error"));
      this.#exchanges.trackUpgraded(socket);
      this.#exchanges.track(handle(new NodeUpgradeExchange(opts.app, headFromIncoming(req, true, false), socket, rest)));
    });
    this.server.on("clientError", (err: unknown, socket: Duplex) => {
      this.#log.debug({ err }, "client connection error");
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      else socket.destroy();
    });
  }

  /** Exchanges in progress (including open WebSocket tunnels). */
  get inFlight(): number {
    return this.#exchanges.size;
  }

  listen(port: number, host: string, backlog = 2048): Promise<AddressInfo> {
    return listenTcp(this.server, { port, host, backlog }, (e) => this.#log.error({ err: e }, "front server error"));
  }

  /**
   * Stop accepting, let in-flight exchanges finish until the deadline, then cut
   * whatever is left (idle keep-alive connections and WebSocket tunnels included).
   */
  async close(deadlineMs: number): Promise<void> {
    await this.#exchanges.close(deadlineMs);
  }
}
