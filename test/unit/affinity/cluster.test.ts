import test from "ava";
import { pino } from "pino";
import { Cluster } from "../../../core/src/affinity/cluster.js";
import { MemoryAffinityStore, type NodeRecord } from "../../../core/src/affinity/store.js";

const log = pino({ level: "silent" });

function setup(name = "a"): { clock: { now: () => number; advance: (ms: number) => void }; store: MemoryAffinityStore; cluster: Cluster; republished: () => number; sessions: { n: number } } {
  let t = 1_000_000;
  const clock = { now: () => t, advance: (ms: number) => { t += ms; } };
  const store = new MemoryAffinityStore(clock);
  let republished = 0;
  const sessions = { n: 0 };
  const record = (): NodeRecord => ({ name, peer: `${name}:7400`, tls: false, apps: ["app"], sessions: sessions.n, pid: 1, updatedAt: clock.now() });
  const cluster = new Cluster({
    store, log, clock, record, heartbeatMs: 1_000,
    onStoreBack: () => {
      republished++;
      return Promise.resolve();
    },
  });
  return { clock, store, cluster, republished: () => republished, sessions };
}

test("Cluster.beat() registers the node and sees the others", async (t) => {
  const { store, cluster } = setup();
  await store.putNode({ name: "b", peer: "b:7400", tls: false, apps: ["app"], sessions: 4, pid: 2, updatedAt: 0 }, 10_000);
  await cluster.beat();
  t.not(await store.getNode("a"), null);
  t.is(cluster.node("b")?.peer, "b:7400");
  t.true(cluster.storeAvailable);
});

test("Cluster.view() shows nodes alive, gone ones as not alive, with their session counts", async (t) => {
  const { clock, store, cluster, sessions } = setup();
  sessions.n = 2;
  await store.putNode({ name: "b", peer: "b:7400", tls: false, apps: ["app"], sessions: 4, pid: 2, updatedAt: 0 }, 1_500);
  await cluster.beat();
  t.deepEqual(cluster.view().nodes.map((n) => [n.name, n.alive, n.sessions, n.self]), [["a", true, 2, true], ["b", true, 4, false]]);
  clock.advance(2_000);
  await cluster.beat();
  t.deepEqual(cluster.view().nodes.map((n) => [n.name, n.alive]), [["a", true], ["b", false]]);
});

test("Cluster node TTL: three missed heartbeats and the node is gone", async (t) => {
  const { clock, store, cluster } = setup();
  await cluster.beat();
  clock.advance(cluster.nodeTtlMs - 1);
  t.not(await store.getNode("a"), null);
  clock.advance(1);
  t.is(await store.getNode("a"), null);
});

test("Cluster republishes pins on first contact and after every store outage, not otherwise", async (t) => {
  const { store, cluster, republished } = setup();
  await cluster.beat();
  t.is(republished(), 1, "first contact");
  await cluster.beat();
  t.is(republished(), 1, "nothing happened");
  store.down = true;
  await cluster.beat();
  t.false(cluster.storeAvailable, "the view says the store is down");
  t.is(republished(), 1);
  store.down = false;
  store.clearPins();
  await cluster.beat();
  t.true(cluster.storeAvailable);
  t.is(republished(), 2, "back after an outage: pins written again");
});

test("Cluster keeps its last view while the store is down and forgets a suspect node", async (t) => {
  const { store, cluster } = setup();
  await store.putNode({ name: "b", peer: "b:7400", tls: false, apps: [], sessions: 0, pid: 2, updatedAt: 0 }, 60_000);
  await cluster.beat();
  store.down = true;
  await cluster.beat();
  t.is(cluster.node("b")?.name, "b");
  cluster.suspect("b");
  t.is(cluster.node("b"), undefined);
  t.is(await cluster.lookup("b"), undefined, "the store is down: unknown");
  store.down = false;
  t.is((await cluster.lookup("b"))?.name, "b", "looked up again in the store");
});

test("Cluster.stop() unregisters the node", async (t) => {
  const { store, cluster } = setup();
  await cluster.start();
  t.not(await store.getNode("a"), null);
  await cluster.stop();
  t.is(await store.getNode("a"), null);
});
