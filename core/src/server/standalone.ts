/**
 * The standalone front server: a `node:http` server whose requests and
 * upgrades become Exchanges for the one request path (request.ts). Keep-alive
 * towards clients is Node's; backpressure both ways is honoured by the
 * request path through `write()` / `waitDrain()` and by reading `body`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { Readable } from "node:stream";
import type { AppOptions } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { Exchange, RequestHead } from "./exchange.js";
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

/** An ordinary request on a client connection. */
class HttpExchange implements Exchange {
  readonly head: RequestHead;
  readonly body: Readable;
  readonly signal: AbortSignal;
  readonly #res: http.ServerResponse;

  constructor(readonly app: AppOptions, req: http.IncomingMessage, res: http.ServerResponse, https: boolean) {
    this.head = headFromIncoming(req, false, https);
    this.body = req;
    this.#res = res;
    const ac = new AbortController();
    this.signal = ac.signal;
    res.once("close", () => {
      if (!res.writableFinished) ac.abort();
    });
    req.once("error", () => ac.abort());
  }

  writeHead(status: number, headers: readonly string[]): void {
    this.#res.writeHead(status, [...headers]);
  }

  write(chunk: Uint8Array): boolean {
    if (this.#res.destroyed) return true;
    return this.#res.write(chunk);
  }

  waitDrain(): Promise<void> {
    const res = this.#res;
    if (!res.writableNeedDrain || res.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        res.off("drain", done);
        res.off("close", done);
        resolve();
      };
      res.on("drain", done);
      res.on("close", done);
    });
  }

  end(): void {
    this.#res.end();
  }

  abort(): void {
    this.#res.destroy();
  }

  upgraded(): Duplex {
    throw new Error("Cannot upgrade the connection: the request did not ask to upgrade");
  }
}

/** An upgrade request: the response is written raw on the client socket. */
class UpgradeExchange implements Exchange {
  readonly head: RequestHead;
  readonly body: Readable = Readable.from([]);
  readonly signal: AbortSignal;
  readonly #socket: Duplex;
  #status = 0;

  constructor(readonly app: AppOptions, req: http.IncomingMessage, socket: Duplex, rest: Buffer, https: boolean) {
    this.head = headFromIncoming(req, true, https);
    this.#socket = socket;
    if (rest.length > 0) socket.unshift(rest);
    const ac = new AbortController();
    this.signal = ac.signal;
    socket.once("close", () => ac.abort());
  }

  writeHead(status: number, headers: readonly string[]): void {
    this.#status = status;
    const lines = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? "Unknown"}`];
    for (let i = 0; i + 1 < headers.length; i += 2) lines.push(`${headers[i] ?? ""}: ${headers[i + 1] ?? ""}`);
    // A non-101 answer ends the connection: the body is delimited by the close.
    if (status !== 101) lines.push("Connection: close");
    this.#socket.write(lines.join("\r\n") + "\r\n\r\n");
  }

  write(chunk: Uint8Array): boolean {
    if (this.#socket.destroyed) return true;
    return this.#socket.write(chunk);
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
    if (this.#status !== 101) this.#socket.end();
  }

  abort(): void {
    this.#socket.destroy();
  }

  upgraded(): Duplex {
    return this.#socket;
  }
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
      this.#track(handleExchange(new HttpExchange(opts.app, req, res, false), opts.deps));
    });
    this.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, rest: Buffer) => {
      socket.on("error", (e: unknown) => this.#log.debug({ err: e }, "upgraded client socket error"));
      this.#upgraded.add(socket);
      socket.once("close", () => this.#upgraded.delete(socket));
      this.#track(handleExchange(new UpgradeExchange(opts.app, req, socket, rest, false), opts.deps));
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
