import test from "ava";
import { Readable, type Duplex } from "node:stream";
import { pino } from "pino";
import { AffinityService } from "../../../core/src/affinity/service.js";
import { MemoryAffinityStore } from "../../../core/src/affinity/store.js";
import { makeAppOptions } from "../../../core/src/config/schema.js";
import type { Session } from "../../../core/src/pool/session.js";
import type { PoolStatus } from "../../../core/src/control/status.js";
import type { Exchange } from "../../../core/src/exchange/exchange.js";

const log = pino({ level: "silent" });
const APP = makeAppOptions("/srv/app", { stickySessions: true });
/** The key sessions of APP served for vhost "x" are pinned under (affinity/site-key.ts). */
const KEY = "site:x/ (production)";

function status(stickyIds: string[]): PoolStatus {
  return {
    version: "x", maxPoolSize: 6, processCount: stickyIds.length,
    groups: [{
      name: APP.appGroupName, appRoot: APP.appRoot, appEnv: "production", queueLength: 0, spawning: 0, restarting: false, lastError: null,
      restartGeneration: 0, spawns: 0, spawnFailures: 0, crashes: 0, crashReasons: {}, queueOverflows: 0, leases: 0, passes: 0, directRequests: 0, unhealthy: {}, lastExit: null,
      processes: stickyIds.map((s, i) => ({
        pid: 100 + i, stickyId: s, state: "ready" as const, inFlight: 0, upgraded: 0, processed: 0, startedAt: 0, lastUsedAt: 0, cpuPercent: 0, rssBytes: 0, cpuSeconds: 0, generation: 0, retireReason: "", health: "ok", healthFailures: 0, lastHealthFailure: "",
      })),
    }],
  };
}

function session(stickyId: string, pid: number): Session {
  return {
    groupName: APP.appGroupName, pid, stickyId, leaseId: `n.${pid}`, address: { kind: "unix", path: "/x" },
    processGone: new AbortController().signal, markUpgraded: () => undefined, release: () => undefined,
  };
}

function exchange(app = APP, serverName = "x"): Exchange {
  return {
    head: {
      method: "GET", uri: "/", proto: "HTTP/1.1", headers: [], remoteAddr: "", remotePort: 0, serverName, serverPort: 80,
      https: false, hasBody: false, upgrade: false,
    },
    app,
    body: Readable.from([]),
    signal: new AbortController().signal,
    writeHead: () => { throw new Error("must not answer"); },
    write: () => true,
    waitDrain: () => Promise.resolve(),
    end: () => undefined,
    abort: () => undefined,
    upgraded: (): Duplex => { throw new Error("no"); },
    tunnelEnded: () => undefined,
  };
}

function setup(local: string[]): { store: MemoryAffinityStore; svc: AffinityService; clock: { now: () => number; advance: (ms: number) => void } } {
  let t = 5_000_000;
  const clock = { now: () => t, advance: (ms: number) => { t += ms; } };
  const store = new MemoryAffinityStore(clock);
  const svc = new AffinityService({
    store, nodeName: "a", secret: Buffer.alloc(32, 1), ttlMs: 100_000, log, clock,
    poolStatus: () => status(local), serveLocal: () => Promise.resolve(),
  });
  return { store, svc, clock };
}

test("hook.served() pins the process to this node with the TTL", async (t) => {
  const { store, svc, clock } = setup(["7"]);
  await svc.hook.served(exchange(), session("7", 100));
  t.deepEqual(await store.getOwner(KEY, "7"), { node: "a", pid: 100 });
  clock.advance(99_999);
  t.not(await store.getOwner(KEY, "7"), null);
  clock.advance(1);
  t.is(await store.getOwner(KEY, "7"), null, "expired: nothing renewed it");
});

test("hook.served() does nothing for an app without sticky sessions", async (t) => {
  const { store, svc } = setup(["7"]);
  const plain = makeAppOptions("/srv/app");
  await svc.hook.served(exchange(plain), session("7", 100));
  t.is(await store.getOwner(KEY, "7"), null);
});

test("hook.served() with the store down neither fails nor waits", async (t) => {
  const { store, svc } = setup(["7"]);
  store.down = true;
  await t.notThrowsAsync(() => svc.hook.served(exchange(), session("7", 100)));
});

test("hook.forward() serves a local process locally", async (t) => {
  const { svc } = setup(["7"]);
  t.false(await svc.hook.forward(exchange(), "7"));
});

test("hook.forward() serves locally when the store is down", async (t) => {
  const { store, svc } = setup(["8"]);
  store.down = true;
  t.false(await svc.hook.forward(exchange(), "7"));
});

test("hook.forward() re-pins locally when the owner node is not alive", async (t) => {
  const { store, svc } = setup(["8"]);
  await store.pin(KEY, "7", { node: "b", pid: 5 }, 100_000);
  t.false(await svc.hook.forward(exchange(), "7"));
});

test("hook.forward() re-pins locally when this node's pinned process is gone", async (t) => {
  const { store, svc } = setup(["8"]);
  await store.pin(KEY, "7", { node: "a", pid: 5 }, 100_000);
  t.false(await svc.hook.forward(exchange(), "7"));
});

test("localHook never forwards", async (t) => {
  const { store, svc } = setup([]);
  await store.pin(KEY, "7", { node: "b", pid: 5 }, 100_000);
  await store.putNode({ name: "b", peer: "127.0.0.1:1", tls: false, apps: [], sessions: 0, pid: 1, updatedAt: 0 }, 100_000);
  t.false(await svc.localHook.forward(exchange(), "7"));
});

test("hook.served() pins under the site (vhost + base URI), so hosts serving one site from different directories share the pin", async (t) => {
  const { store, svc } = setup(["7"]);
  const release = makeAppOptions("/srv/releases/20261206/app", { stickySessions: true });
  await svc.hook.served(exchange(release, "Shop.Example"), session("7", 100));
  const otherHost = makeAppOptions("/home/deploy/shop", { stickySessions: true });
  t.deepEqual(await store.getOwner("site:shop.example/ (production)", "7"), { node: "a", pid: 100 });
  t.is(await store.getOwner(release.appGroupName, "7"), null, "not under the local app root");
  t.is(makeAppOptions("/x").appEnv, otherHost.appEnv);
});

test("hook.served() pins under PassengerAppGroupName when it is set", async (t) => {
  const { store, svc } = setup(["7"]);
  const named = makeAppOptions("/srv/a", { stickySessions: true, appGroupName: "shop" });
  await svc.hook.served(exchange(named, "shop.example"), session("7", 100));
  t.deepEqual(await store.getOwner("group:shop", "7"), { node: "a", pid: 100 });
});

test("the cluster view names a site two live hosts serve under different keys", async (t) => {
  const { store, svc } = setup(["7"]);
  await svc.hook.served(exchange(APP, "shop.example"), session("7", 100));
  await store.putNode({ name: "b", peer: "127.0.0.1:1", tls: false, apps: ["group:shop"], sites: { "group:shop": "shop.example/" }, sessions: 0, pid: 1, updatedAt: 0 }, 100_000);
  await svc.heartbeat();
  const view = svc.view();
  t.deepEqual(view.keyMismatches, [{ site: "shop.example/", keys: [{ node: "a", key: "site:shop.example/ (production)" }, { node: "b", key: "group:shop" }] }]);
});
