/**
 * Exchanges over a `node:http` server: an ordinary request (IncomingMessage +
 * ServerResponse) and an upgrade request (the raw client socket). Used by the
 * standalone front server (standalone-mode.ts) and the affinity peer server
 * (affinity/peer-server.ts); each builds the RequestHead its own way and may
 * filter the response headers.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Readable, type Duplex } from "node:stream";
import type { AppOptions } from "../../config/schema.js";
import type { Exchange, RequestHead } from "../../exchange/exchange.js";
import { drained } from "../../util/backpressure.js";

/** Response headers as written to the client (flat name/value list). */
export type HeaderFilter = (headers: readonly string[]) => string[];

const keepAll: HeaderFilter = (headers) => [...headers];

/** An ordinary request on a client connection. */
export class NodeHttpExchange implements Exchange {
  readonly body: Readable;
  readonly signal: AbortSignal;
  readonly #res: http.ServerResponse;
  readonly #filter: HeaderFilter;

  constructor(
    readonly app: AppOptions,
    readonly head: RequestHead,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    filter: HeaderFilter = keepAll,
  ) {
    this.body = req;
    this.#res = res;
    this.#filter = filter;
    const ac = new AbortController();
    this.signal = ac.signal;
    res.once("close", () => {
      if (!res.writableFinished) ac.abort();
    });
    req.once("error", () => ac.abort());
  }

  writeHead(status: number, headers: readonly string[]): void {
    this.#res.writeHead(status, this.#filter(headers));
  }

  write(chunk: Uint8Array): boolean {
    if (this.#res.destroyed) return true;
    return this.#res.write(chunk);
  }

  waitDrain(): Promise<void> {
    return drained(this.#res);
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

  tunnelEnded(): void {
    // no tunnel on an ordinary request
  }
}

/** An upgrade request: the response is written raw on the client socket. */
export class NodeUpgradeExchange implements Exchange {
  readonly body: Readable = Readable.from([]);
  readonly signal: AbortSignal;
  readonly #socket: Duplex;
  readonly #filter: HeaderFilter;
  #status = 0;

  constructor(
    readonly app: AppOptions,
    readonly head: RequestHead,
    socket: Duplex,
    rest: Buffer,
    filter: HeaderFilter = keepAll,
  ) {
    this.#socket = socket;
    this.#filter = filter;
    if (rest.length > 0) socket.unshift(rest);
    const ac = new AbortController();
    this.signal = ac.signal;
    socket.once("close", () => ac.abort());
  }

  writeHead(status: number, headers: readonly string[]): void {
    this.#status = status;
    const lines = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? "Unknown"}`];
    const h = this.#filter(headers);
    for (let i = 0; i + 1 < h.length; i += 2) lines.push(`${h[i] ?? ""}: ${h[i + 1] ?? ""}`);
    // A non-101 answer ends the connection: the body is delimited by the close.
    if (status !== 101) lines.push("Connection: close");
    this.#socket.write(Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1"));
  }

  write(chunk: Uint8Array): boolean {
    if (this.#socket.destroyed) return true;
    return this.#socket.write(chunk);
  }

  waitDrain(): Promise<void> {
    return drained(this.#socket);
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

  tunnelEnded(): void {
    // the socket is closed: nothing more to do with it
  }
}

/**
 * The exchanges a `node:http` server has in progress (WebSocket tunnels
 * included), for a graceful close: stop accepting, let them finish until a
 * deadline, then cut whatever is left.
 */
export class ExchangeTracker {
  readonly #server: http.Server;
  readonly #active = new Set<Promise<void>>();
  readonly #upgraded = new Set<Duplex>();

  constructor(server: http.Server) {
    this.#server = server;
  }

  /** Exchanges in progress. */
  get size(): number {
    return this.#active.size;
  }

  track(p: Promise<void>): void {
    this.#active.add(p);
    void p.finally(() => this.#active.delete(p));
  }

  /** An upgraded client socket: ended on close, destroyed at the deadline. */
  trackUpgraded(socket: Duplex): void {
    this.#upgraded.add(socket);
    socket.once("close", () => this.#upgraded.delete(socket));
  }

  async close(deadlineMs: number): Promise<void> {
    const server = this.#server;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const until = Date.now() + deadlineMs;
    for (const s of this.#upgraded) s.end();
    while (this.#active.size > 0 && Date.now() < until) {
      const timer = new Promise<void>((resolve) => setTimeout(resolve, Math.max(1, Math.min(100, until - Date.now()))));
      await Promise.race([Promise.allSettled([...this.#active]).then(() => undefined), timer]);
      server.closeIdleConnections();
    }
    server.closeAllConnections();
    for (const s of this.#upgraded) s.destroy();
    await closed;
  }
}

/** Listen on a TCP port; later server errors go to `onError`. */
export function listenTcp(
  server: http.Server,
  opts: { readonly port: number; readonly host: string; readonly backlog?: number },
  onError: (e: unknown) => void,
): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onListenError = (e: unknown): void => reject(e);
    server.once("error", onListenError);
    server.listen(opts, () => {
      server.off("error", onListenError);
      server.on("error", onError);
      const a = server.address();
      if (a === null || typeof a === "string") reject(new Error("Cannot listen: no TCP address"));
      else resolve(a);
    });
  });
}
