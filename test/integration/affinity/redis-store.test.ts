/**
 * RedisAffinityStore against a real redis-server: the documented keys and
 * TTLs, the per-call budget when Redis is slow, fast failure and one log line
 * when it is down, one log line when it is back.
 */
import test from "ava";
import { PassThrough } from "node:stream";
import { pino } from "pino";
import { RedisAffinityStore } from "../../../core/src/affinity/redis-store.js";
import { AffinityUnavailableError } from "../../../core/src/affinity/store.js";
import { RedisServer, ping, redisCommand } from "../../helpers/redis.js";
import { waitFor } from "../../helpers/standalone.js";

const lines: string[] = [];
const logStream = new PassThrough();
logStream.on("data", (d: Buffer) => lines.push(...d.toString().split("\n").filter((l) => l !== "")));
const log = pino({ level: "info" }, logStream);

let redis: RedisServer;
let store: RedisAffinityStore;
test.before(async () => {
  redis = await RedisServer.start();
  // 300 ms: a healthy call on a loaded test machine fits; DEBUG SLEEP 1.5 s still exceeds it.
  store = new RedisAffinityStore({ url: redis.url, log, timeoutMs: 300 });
  await waitFor("the store to connect", async () => {
    try {
      await store.listNodes();
      return true;
    } catch {
      return undefined;
    }
  }, 10_000, 50);
});
test.after.always(async () => {
  await store?.close();
  await redis?.destroy();
});

function command(...args: string[]): Promise<string> {
  return redisCommand(redis.port, ...args);
}

test.serial("pins live under ferry:aff:<app>:<stickyId> with the TTL given", async (t) => {
  await store.pin("/srv/app (production)", "42", { node: "web1", pid: 123 }, 1_800_000);
  t.deepEqual(await store.getOwner("/srv/app (production)", "42"), { node: "web1", pid: 123 });
  t.is(await command("GET", "ferry:aff:/srv/app (production):42"), `$${'{"node":"web1","pid":123}'.length}\r\n{"node":"web1","pid":123}\r\n`);
  const pttl = Number(/^:(\d+)/.exec(await command("PTTL", "ferry:aff:/srv/app (production):42"))?.[1]);
  t.true(pttl > 1_790_000 && pttl <= 1_800_000, `PTTL ${pttl}`);
  await store.unpin("/srv/app (production)", "42", "web2");
  t.not(await store.getOwner("/srv/app (production)", "42"), null, "another node's unpin leaves it");
  await store.unpin("/srv/app (production)", "42", "web1");
  t.is(await store.getOwner("/srv/app (production)", "42"), null);
});

test.serial("nodes register under ferry:node:<name> with a TTL and expire", async (t) => {
  const rec = { name: "web1", peer: "127.0.0.1:7400", tls: false, apps: ["a"], sessions: 3, pid: 1, updatedAt: Date.now() };
  await store.putNode(rec, 300);
  t.deepEqual(await store.listNodes(), [rec]);
  t.deepEqual(await store.getNode("web1"), rec);
  await waitFor("the node key to expire", async () => ((await store.listNodes()).length === 0 ? true : undefined), 5_000, 50);
  t.is(await store.getNode("web1"), null);
});

test.serial("a slow Redis costs at most the budget per call, then calls fail fast until it answers again", async (t) => {
  const sleeping = command("DEBUG", "SLEEP", "1.5").catch(() => "");
  await waitFor("redis to be busy sleeping", async () => ((await ping(redis.port, 30)) ? undefined : true), 5_000, 10);
  const t0 = Date.now();
  await t.throwsAsync(() => store.getOwner("app", "1"), { instanceOf: AffinityUnavailableError });
  const took = Date.now() - t0;
  t.true(took < 1_000, `took ${took} ms`);
  const t1 = Date.now();
  await t.throwsAsync(() => store.getOwner("app", "1"), { instanceOf: AffinityUnavailableError });
  t.true(Date.now() - t1 < 20, "fails without a round trip while known down");
  t.is(store.available, false);
  t.regex(await sleeping, /^\+OK/);
  await waitFor("a background call to succeed", async () => {
    try {
      await store.listNodes();
      return true;
    } catch {
      return undefined;
    }
  }, 10_000, 100);
  t.is(store.available, true);
  t.is(lines.filter((l) => l.includes("Cannot use the Redis affinity store")).length, 1, "one line when it went down");
  t.is(lines.filter((l) => l.includes("reachable again")).length, 1, "one line when it came back");
});

test.serial("Redis down: calls fail within the budget, one more log line; back: restored", async (t) => {
  const downBefore = lines.filter((l) => l.includes("Cannot use the Redis affinity store")).length;
  await redis.stop();
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    await t.throwsAsync(() => store.listNodes(), { instanceOf: AffinityUnavailableError });
    t.true(Date.now() - t0 < 500);
  }
  t.is(lines.filter((l) => l.includes("Cannot use the Redis affinity store")).length, downBefore + 1);
  await redis.restart();
  await waitFor("the store to reconnect", async () => {
    try {
      await store.listNodes();
      return true;
    } catch {
      return undefined;
    }
  }, 15_000, 100);
  await store.pin("app", "9", { node: "n", pid: 1 }, 10_000);
  t.deepEqual(await store.getOwner("app", "9"), { node: "n", pid: 1 });
});
