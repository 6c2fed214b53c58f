/**
 * Cross-host session affinity as the request path sees it (an optional
 * `affinity` dependency of handleExchange): before checkout, a request whose
 * sticky cookie names a process of another live host is forwarded there
 * (router.ts decides, peer-client.ts forwards); after a local checkout, the
 * process is pinned to this node in the store (pins.ts decides when: the
 * sliding TTL). Forwarded requests from peers arrive at the peer server and
 * are served by the same request path with forwarding off. The store being
 * slow or down only ever means "local-only": nothing here fails a request.
 *
 * `startAffinity()` builds the whole thing from the server options (both
 * composition roots call it).
 */
import { affinityKey, siteOf } from "./site-key.js";
import { promises as fsp } from "node:fs";
import os from "node:os";
import type { AppOptions, ServerOptions } from "../config/schema.js";
import { ConfigError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Session } from "../pool/session.js";
import type { ClusterStatus, PoolStatus } from "../control/status.js";
import type { AffinityHook } from "../exchange/context.js";
import type { Exchange } from "../exchange/exchange.js";
import { systemClock, type Clock } from "../util/clock.js";
import { Cluster } from "./cluster.js";
import { MIN_SECRET_BYTES, PeerVerifier } from "./peer-auth.js";
import { PeerClient, splitHostPort } from "./peer-client.js";
import { PeerServer, type PeerTlsOptions } from "./peer-server.js";
import { PinTracker } from "./pins.js";
import { DEFAULT_REDIS_TIMEOUT_MS } from "./redis-timeout.js";
import { needsLookup, routeAffinity, type OwnerLookup } from "./router.js";
import type { AffinityStore, NodeRecord } from "./store.js";

/** What the request path calls (exchange/handle.ts `RequestDeps.affinity`). */
export interface AffinityServiceOptions {
  readonly store: AffinityStore;
  readonly nodeName: string;
  readonly secret: Uint8Array;
  readonly ttlMs: number;
  readonly log: Logger;
  readonly clock?: Clock;
  /** The pool's status (local processes and their sticky ids). */
  readonly poolStatus: () => PoolStatus;
  /** Serve an exchange locally with the given hook (handleExchange with `affinity: hook`). */
  readonly serveLocal: (ex: Exchange, hook: AffinityHook) => Promise<void>;
  /** Where to accept forwarded requests; undefined = accept none (this node only forwards). */
  readonly listen?: { readonly host: string; readonly port: number };
  /** Address peers connect to, when it differs from the listen address (default: it, or the host name for a wildcard). */
  readonly advertiseHost?: string;
  /** Serve peers over TLS with this certificate (advertised: peers connect with TLS). */
  readonly tls?: PeerTlsOptions;
  /** CA that signed the peers' certificates (default the system CAs). */
  readonly ca?: string | Buffer;
  readonly heartbeatMs?: number;
  readonly connectTimeoutMs?: number;
}

export class AffinityService {
  readonly nodeName: string;
  readonly #o: AffinityServiceOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #pins: PinTracker;
  readonly #client: PeerClient;
  readonly #cluster: Cluster;
  /** Affinity key (site-key.ts) → this node's app serving it, and the site it names. */
  readonly #apps = new Map<string, AppOptions>();
  readonly #sites = new Map<string, string>();
  /** Standalone: the one app, for forwards whose key this node has not seen yet. */
  #onlyApp: AppOptions | undefined;
  #server: PeerServer | undefined;
  #peer = "";

  /** Forwards to peers + local pinning: give to the front ends' request path. */
  readonly hook: AffinityHook = {
    forward: (ex, stickyId) => this.#forward(ex, stickyId),
    served: (ex, session) => this.#served(ex, session),
  };

  /** Pinning only (requests that peers forwarded to us are never forwarded again). */
  readonly localHook: AffinityHook = {
    forward: () => Promise.resolve(false),
    served: (ex, session) => this.#served(ex, session),
  };

  constructor(o: AffinityServiceOptions) {
    this.#o = o;
    this.nodeName = o.nodeName;
    this.#clock = o.clock ?? systemClock;
    this.#log = o.log;
    this.#pins = new PinTracker(o.ttlMs, this.#clock);
    const ca = o.ca ?? o.tls?.ca;
    this.#client = new PeerClient({
      self: o.nodeName, secret: o.secret, log: o.log, clock: this.#clock,
      ...(ca !== undefined ? { ca } : {}),
      ...(o.connectTimeoutMs !== undefined ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
    });
    this.#cluster = new Cluster({
      store: o.store, log: o.log, clock: this.#clock,
      record: () => this.#record(),
      onStoreBack: () => this.#republish(),
      ...(o.heartbeatMs !== undefined ? { heartbeatMs: o.heartbeatMs } : {}),
    });
  }

  /** The address peers use to reach this node ("" when it accepts no forwards). */
  get peerAddress(): string {
    return this.#peer;
  }

  /** Requests this node forwarded / refused-for-auth (status, tests). */
  get counters(): { forwarded: number; declined: number; refused: number } {
    return { forwarded: this.#client.forwarded, declined: this.#client.declined, refused: this.#server?.refused ?? 0 };
  }

  /** Make an app servable for peers before its first local request (standalone knows its one app). */
  registerApp(app: AppOptions): void {
    this.#onlyApp = app;
  }

  /** The key this exchange's session is pinned under; remembers which local app serves it. */
  #keyOf(ex: Exchange): string {
    const input = { app: ex.app, serverName: ex.head.serverName };
    const key = affinityKey(input);
    if (this.#apps.get(key) !== ex.app) {
      this.#apps.set(key, ex.app);
      this.#sites.set(key, siteOf(input));
    }
    return key;
  }

  #resolveApp(key: string): AppOptions | undefined {
    return this.#apps.get(key) ?? this.#onlyApp;
  }

  async start(): Promise<void> {
    const l = this.#o.listen;
    if (l !== undefined) {
      const verifier = new PeerVerifier(this.#o.secret, systemClock);
      const server = new PeerServer({
        verifier,
        log: this.#log.child({ component: "affinity-peer" }),
        resolveApp: (key) => this.#resolveApp(key),
        hasProcess: (key, sticky) => {
          const app = this.#resolveApp(key);
          return app !== undefined && this.#localStickyIds(app.appGroupName).has(sticky);
        },
        handler: (ex) => this.#o.serveLocal(ex, this.localHook),
        ...(this.#o.tls !== undefined ? { tls: this.#o.tls } : {}),
      });
      const addr = await server.listen(l.port, l.host);
      this.#server = server;
      const wildcard = addr.address === "0.0.0.0" || addr.address === "::";
      const host = this.#o.advertiseHost ?? (wildcard ? os.hostname() : addr.address);
      this.#peer = host.includes(":") ? `[${host}]:${addr.port}` : `${host}:${addr.port}`;
    }
    await this.#cluster.start();
    this.#log.info({ node: this.nodeName, peer: this.#peer, storeAvailable: this.#cluster.storeAvailable }, "Shared session affinity started");
  }

  view(): ClusterStatus {
    return this.#cluster.view();
  }

  /** Run one heartbeat now (tests; after a config change). */
  heartbeat(): Promise<void> {
    return this.#cluster.beat();
  }

  async stop(deadlineMs = 5_000): Promise<void> {
    await this.#server?.close(deadlineMs);
    await this.#cluster.stop();
    this.#client.destroy();
    await this.#o.store.close();
  }

  #record(): NodeRecord {
    return {
      name: this.nodeName,
      peer: this.#peer,
      tls: this.#o.tls !== undefined,
      apps: [...this.#apps.keys()].sort(),
      sites: Object.fromEntries(this.#sites),
      sessions: this.#pins.count(),
      pid: process.pid,
      updatedAt: Date.now(),
    };
  }

  #localStickyIds(groupName: string): Set<string> {
    const out = new Set<string>();
    for (const g of this.#o.poolStatus().groups) {
      if (g.name !== groupName) continue;
      for (const p of g.processes) if (p.state === "ready") out.add(p.stickyId);
    }
    return out;
  }

  async #forward(ex: Exchange, stickyId: string): Promise<boolean> {
    try {
      const app = this.#keyOf(ex);
      const local = this.#localStickyIds(ex.app.appGroupName);
      let lookup: OwnerLookup = { kind: "skipped" };
      let ownerNode: NodeRecord | undefined;
      if (needsLookup(stickyId, local)) {
        try {
          const owner = await this.#o.store.getOwner(app, stickyId);
          lookup = owner === null ? { kind: "none" } : { kind: "owner", owner };
          if (owner !== null && owner.node !== this.nodeName) ownerNode = await this.#cluster.lookup(owner.node);
        } catch {
          lookup = { kind: "unavailable" };
        }
      }
      const route = routeAffinity({ stickyId, self: this.nodeName, localStickyIds: local, lookup, ownerNode });
      if (route.kind === "local") return false;
      if (route.kind === "repin") {
        this.#log.debug({ app, sticky: stickyId, reason: route.reason }, "re-pinning the session locally");
        return false;
      }
      const result = await this.#client.forward(ex, { node: route.node, peer: route.peer, tls: route.tls }, stickyId, app);
      if (result === "declined") {
        this.#cluster.suspect(route.node);
        return false;
      }
      return true;
    } catch (e: unknown) {
      this.#log.error({ err: e }, "Cannot route the request by shared affinity: serving it locally");
      return false;
    }
  }

  async #served(ex: Exchange, session: Session): Promise<void> {
    try {
      if (!ex.app.stickySessions || session.stickyId === "") return;
      const name = this.#keyOf(ex);
      if (!this.#pins.served(name, session.stickyId, session.pid)) return;
      await this.#o.store.pin(name, session.stickyId, { node: this.nodeName, pid: session.pid }, this.#o.ttlMs);
      this.#pins.written(name, session.stickyId, session.pid);
    } catch {
      // Store down: the pin is written on a later request (the store logged the outage).
    }
  }

  /** The store is back (maybe empty after a restart): write every live pin again. */
  async #republish(): Promise<void> {
    this.#pins.invalidate();
    const all = this.#pins.entries();
    for (let i = 0; i < all.length; i += 100) {
      await Promise.all(all.slice(i, i + 100).map(async (p) => {
        try {
          await this.#o.store.pin(p.app, p.stickyId, { node: this.nodeName, pid: p.pid }, this.#o.ttlMs);
          this.#pins.written(p.app, p.stickyId, p.pid);
        } catch {
          // retried on its next request
        }
      }));
    }
  }
}

/** PassengerAffinityTTL default: 1800 s. */
export const DEFAULT_AFFINITY_TTL_MS = 1_800_000;

/** The affinity settings of ServerOptions, when shared affinity is on. */
export interface AffinitySettings {
  readonly redisUrl: string;
  readonly nodeName: string;
  /** ADDR:PORT, "" = accept no forwards. */
  readonly listen: string;
  readonly secretFile: string;
  readonly ttlMs: number;
  readonly redisTimeoutMs: number;
  /** TLS for the peer listener (both or neither), and the CA of the peers' certificates; "" = none. */
  readonly tlsCertFile: string;
  readonly tlsKeyFile: string;
  readonly tlsCaFile: string;
}

/** Read the shared secret: at least 16 bytes (surrounding whitespace trimmed). */
export async function readSecretFile(file: string, log?: Logger): Promise<Buffer> {
  if (file === "") throw new ConfigError("Cannot enable shared session affinity: PassengerAffinitySecretFile is required when PassengerAffinityRedis is set");
  let data: Buffer;
  try {
    data = await fsp.readFile(file);
    const st = await fsp.stat(file);
    if ((st.mode & 0o077) !== 0) log?.warn({ file }, `PassengerAffinitySecretFile ${file} is readable by group or others; make it mode 0600`);
  } catch (e: unknown) {
    throw new ConfigError(`Cannot read PassengerAffinitySecretFile ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const secret = Buffer.from(data.toString("latin1").trim(), "latin1");
  if (secret.length < MIN_SECRET_BYTES) {
    throw new ConfigError(`Cannot use PassengerAffinitySecretFile ${file}: the secret has ${secret.length} bytes, at least ${MIN_SECRET_BYTES} are required`);
  }
  return secret;
}

/** "ADDR:PORT" → host and port, or a ConfigError naming the directive. */
export function parseListen(listen: string): { host: string; port: number } {
  const a = splitHostPort(listen) ?? (/^\[?[^\]]*\]?:0$/.test(listen) ? { host: listen.replace(/:0$/, "").replace(/^\[(.*)\]$/, "$1"), port: 0 } : undefined);
  if (a === undefined || a.host === "") throw new ConfigError(`Cannot use PassengerAffinityListen "${listen}": expected ADDR:PORT, e.g. 10.0.0.5:7400`);
  return a;
}

/** Settings from the server options, or undefined when shared affinity is off (no Redis URL). */
export function affinitySettings(server: ServerOptions): AffinitySettings | undefined {
  const redisUrl = server.affinityRedis ?? "";
  if (redisUrl === "") return undefined;
  const nodeName = server.affinityNodeName ?? "";
  return {
    redisUrl,
    nodeName: nodeName !== "" ? nodeName : os.hostname(),
    listen: server.affinityListen ?? "",
    secretFile: server.affinitySecretFile ?? "",
    ttlMs: server.affinityTtlMs ?? DEFAULT_AFFINITY_TTL_MS,
    redisTimeoutMs: server.affinityRedisTimeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS,
    tlsCertFile: server.affinityTlsCertFile ?? "",
    tlsKeyFile: server.affinityTlsKeyFile ?? "",
    tlsCaFile: server.affinityTlsCaFile ?? "",
  };
}

export interface StartAffinityDeps {
  readonly log: Logger;
  readonly poolStatus: () => PoolStatus;
  readonly serveLocal: (ex: Exchange, hook: AffinityHook) => Promise<void>;
  readonly heartbeatMs?: number;
}

/** Build and start shared affinity from the settings (ConfigError on bad settings). */
export async function startAffinity(s: AffinitySettings, deps: StartAffinityDeps): Promise<AffinityService> {
  const log = deps.log.child({ component: "affinity" });
  const secret = await readSecretFile(s.secretFile, log);
  const listen = s.listen !== "" ? parseListen(s.listen) : undefined;
  if ((s.tlsCertFile === "") !== (s.tlsKeyFile === "")) {
    throw new ConfigError("Cannot serve peers over TLS: PassengerAffinityTLSCertFile and PassengerAffinityTLSKeyFile go together");
  }
  const readPem = async (file: string, what: string): Promise<Buffer | undefined> => {
    if (file === "") return undefined;
    try {
      return await fsp.readFile(file);
    } catch (e: unknown) {
      throw new ConfigError(`Cannot read ${what} ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  };
  const cert = await readPem(s.tlsCertFile, "PassengerAffinityTLSCertFile");
  const key = await readPem(s.tlsKeyFile, "PassengerAffinityTLSKeyFile");
  const ca = await readPem(s.tlsCaFile, "PassengerAffinityTLSCAFile");
  // ioredis costs ~14 MB of RSS: load it only when shared affinity is on.
  const { RedisAffinityStore } = await import("./redis-store.js");
  const store = new RedisAffinityStore({ url: s.redisUrl, log, timeoutMs: s.redisTimeoutMs });
  const service = new AffinityService({
    store, nodeName: s.nodeName, secret, ttlMs: s.ttlMs, log,
    poolStatus: deps.poolStatus, serveLocal: deps.serveLocal,
    ...(listen !== undefined ? { listen } : {}),
    ...(cert !== undefined && key !== undefined ? { tls: { cert, key } } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(deps.heartbeatMs !== undefined ? { heartbeatMs: deps.heartbeatMs } : {}),
  });
  try {
    await store.whenReady(Math.max(500, s.redisTimeoutMs * 10));
    await service.start();
  } catch (e: unknown) {
    await store.close();
    throw e;
  }
  return service;
}

/**
 * The pool as the admin API sees it, with the cluster view added to its status
 * (`ferry status --json` → `cluster`: nodes, alive, sessions owned). The target
 * unchanged when shared affinity is off.
 */
export function withClusterStatus<T extends { status(): PoolStatus }>(target: T, affinity: AffinityService | undefined): T {
  if (affinity === undefined) return target;
  return new Proxy(target, {
    get(t, prop) {
      if (prop === "status") return () => Object.assign({}, t.status(), { cluster: affinity.view() });
      const v: unknown = Reflect.get(t, prop, t);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}
