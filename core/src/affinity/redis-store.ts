/**
 * The Redis AffinityStore (the only importer of ioredis). Keys:
 *
 *   ferry:aff:<app>:<stickyId>  JSON {node, pid}, sliding TTL (PassengerAffinityTTL)
 *   ferry:node:<name>           JSON NodeRecord, heartbeat TTL
 *   ferry:nodes                 set of node names (index for listNodes; stale names pruned)
 *
 * Budgets: every call has a deadline (PassengerAffinityRedisTimeout, default
 * 50 ms); ioredis never queues offline (`enableOfflineQueue: false`) nor
 * retries a command, and reconnects lazily with a capped backoff. When a call
 * fails the store is "down": one log line, and request-path reads fail fast
 * (no Redis round trip) until a background call (the heartbeat) succeeds
 * again, which logs one line. Callers treat AffinityUnavailableError as
 * "local-only affinity" and never fail a request because of it.
 */
import { Redis, type RedisOptions } from "ioredis";
import { ConfigError } from "../errors.js";
import type { Logger } from "../log.js";
import {
  AffinityUnavailableError, parseNodeRecord, parsePinOwner,
  type AffinityStore, type NodeRecord, type PinOwner,
} from "./store.js";

export { DEFAULT_REDIS_TIMEOUT_MS } from "./redis-timeout.js";
import { DEFAULT_REDIS_TIMEOUT_MS } from "./redis-timeout.js";
const NODES_SET = "ferry:nodes";

export function pinKey(app: string, stickyId: string): string {
  return `ferry:aff:${app}:${stickyId}`;
}

export function nodeKey(name: string): string {
  return `ferry:node:${name}`;
}

/** Connection target parsed from PassengerAffinityRedis. */
export interface RedisTarget {
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  readonly db: number;
  readonly tls: boolean;
  readonly username?: string;
  readonly password?: string;
}

/**
 * `redis://[user:pass@]host[:port][/db]`, `rediss://…` (TLS), `unix:/path[?db=N]`
 * or `unix:///path` → RedisTarget; ConfigError otherwise.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const bad = (why: string): never => {
    throw new ConfigError(`Cannot use PassengerAffinityRedis "${url}": ${why} (expected redis://host:port/db, rediss://host:port/db or unix:/path)`);
  };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return bad("not a URL");
  }
  const dbOf = (s: string | null): number => {
    if (s === null || s === "") return 0;
    if (!/^\d{1,5}$/.test(s)) return bad(`database "${s}" is not a number`);
    return Number(s);
  };
  if (u.protocol === "unix:") {
    const p = decodeURIComponent(u.pathname);
    if (!p.startsWith("/")) return bad("the socket path must be absolute");
    return { path: p, db: dbOf(u.searchParams.get("db")), tls: false };
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") return bad(`scheme "${u.protocol}" is not supported`);
  if (u.hostname === "") return bad("no host");
  const port = u.port === "" ? 6379 : Number(u.port);
  const dbPart = u.pathname.replace(/^\//, "");
  const target: { -readonly [K in keyof RedisTarget]: RedisTarget[K] } = {
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    db: dbOf(dbPart === "" ? null : dbPart),
    tls: u.protocol === "rediss:",
  };
  if (u.username !== "") target.username = decodeURIComponent(u.username);
  if (u.password !== "") target.password = decodeURIComponent(u.password);
  return target;
}

export interface RedisStoreOptions {
  readonly url: string;
  readonly log: Logger;
  /** Deadline of each call, ms. */
  readonly timeoutMs?: number;
}

/** Reconnect backoff: 100 ms doubling, capped at 2 s. */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(2_000, 100 * 2 ** Math.min(5, Math.max(0, attempt - 1)));
}

export class RedisAffinityStore implements AffinityStore {
  readonly #redis: Redis;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #where: string;
  /** undefined until the first call settles. */
  #up: boolean | undefined;
  #closed = false;
  /** The first connection attempt is still in progress: failures then are not an outage yet. */
  #starting = true;
  #outages = 0;
  #connected = false;

  constructor(opts: RedisStoreOptions) {
    const t = parseRedisUrl(opts.url);
    this.#log = opts.log;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS;
    this.#where = t.path ?? `${t.host ?? ""}:${t.port ?? 6379}`;
    const ro: RedisOptions = {
      db: t.db,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      enableReadyCheck: true,
      autoResubscribe: false,
      connectTimeout: Math.max(1_000, this.#timeoutMs * 10),
      commandTimeout: this.#timeoutMs,
      retryStrategy: (times: number) => (this.#closed ? null : reconnectDelayMs(times)),
    };
    if (t.path !== undefined) ro.path = t.path;
    if (t.host !== undefined) ro.host = t.host;
    if (t.port !== undefined) ro.port = t.port;
    if (t.username !== undefined) ro.username = t.username;
    if (t.password !== undefined) ro.password = t.password;
    if (t.tls) ro.tls = t.host !== undefined ? { servername: t.host } : {};
    this.#redis = new Redis(ro);
    this.#redis.on("error", (e: unknown) => this.#log.debug({ err: e }, "redis connection error"));
    this.#redis.on("ready", () => {
      this.#starting = false;
      this.#connected = true;
    });
    // A dropped connection may come back to an empty (restarted) Redis: count it.
    this.#redis.on("close", () => {
      if (this.#connected) this.#outages++;
      this.#connected = false;
    });
    this.#redis.connect().catch((e: unknown) => {
      this.#starting = false;
      this.#down(e);
    });
  }

  /** Whether the last call succeeded (undefined before the first one). */
  get available(): boolean | undefined {
    return this.#up;
  }

  get outages(): number {
    return this.#outages;
  }

  /** Resolves when the first connection is ready, or after `ms` (never rejects). */
  async whenReady(ms: number): Promise<void> {
    if (!this.#starting) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.#redis.off("ready", done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#redis.once("ready", done);
    });
  }

  #down(e: unknown): void {
    if (this.#closed) return;
    if (this.#up !== false) {
      if (this.#up === true && this.#connected) this.#outages++;
      const msg = e instanceof Error ? e.message : String(e);
      this.#log.warn({ redis: this.#where }, `Cannot use the Redis affinity store at ${this.#where}: ${msg}; session affinity is local-only until it returns`);
    }
    this.#up = false;
  }

  #upAgain(): void {
    if (this.#up === false) this.#log.info({ redis: this.#where }, `The Redis affinity store at ${this.#where} is reachable again: shared session affinity restored`);
    this.#up = true;
  }

  /** Run one call under the deadline; `fastFail`: do not even try while known down. */
  async #call<T>(what: string, fn: (r: Redis) => Promise<T>, fastFail: boolean): Promise<T> {
    if (this.#closed) throw new AffinityUnavailableError(`Cannot ${what}: the affinity store is closed`);
    if (fastFail && this.#up === false) throw new AffinityUnavailableError(`Cannot ${what}: the Redis affinity store is unavailable`);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AffinityUnavailableError(`Cannot ${what}: no answer from Redis within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    });
    try {
      const p = fn(this.#redis);
      p.catch(() => undefined);
      const v = await Promise.race([p, deadline]);
      this.#upAgain();
      return v;
    } catch (e: unknown) {
      if (!this.#starting) this.#down(e);
      if (e instanceof AffinityUnavailableError) throw e;
      throw new AffinityUnavailableError(`Cannot ${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  getOwner(app: string, stickyId: string): Promise<PinOwner | null> {
    return this.#call("look up a session owner", async (r) => parsePinOwner(await r.get(pinKey(app, stickyId))), true);
  }

  async pin(app: string, stickyId: string, owner: PinOwner, ttlMs: number): Promise<void> {
    await this.#call("pin a session", (r) => r.set(pinKey(app, stickyId), JSON.stringify(owner), "PX", Math.max(1, Math.round(ttlMs))), true);
  }

  async unpin(app: string, stickyId: string, node: string): Promise<void> {
    const key = pinKey(app, stickyId);
    await this.#call("unpin a session", async (r) => {
      if (parsePinOwner(await r.get(key))?.node === node) await r.del(key);
    }, true);
  }

  async putNode(rec: NodeRecord, ttlMs: number): Promise<void> {
    await this.#call("register this node", (r) => r.multi()
      .set(nodeKey(rec.name), JSON.stringify(rec), "PX", Math.max(1, Math.round(ttlMs)))
      .sadd(NODES_SET, rec.name)
      .exec(), false);
  }

  async removeNode(name: string): Promise<void> {
    await this.#call("unregister this node", (r) => r.multi().del(nodeKey(name)).srem(NODES_SET, name).exec(), false);
  }

  getNode(name: string): Promise<NodeRecord | null> {
    return this.#call("look up a node", async (r) => parseNodeRecord(await r.get(nodeKey(name))), true);
  }

  listNodes(): Promise<NodeRecord[]> {
    return this.#call("list the nodes", async (r) => {
      const names = (await r.smembers(NODES_SET)).sort();
      if (names.length === 0) return [];
      const values = await r.mget(names.map(nodeKey));
      const out: NodeRecord[] = [];
      const stale: string[] = [];
      names.forEach((n, i) => {
        const rec = parseNodeRecord(values[i]);
        if (rec === null) stale.push(n);
        else out.push(rec);
      });
      if (stale.length > 0) await r.srem(NODES_SET, ...stale);
      return out;
    }, false);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await Promise.race([this.#redis.quit(), new Promise((resolve) => setTimeout(resolve, 500).unref())]);
    } catch {
      // already gone
    }
    this.#redis.disconnect(false);
  }
}
