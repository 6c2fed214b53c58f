/**
 * The standalone front server: a `node:http` server whose requests and
 * upgrades become Exchanges for the one request path (request.ts). Keep-alive
 * towards clients is Node's; backpressure both ways is honoured by the
 * request path through `write()` / `waitDrain()` and by reading `body`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { AppOptions } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { RequestHead } from "./exchange.js";
import { NodeHttpExchange, NodeUpgradeExchange } from "./node-exchange.js";
import { handleExchange, type RequestDeps } from "./request.js";

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
}

/** The standalone HTTP front server with graceful close. */
export class FrontServer {
  readonly server: http.Server;
  readonly #active = new Set<Promise<void>>();
  readonly #upgraded = new Set<Duplex>();
  readonly #log: Logger;

  constructor(opts: FrontServerOptions) {
    this.#log = opts.log;
    this.server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 });
    this.server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.#track(handleExchange(new NodeHttpExchange(opts.app, headFromIncoming(req, false, false), req, res), opts.deps));
    });
    this.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, rest: Buffer) => {
      socket.on("error", (e: unknown) => this.#log.debug({ err: e }, "upgraded client socket error"));
      this.#upgraded.add(socket);
      socket.once("close", () => this.#upgraded.delete(socket));
      this.#track(handleExchange(new NodeUpgradeExchange(opts.app, headFromIncoming(req, true, false), socket, rest), opts.deps));
    });
    this.server.on("clientError", (err: unknown, socket: Duplex) => {
      this.#log.debug({ err }, "client connection error");
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      else socket.destroy();
    });
  }

  #track(p: Promise<void>): void {
    this.#active.add(p);
    void p.finally(() => this.#active.delete(p));
  }

  /** Exchanges in progress (including open WebSocket tunnels). */
  get inFlight(): number {
    return this.#active.size;
  }

  listen(port: number, host: string, backlog = 2048): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (e: unknown): void => reject(e);
      this.server.once("error", onError);
      this.server.listen({ port, host, backlog }, () => {
        this.server.off("error", onError);
        this.server.on("error", (e: unknown) => this.#log.error({ err: e }, "front server error"));
        const a = this.server.address();
        if (a === null || typeof a === "string") reject(new Error("Cannot listen: no TCP address"));
        else resolve(a);
      });
    });
  }

  /**
   * Stop accepting, let in-flight exchanges finish until the deadline, then cut
   * whatever is left (idle keep-alive connections and WebSocket tunnels included).
   */
  async close(deadlineMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const until = Date.now() + deadlineMs;
    for (const s of this.#upgraded) s.end();
    while (this.#active.size > 0 && Date.now() < until) {
      const timer = new Promise<void>((resolve) => setTimeout(resolve, Math.max(1, Math.min(100, until - Date.now()))));
      await Promise.race([Promise.allSettled([...this.#active]).then(() => undefined), timer]);
      this.server.closeIdleConnections();
    }
    this.server.closeAllConnections();
    for (const s of this.#upgraded) s.destroy();
    await closed;
  }
}
