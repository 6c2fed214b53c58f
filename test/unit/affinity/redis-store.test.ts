import test from "ava";
import { nodeKey, parseRedisUrl, pinKey, reconnectDelayMs } from "../../../core/src/affinity/redis-store.js";
import { parseNodeRecord, parsePinOwner } from "../../../core/src/affinity/store.js";

test("parseRedisUrl() reads redis://, rediss:// and unix: targets", (t) => {
  t.deepEqual(parseRedisUrl("redis://10.0.0.1:6380/2"), { host: "10.0.0.1", port: 6380, db: 2, tls: false });
  t.deepEqual(parseRedisUrl("redis://cache"), { host: "cache", port: 6379, db: 0, tls: false });
  t.deepEqual(parseRedisUrl("rediss://u:p%40ss@cache:6390/1"), { host: "cache", port: 6390, db: 1, tls: true, username: "u", password: "p@ss" });
  t.deepEqual(parseRedisUrl("unix:/run/redis/redis.sock"), { path: "/run/redis/redis.sock", db: 0, tls: false });
  t.deepEqual(parseRedisUrl("unix:///tmp/r.sock?db=3"), { path: "/tmp/r.sock", db: 3, tls: false });
  t.deepEqual(parseRedisUrl("redis://[::1]:7000"), { host: "::1", port: 7000, db: 0, tls: false });
});

test("parseRedisUrl() refuses other schemes and bad databases with a ConfigError naming the directive", (t) => {
  for (const bad of ["http://x", "cache:6379", "redis://x/abc", "unix:relative.sock"]) {
    const e = t.throws(() => parseRedisUrl(bad));
    t.regex(e?.message ?? "", /PassengerAffinityRedis/);
  }
});

test("pinKey() and nodeKey() follow the documented layout", (t) => {
  t.is(pinKey("/srv/app (production)", "42"), "ferry:aff:/srv/app (production):42");
  t.is(nodeKey("web1"), "ferry:node:web1");
});

test("reconnectDelayMs() backs off from 100 ms to at most 2 s", (t) => {
  t.is(reconnectDelayMs(1), 100);
  t.is(reconnectDelayMs(2), 200);
  t.is(reconnectDelayMs(50), 2_000);
});

test("parsePinOwner() and parseNodeRecord() reject malformed store values", (t) => {
  t.deepEqual(parsePinOwner('{"node":"a","pid":5}'), { node: "a", pid: 5 });
  for (const bad of [null, "", "{", "[]", '{"node":"","pid":1}', '{"node":"a","pid":-1}', '{"node":"a"}']) t.is(parsePinOwner(bad), null);
  const rec = { name: "a", peer: "h:1", tls: false, apps: ["x"], sessions: 2, pid: 3, updatedAt: 4 };
  t.deepEqual(parseNodeRecord(JSON.stringify(rec)), rec, "a record of an older core: no sites");
  const withSites = { ...rec, sites: { "site:s/ (production)": "s/" } };
  t.deepEqual(parseNodeRecord(JSON.stringify(withSites)), withSites);
  t.is(parseNodeRecord(JSON.stringify({ ...rec, apps: [1] })), null);
  t.is(parseNodeRecord(JSON.stringify({ ...rec, sessions: "2" })), null);
});
