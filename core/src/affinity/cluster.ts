/**
 * This core's membership in the affinity cluster: a heartbeat registers it
 * (`ferry:node:<name>` with a TTL: name, peer address, apps, sessions owned)
 * and refreshes the cached view of the other nodes that the request path
 * reads without a store round trip. A heartbeat that succeeds after the store
 * was unavailable republishes this node's pins (a restarted Redis starts
 * empty). `view()` is the cluster part of `ferry status`.
 */
import type { Logger } from "../log.js";
import type { Clock } from "../util/clock.js";
import type { AffinityStore, NodeRecord } from "./store.js";
import type { ClusterNodeStatus, ClusterStatus } from "../control/status.js";
import { keyMismatches } from "./site-key.js";

export const DEFAULT_HEARTBEAT_MS = 2_000;

export interface ClusterOptions {
  readonly store: AffinityStore;
  readonly log: Logger;
  readonly clock: Clock;
  /** The record to publish now (apps and session count change over time). */
  readonly record: () => NodeRecord;
  readonly heartbeatMs?: number;
  /** Called after the first successful heartbeat and after each one following a store outage. */
  readonly onStoreBack?: () => Promise<void>;
}

export class Cluster {
  readonly #o: ClusterOptions;
  readonly #heartbeatMs: number;
  #nodes = new Map<string, NodeRecord>();
  /** Every node seen since start, for the status view (dead ones show alive: false). */
  readonly #seen = new Map<string, NodeRecord>();
  #timer: NodeJS.Timeout | undefined;
  #storeUp = false;
  /** store.outages when the pins were last (re)published; -1 = never. */
  #publishedAt = -1;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(o: ClusterOptions) {
    this.#o = o;
    this.#heartbeatMs = o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  }

  /** Node key TTL: three missed heartbeats and the node counts as gone. */
  get nodeTtlMs(): number {
    return this.#heartbeatMs * 3 + 500;
  }

  get storeAvailable(): boolean {
    return this.#storeUp;
  }

  /** First heartbeat now, then periodically. */
  async start(): Promise<void> {
    await this.beat();
    this.#timer = setInterval(() => void this.beat(), this.#heartbeatMs);
    this.#timer.unref();
  }

  /** One heartbeat (coalesced if one is running). Never rejects. */
  beat(): Promise<void> {
    this.#running ??= this.#beat().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #beat(): Promise<void> {
    if (this.#stopped) return;
    const { store, log } = this.#o;
    try {
      await store.putNode(this.#o.record(), this.nodeTtlMs);
      this.#storeUp = true;
      const outages = store.outages;
      if (outages !== this.#publishedAt && this.#o.onStoreBack !== undefined) {
        // First contact, or the store was lost since: it may have come back empty.
        this.#publishedAt = outages;
        await this.#o.onStoreBack();
      }
      const nodes = await store.listNodes();
      const next = new Map<string, NodeRecord>();
      for (const n of nodes) {
        next.set(n.name, n);
        this.#seen.set(n.name, n);
      }
      this.#nodes = next;
    } catch (e: unknown) {
      // The store logs the outage once; keep the last view (a forward to a dead peer is declined anyway).
      this.#storeUp = false;
      log.debug({ err: e }, "affinity heartbeat failed");
    }
  }

  /** A live node from the cached view. */
  node(name: string): NodeRecord | undefined {
    return this.#nodes.get(name);
  }

  /** Look a node up in the store when the cache does not know it (a node that just started). */
  async lookup(name: string): Promise<NodeRecord | undefined> {
    const cached = this.#nodes.get(name);
    if (cached !== undefined) return cached;
    try {
      const rec = await this.#o.store.getNode(name);
      if (rec === null) return undefined;
      this.#nodes.set(rec.name, rec);
      this.#seen.set(rec.name, rec);
      return rec;
    } catch {
      return undefined;
    }
  }

  /** A forward to this node failed to connect: consider it gone until its next heartbeat shows it. */
  suspect(name: string): void {
    this.#nodes.delete(name);
  }

  /** The cluster part of the status snapshot (control/status.ts). */
  view(): ClusterStatus {
    const self = this.#o.record();
    const nodes: ClusterNodeStatus[] = [];
    const live: Array<{ readonly name: string; readonly sites: Readonly<Record<string, string>> }> = [];
    const names = new Set([...this.#seen.keys(), self.name]);
    for (const name of [...names].sort()) {
      const isSelf = name === self.name;
      const rec = isSelf ? self : this.#nodes.get(name) ?? this.#seen.get(name);
      if (rec === undefined) continue;
      const alive = isSelf || this.#nodes.has(name);
      nodes.push({ name, peer: rec.peer, alive, self: isSelf, sessions: rec.sessions, apps: rec.apps, lastSeenAt: rec.updatedAt });
      if (alive) live.push({ name, sites: rec.sites ?? {} });
    }
    return { node: self.name, storeAvailable: this.#storeUp, nodes, keyMismatches: keyMismatches(live) };
  }

  /** Stop the heartbeat and unregister (best effort, within the store's budget). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#running?.catch(() => undefined);
    try {
      await this.#o.store.removeNode(this.#o.record().name);
    } catch {
      // the TTL removes it
    }
  }
}
