/**
 * The AffinityStore port (STYLE §3 "Ports & adapters"): where cross-host
 * session affinity lives. A sticky id (the process id in the sticky cookie)
 * of an app is pinned to its owner (node, pid) with a sliding TTL, and each
 * core registers itself as a node with a heartbeat TTL. `redis-store.ts` is the
 * real adapter; `MemoryAffinityStore` here is the in-memory one (tests, and the
 * shape to follow). Values arriving from a store are `unknown` and pass the
 * validators below.
 */
import type { Clock } from "../util/clock.js";

/** Who serves a pinned sticky id: the node (core) and the app process on it. */
export interface PinOwner {
  readonly node: string;
  readonly pid: number;
}

/** A node's registration (key `ferry:node:<name>`, refreshed by the heartbeat). */
export interface NodeRecord {
  readonly name: string;
  /** Where the node accepts forwarded requests (`host:port`); "" = it accepts none. */
  readonly peer: string;
  /** The peer listener speaks TLS. */
  readonly tls: boolean;
  /** Affinity keys (affinity/site-key.ts) of the apps the node has served. */
  readonly apps: readonly string[];
  /** Affinity key → the site (virtual host and base URI) it serves; absent from older cores. */
  readonly sites?: Readonly<Record<string, string>>;
  /** Sticky ids (sessions) the node owns now. */
  readonly sessions: number;
  /** The core's pid (informational). */
  readonly pid: number;
  /** Epoch ms of this registration. */
  readonly updatedAt: number;
}

/**
 * Every method may reject with AffinityUnavailableError (store down or slower
 * than its budget); callers then fall back to local-only affinity.
 */
export interface AffinityStore {
  /** The owner of `stickyId` of `app`, or null when not pinned (or expired). */
  getOwner(app: string, stickyId: string): Promise<PinOwner | null>;
  /** Pin (or re-pin) with a fresh TTL: the sliding part. */
  pin(app: string, stickyId: string, owner: PinOwner, ttlMs: number): Promise<void>;
  /** Remove a pin, only if it still names `node`. */
  unpin(app: string, stickyId: string, node: string): Promise<void>;
  /** Register / refresh a node with a TTL. */
  putNode(rec: NodeRecord, ttlMs: number): Promise<void>;
  removeNode(name: string): Promise<void>;
  getNode(name: string): Promise<NodeRecord | null>;
  /** All registered, unexpired nodes. */
  listNodes(): Promise<NodeRecord[]>;
  /**
   * How many times the store was lost (unavailable, or its connection dropped)
   * so far: when it changes, the store may have come back empty, and a node
   * writes its pins again.
   */
  readonly outages: number;
  close(): Promise<void>;
}

export class AffinityUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AffinityUnavailableError";
  }
}

function isObj(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A stored value (JSON text) → its object, or null when it is not JSON text of an object. */
function jsonObject(text: unknown): Readonly<Record<string, unknown>> | null {
  if (typeof text !== "string") return null;
  try {
    const v: unknown = JSON.parse(text);
    return isObj(v) ? v : null;
  } catch {
    return null;
  }
}

/** A stored pin value (JSON text) → PinOwner, or null when malformed. */
export function parsePinOwner(text: unknown): PinOwner | null {
  const v = jsonObject(text);
  if (v === null) return null;
  const node = v["node"];
  const pid = v["pid"];
  if (typeof node !== "string" || node === "" || typeof pid !== "number" || !Number.isSafeInteger(pid) || pid < 0) return null;
  return { node, pid };
}

/** A stored node value (JSON text) → NodeRecord, or null when malformed. */
export function parseNodeRecord(text: unknown): NodeRecord | null {
  const v = jsonObject(text);
  if (v === null) return null;
  const { name, peer, tls, apps, sessions, pid, updatedAt, sites } = v;
  if (typeof name !== "string" || name === "" || typeof peer !== "string" || typeof tls !== "boolean") return null;
  if (!Array.isArray(apps) || !apps.every((a) => typeof a === "string")) return null;
  const nums = [sessions, pid, updatedAt];
  if (!nums.every((n) => typeof n === "number" && Number.isFinite(n) && n >= 0)) return null;
  const siteMap: Record<string, string> = {};
  if (isObj(sites)) for (const [k, s] of Object.entries(sites)) if (typeof s === "string") siteMap[k] = s;
  return {
    name, peer, tls, apps: apps as string[], sessions: sessions as number, pid: pid as number, updatedAt: updatedAt as number,
    ...(isObj(sites) ? { sites: siteMap } : {}),
  };
}

interface Entry {
  readonly value: string;
  readonly expiresAt: number;
}

/** In-memory AffinityStore with TTLs on an injected clock (tests; a single host). */
export class MemoryAffinityStore implements AffinityStore {
  readonly #clock: Clock;
  readonly #pins = new Map<string, Entry>();
  readonly #nodes = new Map<string, Entry>();
  #down = false;
  #outages = 0;

  /** Make every call fail as an unavailable store would (tests). */
  get down(): boolean {
    return this.#down;
  }

  set down(v: boolean) {
    if (v && !this.#down) this.#outages++;
    this.#down = v;
  }

  get outages(): number {
    return this.#outages;
  }

  /** Forget every pin, as a restarted Redis would. */
  clearPins(): void {
    this.#pins.clear();
  }

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  #check(): void {
    if (this.#down) throw new AffinityUnavailableError("Cannot reach the affinity store: it is down");
  }

  #live(map: Map<string, Entry>, key: string): string | undefined {
    const e = map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= this.#clock.now()) {
      map.delete(key);
      return undefined;
    }
    return e.value;
  }

  getOwner(app: string, stickyId: string): Promise<PinOwner | null> {
    this.#check();
    return Promise.resolve(parsePinOwner(this.#live(this.#pins, `${app}\n${stickyId}`)));
  }

  pin(app: string, stickyId: string, owner: PinOwner, ttlMs: number): Promise<void> {
    this.#check();
    this.#pins.set(`${app}\n${stickyId}`, { value: JSON.stringify(owner), expiresAt: this.#clock.now() + ttlMs });
    return Promise.resolve();
  }

  unpin(app: string, stickyId: string, node: string): Promise<void> {
    this.#check();
    const key = `${app}\n${stickyId}`;
    if (parsePinOwner(this.#live(this.#pins, key))?.node === node) this.#pins.delete(key);
    return Promise.resolve();
  }

  putNode(rec: NodeRecord, ttlMs: number): Promise<void> {
    this.#check();
    this.#nodes.set(rec.name, { value: JSON.stringify(rec), expiresAt: this.#clock.now() + ttlMs });
    return Promise.resolve();
  }

  removeNode(name: string): Promise<void> {
    this.#check();
    this.#nodes.delete(name);
    return Promise.resolve();
  }

  getNode(name: string): Promise<NodeRecord | null> {
    this.#check();
    return Promise.resolve(parseNodeRecord(this.#live(this.#nodes, name)));
  }

  listNodes(): Promise<NodeRecord[]> {
    this.#check();
    const out: NodeRecord[] = [];
    for (const name of [...this.#nodes.keys()]) {
      const rec = parseNodeRecord(this.#live(this.#nodes, name));
      if (rec !== null) out.push(rec);
    }
    return Promise.resolve(out);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
