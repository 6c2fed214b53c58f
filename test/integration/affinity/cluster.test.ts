/**
 * Shared session affinity across three Ferry hosts (issue 6): three real
 * `ferry start` cores on distinct 127.0.0.1 ports with distinct node names,
 * one real redis-server, the affinity-counter app. A client sends each
 * request of a session to a random host; every request must reach the same
 * app process (pid + the process's own per-session counter). WebSockets too.
 * Redis going away fails no request; its return restores shared affinity.
 * A forged forward is refused. Killing the owning host re-pins its sessions.
 */
import test from "ava";
import { promises as fsp } from "node:fs";
import net from "node:net";
import path from "node:path";
import WebSocket from "ws";
import { ClientSession, cookieId, startHost, adminStatus, writeSecret, type Host } from "../../helpers/affinity-cluster.js";
import { RedisServer, redisGet } from "../../helpers/redis.js";
import { FIXTURE_APPS, makeTmp, pidGone, waitFor } from "../../helpers/standalone.js";

let redis: RedisServer;
let tmp = "";
let hosts: Host[] = [];
const appPids = new Set<number>();

test.before(async () => {
  redis = await RedisServer.start();
  tmp = await makeTmp("ferry-affinity");
  // Served from the fixture dir (the app needs `ws` from the repository's node_modules).
  const appDir = path.join(FIXTURE_APPS, "affinity-counter");
  const secretFile = await writeSecret(tmp);
  hosts = await Promise.all(["h1", "h2", "h3"].map((name) => startHost({ appDir, tmp, name, redisUrl: redis.url, secretFile })));
  await waitFor("all three nodes registered in Redis", async () => {
    for (const h of hosts) if ((await redisGet(redis.port, `ferry:node:${h.name}`)) === undefined) return undefined;
    return true;
  }, 20_000);
});

test.after.always(async () => {
  for (const h of hosts) if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill("SIGTERM");
  await Promise.all(hosts.map((h) => Promise.race([h.exited, new Promise((r) => setTimeout(r, 10_000))])));
  for (const h of hosts) if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill("SIGKILL");
  for (const pid of appPids) if (!pidGone(pid)) process.kill(pid, "SIGKILL");
  await redis?.destroy();
  if (tmp !== "") await fsp.rm(tmp, { recursive: true, force: true });
});

function live(): Host[] {
  return hosts.filter((h) => h.child.exitCode === null && h.child.signalCode === null);
}

function randomHost(except?: Host): Host {
  const pool = live().filter((h) => h !== except);
  const h = pool[Math.floor(Math.random() * pool.length)];
  if (h === undefined) throw new Error("no live host");
  return h;
}

function dump(): string {
  return hosts.map((h) => `--- ${h.name}\n${h.log().slice(-1500)}\n${h.stderr().slice(-500)}`).join("\n");
}

test.serial("every request of a session reaches the same app process, whichever host gets it", async (t) => {
  const sessions = Array.from({ length: 6 }, (_, i) => new ClientSession(`s${i}-${Date.now()}`));
  for (const s of sessions) {
    const first = await s.hit(randomHost());
    if (first.status !== 200) t.fail(`first request: ${first.status}\n${dump()}`);
    t.not(s.cookie, undefined, "the first answer pins the session with a cookie");
    appPids.add(first.pid);
    const cookie = s.cookie;
    const seenHosts = new Set<string>([first.host]);
    for (let n = 2; n <= 12; n++) {
      const h = await s.hit(randomHost());
      seenHosts.add(h.host);
      t.is(h.status, 200);
      if (h.pid !== first.pid) t.fail(`request ${n} of ${s.id} (via ${h.host}) reached ${h.pid}, not ${first.pid}\n${dump()}`);
      t.is(h.count, n, `the process's own counter for ${s.id} continues`);
    }
    t.is(s.cookie, cookie, "the cookie never changed");
    t.true(seenHosts.size >= 2, "the session crossed hosts");
  }
});

test.serial("the admin API's status shows the cluster: every node, alive, with the sessions it owns", async (t) => {
  const h = hosts[0];
  if (h === undefined) throw new Error("no host");
  t.is((await new ClientSession(`status-${Date.now()}`).hit(h)).status, 200, "a session pinned on h1");
  type View = { node: string; storeAvailable: boolean; nodes: Array<{ name: string; alive: boolean; sessions: number; self: boolean }> };
  // The view is refreshed by each heartbeat (every 2 s): a host that registered after
  // h1's last beat shows up on the next one.
  const cluster = await waitFor("the cluster view to list all three hosts", async () => {
    const v = (await adminStatus(h))["cluster"] as View;
    return v.nodes.length === 3 ? v : undefined;
  }, 10_000);
  t.is(cluster.node, "h1");
  t.true(cluster.storeAvailable);
  t.deepEqual(cluster.nodes.map((n) => [n.name, n.alive, n.self]), [["h1", true, true], ["h2", true, false], ["h3", true, false]]);
  t.true(cluster.nodes.some((n) => n.self && n.sessions >= 1), "this node owns the sessions it pinned");
});

test.serial("a request body crosses the hop intact", async (t) => {
  const s = new ClientSession(`body-${Date.now()}`);
  const owner = hosts[0];
  if (owner === undefined) throw new Error("no host");
  const first = await s.hit(owner);
  const other = randomHost(owner);
  const body = Buffer.alloc(300_000, 7);
  const r = await s.hit(other, { method: "POST", body });
  t.is(r.status, 200);
  t.is(r.pid, first.pid);
  t.is(r.count, 2);
});

test.serial("a WebSocket of the session reaches the same process through another host", async (t) => {
  const s = new ClientSession(`ws-${Date.now()}`);
  const owner = randomHost();
  const first = await s.hit(owner);
  t.is(first.status, 200);
  const via = randomHost(owner);
  const ws = new WebSocket(`ws://127.0.0.1:${via.port}/ws?s=${s.id}`, { headers: { Cookie: s.cookie ?? "" }, handshakeTimeout: 20_000 });
  const replies: Array<{ pid: number; count: number; echo: string }> = [];
  const got = new Promise<void>((resolve, reject) => {
    ws.on("message", (d: WebSocket.RawData) => {
      replies.push(JSON.parse(d.toString()) as { pid: number; count: number; echo: string });
      if (replies.length === 3) resolve();
      else ws.send(`m${replies.length + 1}`);
    });
    ws.on("error", reject);
    ws.on("open", () => ws.send("m1"));
  });
  await Promise.race([got, new Promise((_, reject) => setTimeout(() => reject(new Error("no WebSocket replies within 20 s")), 20_000))]);
  ws.close();
  t.deepEqual(replies.map((r) => r.pid), [first.pid, first.pid, first.pid]);
  t.deepEqual(replies.map((r) => r.count), [2, 3, 4]);
  t.deepEqual(replies.map((r) => r.echo), ["m1", "m2", "m3"]);
  const after = await s.hit(randomHost());
  t.is(after.pid, first.pid);
  t.is(after.count, 5);
});

test.serial("an unauthenticated or wrongly signed forward to a host's peer port is refused", async (t) => {
  const target = hosts[1];
  if (target === undefined) throw new Error("no host");
  const rec = JSON.parse((await redisGet(redis.port, `ferry:node:${target.name}`)) ?? "{}") as { peer?: string };
  const [host, port] = (rec.peer ?? "").split(":");
  const send = (text: string): Promise<string> => new Promise((resolve, reject) => {
    const sock = net.connect({ host: host ?? "127.0.0.1", port: Number(port) });
    let out = "";
    sock.on("data", (d: Buffer) => { out += d.toString(); });
    sock.on("close", () => resolve(out));
    sock.on("error", reject);
    sock.setTimeout(10_000, () => sock.destroy());
    sock.write(text);
  });
  const unsigned = await send("GET /hit?s=x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  t.regex(unsigned, /^HTTP\/1\.1 403 /);
  const forged = await send("GET /hit?s=x HTTP/1.1\r\nHost: a\r\nX-Ferry-Peer-Meta: eyJmcm9tIjoieCJ9\r\n" +
    `X-Ferry-Peer-Signature: ${"ab".repeat(32)}\r\nConnection: close\r\n\r\n`);
  t.regex(forged, /^HTTP\/1\.1 403 /);
  t.false(/"count"/.test(unsigned + forged), "the app never answered");
  await waitFor("the refusals in the host's log", () => (target.log().match(/Refusing forwarded request/g)?.length ?? 0) >= 2 ? true : undefined, 10_000);
  t.pass();
});

test.serial("Redis stopping fails no request; its return restores shared affinity", async (t) => {
  const before = Array.from({ length: 3 }, (_, i) => new ClientSession(`pre-${i}-${Date.now()}`));
  for (const s of before) appPids.add((await s.hit(randomHost())).pid);

  await redis.stop();
  let failed = 0;
  for (let round = 0; round < 8; round++) {
    for (const s of before) {
      const h = await s.hit(randomHost());
      if (h.status !== 200) failed++;
      appPids.add(h.pid);
    }
  }
  const fresh = new ClientSession(`during-${Date.now()}`);
  for (let i = 0; i < 5; i++) if ((await fresh.hit(randomHost())).status !== 200) failed++;
  t.is(failed, 0, "no request failed while Redis was down");
  await waitFor("each host to log the fallback once", () => live().every((h) => /local-only/.test(h.log())) ? true : undefined, 15_000);

  await redis.restart();
  await waitFor("all nodes registered again, each logging it", async () => {
    for (const h of live()) if ((await redisGet(redis.port, `ferry:node:${h.name}`)) === undefined) return undefined;
    // A node registers before its log line about it reaches the log file.
    return live().every((h) => /shared session affinity restored/.test(h.log())) ? true : undefined;
  }, 20_000);
  for (const h of live()) {
    t.is(h.log().match(/local-only/g)?.length, 1, `${h.name} logged the outage once`);
    t.regex(h.log(), /shared session affinity restored/);
  }
  // Sessions served during the outage were pinned again when Redis came back (republish) …
  const s0 = before[0];
  if (s0 === undefined) throw new Error("no session");
  const ref = await s0.hit(randomHost());
  for (let i = 0; i < 8; i++) t.is((await s0.hit(randomHost())).pid, ref.pid, "a session from before the outage sticks again");
  // … and new sessions are shared again.
  const after = new ClientSession(`after-${Date.now()}`);
  const first = await after.hit(randomHost());
  for (let n = 2; n <= 10; n++) {
    const h = await after.hit(randomHost());
    if (h.pid !== first.pid) t.fail(`request ${n} after Redis returned reached ${h.pid}, not ${first.pid}\n${dump()}`);
    t.is(h.count, n);
  }
});

test.serial("Redis paused (SIGSTOP) under load fails no request and holds none longer than its budget; it resumes on SIGCONT", async (t) => {
  const pid = redis.pid;
  if (pid === undefined) throw new Error("no redis-server process");
  const sessions = Array.from({ length: 3 }, (_, i) => new ClientSession(`stop-${i}-${Date.now()}`));
  for (const s of sessions) appPids.add((await s.hit(randomHost())).pid);
  process.kill(pid, "SIGSTOP");
  let failed = 0;
  let slowest = 0;
  let served = 0;
  try {
    const until = Date.now() + 3_000;
    await Promise.all(sessions.map(async (s) => {
      while (Date.now() < until) {
        const t0 = Date.now();
        const h = await s.hit(randomHost());
        slowest = Math.max(slowest, Date.now() - t0);
        if (h.status !== 200) failed++;
        else served++;
        appPids.add(h.pid);
      }
    }));
  } finally {
    process.kill(pid, "SIGCONT");
  }
  t.log(`Redis paused 3 s: ${served} requests served, ${failed} failed, slowest ${slowest} ms`);
  t.is(failed, 0, "no request failed while Redis was paused");
  t.true(served >= 6, `requests kept flowing (${served})`);
  t.true(slowest < 5_000, `no request waited on the paused Redis (slowest ${slowest} ms)`);
  // Every host that saw the outage sees Redis back before the next test relies on it.
  const count = (h: Host, re: RegExp): number => h.log().match(re)?.length ?? 0;
  await waitFor("each host to see Redis back", () =>
    live().every((h) => count(h, /local-only/g) <= count(h, /shared session affinity restored/g)) ? true : undefined, 20_000);
  await waitFor("each host to see every host alive again", async () => {
    for (const h of live()) {
      const c = (await adminStatus(h))["cluster"] as { nodes?: Array<{ alive?: boolean }> } | undefined;
      if ((c?.nodes ?? []).filter((n) => n.alive === true).length < live().length) return undefined;
    }
    return true;
  }, 20_000);
});

test.serial("killing the owning host re-pins its sessions elsewhere on the next request", async (t) => {
  const owner = hosts[2];
  if (owner === undefined) throw new Error("no host");
  const s = new ClientSession(`kill-${Date.now()}`);
  const first = await s.hit(owner);
  t.is(first.status, 200);
  appPids.add(first.pid);
  const via = randomHost(owner);
  t.is((await s.hit(via)).pid, first.pid, "forwarded to the owner while it lives");
  const oldCookie = s.cookie;

  owner.child.kill("SIGKILL");
  await owner.exited;
  const next = await s.hit(randomHost());
  if (next.status !== 200) t.fail(`after the kill: ${next.status}\n${dump()}`);
  appPids.add(next.pid);
  t.not(next.pid, first.pid);
  t.not(next.setCookie, undefined, "a new cookie");
  t.not(cookieId(next.setCookie), cookieId(`x=${(oldCookie ?? "").split("=")[1] ?? ""}`));
  t.is(next.count, 1, "a new process: its counter starts again");
  for (let n = 2; n <= 8; n++) {
    const h = await s.hit(randomHost());
    t.is(h.status, 200);
    t.is(h.pid, next.pid, "the re-pinned session sticks to its new process");
  }
});

test("ferry start refuses shared affinity without a secret file", async (t) => {
  const { spawn } = await import("node:child_process");
  const { BIN } = await import("../../helpers/affinity-cluster.js");
  const child = spawn(process.execPath, [BIN, "start", path.join(FIXTURE_APPS, "affinity-counter"), "--port", "0",
    "--instance-registry-dir", path.join(tmp, "reg-nosecret"), "--affinity-redis", redis.url], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d: Buffer) => { err += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  t.is(code, 1);
  t.regex(err, /PassengerAffinitySecretFile is required/);
});
