/**
 * Keep-alive connection pools towards app processes, one per app address, so
 * the request path reuses connections to a process instead of opening one per
 * request. Pools of addresses nobody used for a while are dropped.
 *
 * Plain requests go through undici (request.ts): its HTTP/1.1 client costs the
 * core markedly less CPU per request than node:http's. Upgrade requests
 * (tunnel.ts) use node:http with `addressRequestOptions`.
 */
import type http from "node:http";
import { createRequire } from "node:module";
import type { Duplex } from "node:stream";
import type { Client, Pool, buildConnector, Dispatcher } from "undici";
import { connectAppSocket } from "../../os/app-socket.js";
import type { AppAddress } from "../../pool/session.js";

/**
 * undici, loaded on first use: only the relay path needs it, and it is ~19 MB
 * of the core's RSS (the direct path, the default behind Apache, never loads it).
 */
let undiciModule: typeof import("undici") | undefined;
function undici(): typeof import("undici") {
  undiciModule ??= createRequire(import.meta.url)("undici") as typeof import("undici");
  return undiciModule;
}

export interface AppAgentsOptions {
  /** Upper bound of connections to one app process. */
  readonly maxSocketsPerProcess?: number;
  /** Idle keep-alive connections are closed after this many ms (below Node's server default of 5 s). */
  readonly freeSocketTimeoutMs?: number;
}

export function addressKey(a: AppAddress): string {
  return a.kind === "unix" ? `unix:${a.path}` : `tcp:${a.host}:${a.port}`;
}

type CreateConnection = NonNullable<http.ClientRequestArgs["createConnection"]>;

/**
 * node:http's createConnection for an app's Unix socket: connects only when
 * the listener runs as the app's user (peer credentials, os/app-socket.ts),
 * so a tenant app that swaps its socket for a symlink to a root-only socket
 * never gets the core (root) to talk to it (issue 4, docs/security.md).
 */
export function appSocketConnection(socketPath: string): CreateConnection {
  return (_options, oncreate) => {
    const done = oncreate as (err: Error | null, socket?: Duplex) => void;
    connectAppSocket(socketPath, (err, socket) => done(err, socket));
    return undefined;
  };
}

/** The same check as undici's connector. */
function appSocketConnector(socketPath: string): buildConnector.connector {
  return (_options, callback) => {
    connectAppSocket(socketPath, (err, socket) => {
      if (err === null && socket !== undefined) callback(null, socket);
      else callback(err ?? new Error(`Cannot connect to app socket ${socketPath}`), null);
    });
  };
}

/** Connection options for http.request (with `agent: false`) towards an app address. */
export function addressRequestOptions(a: AppAddress): http.RequestOptions {
  return a.kind === "unix"
    ? { socketPath: a.path, createConnection: appSocketConnection(a.path) }
    : { host: a.host, port: a.port };
}

/** The undici origin of an address (a Unix socket gets a placeholder origin plus `socketPath`). */
function originOf(a: AppAddress): string {
  if (a.kind === "unix") return "http://localhost";
  return a.host.includes(":") ? `http://[${a.host}]:${a.port}` : `http://${a.host}:${a.port}`;
}

/** The largest response head Ferry accepts from an app. */
export const MAX_APP_RESPONSE_HEAD_BYTES = 64 * 1024;

/** Options shared by pools and one-shot clients: no undici timeouts (PassengerMaxRequestTime is ours). */
function clientOptions(a: AppAddress, keepAliveTimeout: number): Client.Options {
  const opts: Client.Options = {
    pipelining: 1,
    keepAliveTimeout,
    keepAliveMaxTimeout: keepAliveTimeout,
    headersTimeout: 0,
    bodyTimeout: 0,
    connectTimeout: 10_000,
    // Response heads up to 64 KiB (Node's and undici's default is 16 KiB; big
    // cookies and CSP headers exceed it). A larger head is a readable 502.
    maxHeaderSize: MAX_APP_RESPONSE_HEAD_BYTES,
  };
  if (a.kind === "unix") opts.connect = appSocketConnector(a.path);
  return opts;
}

/**
 * A client for one request that opens its own connection and closes it after
 * the exchange (used when the core runs without shared pools).
 */
export function oneShotClient(a: AppAddress): Client {
  return new (undici().Client)(originOf(a), clientOptions(a, 1_000));
}

interface PoolStats {
  readonly connected: number;
  readonly pending: number;
  readonly running: number;
}

export class AppAgents {
  readonly #pools = new Map<string, Pool>();
  readonly #opts: Required<AppAgentsOptions>;
  #gets = 0;

  constructor(opts: AppAgentsOptions = {}) {
    this.#opts = {
      maxSocketsPerProcess: opts.maxSocketsPerProcess ?? 256,
      freeSocketTimeoutMs: opts.freeSocketTimeoutMs ?? 4_000,
    };
  }

  /** The pool for an address, created on first use. */
  get(address: AppAddress): Dispatcher {
    if (++this.#gets % 256 === 0) this.#sweep();
    const key = addressKey(address);
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = new (undici().Pool)(originOf(address), {
        ...clientOptions(address, this.#opts.freeSocketTimeoutMs),
        connections: this.#opts.maxSocketsPerProcess,
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** Drop the pool of an address whose process is gone, closing its connections. */
  forget(address: AppAddress): void {
    const key = addressKey(address);
    const pool = this.#pools.get(key);
    if (pool !== undefined) {
      this.#pools.delete(key);
      pool.destroy().catch(() => undefined);
    }
  }

  /** Close every connection. */
  destroy(): void {
    for (const pool of this.#pools.values()) pool.destroy().catch(() => undefined);
    this.#pools.clear();
  }

  get size(): number {
    return this.#pools.size;
  }

  #sweep(): void {
    for (const [key, pool] of this.#pools) {
      const s: PoolStats = pool.stats;
      if (s.connected === 0 && s.pending === 0 && s.running === 0) {
        this.#pools.delete(key);
        pool.destroy().catch(() => undefined);
      }
    }
  }
}
