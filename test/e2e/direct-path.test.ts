/**
 * End-to-end: mod_ferry's direct path (protocol v3, FERRY_DATA_PATH=direct)
 * through a real Apache, against test/fixtures/fake-core/v3-core.py, a
 * stand-in core that answers every head with a LEASE (an app connection
 * passed with SCM_RIGHTS, or "reuse" a held one) and logs each DONE. The
 * module alone speaks HTTP/1.1 to the app (test/fixtures/fake-core/app.js):
 * keep-alive cache, retry of stale kept connections, full duplex, spooling,
 * the 101 tunnel, PROCEED to the relay path; and, last (a pass serves every
 * later request of the app in that Apache child), passes (FERRY_PASS=on):
 * the stand-in grants one for URIs under /pass, with a long ttl, so the
 * module alone decides when it stops.
 */
import test from "ava";
import crypto from "node:crypto";
import { readFileSync } from "node:fs";
import { chmod, copyFile, mkdir, readFile, utimes, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { Readable } from "node:stream";
import { ApacheServer, REPO_ROOT, isAlive, makeTempRoot, processesUnder, started, stopAndRemove, waitFor } from "../helpers/apache.js";
import { request } from "../helpers/e2e-http.js";

let server: ApacheServer | undefined;
let root = "";
let restartFile = "";
const srv = (): ApacheServer => started(server);
const HOST = "direct.test";

interface Done {
  readonly id: string;
  readonly outcome: string;
  readonly status: number;
  readonly bytes_in: number;
  readonly bytes_out: number;
  readonly duration_us: number;
  readonly reusable: boolean;
}

async function jsonLines<T>(name: string): Promise<T[]> {
  try {
    const text = await readFile(path.join(srv().serverRoot, "run", `ferry-${await apachePid()}`, name), "utf8");
    return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as T);
  } catch {
    return [];
  }
}

async function apachePid(): Promise<string> {
  return (await readFile(path.join(srv().serverRoot, "run", "httpd.pid"), "utf8")).trim();
}

const dones = (): Promise<Done[]> => jsonLines<Done>("done.log");
const leases = (): Promise<Array<{ id: string; reuse: boolean; uri: string; held: string[] }>> => jsonLines("lease.log");

function sha256(b: Buffer): string {
  return crypto.createHash("sha256").update(b).digest("hex");
}

test.before(async () => {
  root = await makeTempRoot("e2e-direct");
  const fakeRoot = path.join(root, "fakeroot");
  await mkdir(path.join(fakeRoot, "build/core/src"), { recursive: true });
  await copyFile(path.join(REPO_ROOT, "test/fixtures/fake-core/v3-core.py"), path.join(fakeRoot, "build/core/src/main.js"));
  // The spool dir must be writable by Apache's children (User www-data).
  const spool = path.join(root, "spool");
  await mkdir(spool);
  await chmod(spool, 0o1777);
  const app = path.join(root, "app");
  await mkdir(path.join(app, "public"), { recursive: true });
  await mkdir(path.join(app, "tmp"), { recursive: true });
  restartFile = path.join(app, "tmp", "restart.txt");
  await writeFile(restartFile, "");
  await chmod(root, 0o755);
  await copyFile(path.join(REPO_ROOT, "test/fixtures/fake-core/app.js"), path.join(app, "app.mjs"));
  await copyFile(path.join(REPO_ROOT, "test/fixtures/fake-core/app.js"), path.join(app, "app.js"));
  // mod_ferry runs `<PassengerNodejs> <node flags> <script> --config <file>`:
  // the stand-in drops the node flags and runs the fake core with python3.
  const fakeNode = path.join(root, "fake-node");
  await writeFile(fakeNode, '#!/bin/sh\nwhile [ "${1#--}" != "$1" ]; do shift; done\nexec /usr/bin/python3 "$@"\n');
  await chmod(fakeNode, 0o755);
  server = await ApacheServer.start({
    root,
    passengerRoot: fakeRoot,
    // PassengerStatThrottleRate 0: a pass's restart.txt is stat'ed on every
    // request (by default once a second per child, as the core checks it).
    global: [`PassengerNodejs ${fakeNode}`, "PassengerResponseBufferHighWatermark 65536", `PassengerDataBufferDir "${spool}"`, "PassengerStatThrottleRate 0"],
    env: {
      FERRY_DATA_PATH: "direct",
      FAKE_NODE: process.execPath,
      FAKE_APP: path.join(app, "app.mjs"),
      // The app closes idle kept connections after 300 ms: well before the
      // module's 4 s cache idle limit, so kept connections go stale often.
      APP_KEEPALIVE_MS: "300",
      FERRY_PASS: "on",
      FAKE_RESTART_FILE: restartFile,
    },
    vhosts: [{ serverName: HOST, documentRoot: path.join(app, "public") }],
  });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(60));
});

test.serial("a GET is leased, answered by the app directly, and reported with DONE", async (t) => {
  const res = await request(srv().port, { path: "/hello?x=1", host: HOST });
  t.is(res.status, 200);
  t.regex(res.text, /^hello from \d+ GET \/hello\?x=1\n$/);
  t.is(res.headers["x-powered-by"], "FakeCore");
  t.is(res.headers["content-length"], String(res.body.length));
  t.is(res.headers["keep-alive"], undefined, "hop-by-hop headers from the app are dropped");
  const done = await waitFor(async () => (await dones()).find((d) => d.status === 200), { timeoutMs: 5000, what: "a DONE" });
  t.is(done.outcome, "ok");
  t.true(done.reusable);
  t.is(done.bytes_out, res.body.length);
});

test.serial("HEAD gets the headers without a body", async (t) => {
  const res = await request(srv().port, { path: "/hello", method: "HEAD", host: HOST });
  t.is(res.status, 200);
  t.is(res.body.length, 0);
});

test.serial("kept app connections are offered as held and reused", async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 5; i++) {
      const res = await new Promise<number>((resolve, reject) => {
        http.get({ host: "127.0.0.1", port: srv().port, path: `/hello?n=${i}`, headers: { Host: HOST }, agent }, (r) => {
          r.resume();
          r.on("end", () => resolve(r.statusCode ?? 0));
        }).on("error", reject);
      });
      t.is(res, 200);
    }
  } finally {
    agent.destroy();
  }
  const mine = (await leases()).filter((l) => l.uri.startsWith("/hello?n="));
  t.is(mine.length, 5);
  t.true(mine.some((l) => l.reuse), `no lease reused a kept connection: ${JSON.stringify(mine)}`);
});

test.serial("8 MB echoed while it is read: request and response both sha256-exact", async (t) => {
  const body = crypto.randomBytes(8 * 1024 * 1024);
  const res = await request(srv().port, { path: "/echo", method: "POST", host: HOST, body, timeoutMs: 60_000 });
  t.is(res.status, 200);
  t.is(res.body.length, body.length);
  t.is(sha256(res.body), sha256(body));
  const done = await waitFor(async () => (await dones()).find((d) => d.bytes_in === body.length), { timeoutMs: 5000, what: "the echo's DONE" });
  t.is(done.bytes_out, body.length);
  t.is(done.outcome, "ok");
});

test.serial("a chunked upload of unknown length is echoed exact (sent chunked to the app)", async (t) => {
  const parts = Array.from({ length: 40 }, () => crypto.randomBytes(50_000));
  const res = await request(srv().port, { path: "/echo", method: "PUT", host: HOST, body: Readable.from(parts), timeoutMs: 60_000 });
  t.is(res.status, 200);
  t.is(sha256(res.body), sha256(Buffer.concat(parts)));
});

test.serial("a slow client downloading 50 MB holds Apache's memory bounded", async (t) => {
  // Apache's processes only (the stand-in core and the app are not ours).
  const pids = processesUnder(srv().serverRoot).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "apache2";
    } catch {
      return false;
    }
  });
  const rss = (): number => pids.reduce((sum, pid) => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return sum + (m ? Number(m[1]) * 1024 : 0);
    } catch {
      return sum;
    }
  }, 0);
  const before = rss();
  let peak = before;
  let got = 0;
  const hash = crypto.createHash("sha256");
  await new Promise<void>((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port: srv().port, path: "/big?mb=50", headers: { Host: HOST }, agent: false }, (res) => {
      res.on("data", (c: Buffer) => {
        got += c.length;
        hash.update(c);
        // Slow: a pause every 4 MiB lets the app run ahead of the client.
        if (got % (4 * 1024 * 1024) < c.length) {
          res.pause();
          peak = Math.max(peak, rss());
          setTimeout(() => res.resume(), 300);
        }
      });
      res.on("end", resolve);
      res.on("error", reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error("download timed out")));
    req.on("error", reject);
  });
  t.is(got, 50 * 1024 * 1024);
  const block = Buffer.alloc(64 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = i % 251;
  const expect = crypto.createHash("sha256");
  for (let i = 0; i < 800; i++) expect.update(block);
  t.is(hash.digest("hex"), expect.digest("hex"));
  t.log(`Apache RSS: ${(before / 1048576).toFixed(1)} MB before, peak ${(peak / 1048576).toFixed(1)} MB`);
  t.true(peak - before < 32 * 1024 * 1024, `Apache grew by ${((peak - before) / 1048576).toFixed(1)} MB`);
});

test.serial("the app closing idle kept connections costs no request: zero 502s in a loop", async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const statuses: number[] = [];
  try {
    for (let i = 0; i < 40; i++) {
      // Around the app's 300 ms keep-alive timeout, so kept connections die
      // between requests.
      await new Promise((r) => setTimeout(r, (i * 37) % 500));
      statuses.push(await new Promise<number>((resolve, reject) => {
        http.get({ host: "127.0.0.1", port: srv().port, path: `/hello?loop=${i}`, headers: { Host: HOST }, agent }, (r) => {
          r.resume();
          r.on("end", () => resolve(r.statusCode ?? 0));
        }).on("error", reject);
      }));
    }
  } finally {
    agent.destroy();
  }
  t.deepEqual(statuses.filter((s) => s !== 200), []);
});

test.serial("an app that exits right after each answer costs no request (stale retry)", async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const statuses: number[] = [];
  try {
    for (let i = 0; i < 12; i++) {
      const path1 = i % 2 === 0 ? `/exit-after?i=${i}` : `/hello?after-exit=${i}`;
      statuses.push(await new Promise<number>((resolve, reject) => {
        http.get({ host: "127.0.0.1", port: srv().port, path: path1, headers: { Host: HOST }, agent }, (r) => {
          r.resume();
          r.on("end", () => resolve(r.statusCode ?? 0));
        }).on("error", reject);
      }));
    }
  } finally {
    agent.destroy();
  }
  t.deepEqual(statuses, Array.from({ length: 12 }, () => 200));
});

test.serial("a WebSocket-style upgrade tunnels straight to the app after the 101", async (t) => {
  const sock = net.connect(srv().port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  sock.write(`GET /ws HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
  let buf = Buffer.alloc(0);
  const until = async (pred: (b: Buffer) => boolean): Promise<void> => {
    await waitFor(() => pred(buf), { timeoutMs: 10_000, what: "tunnel bytes" });
  };
  sock.on("data", (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
  });
  await until((b) => b.includes("\r\n\r\n"));
  t.regex(buf.toString("latin1"), /^HTTP\/1\.1 101 /);
  buf = buf.subarray(buf.indexOf("\r\n\r\n") + 4);
  sock.write("ping-1");
  await until((b) => b.toString() === "ping-1");
  sock.end();
  await new Promise((r) => sock.once("close", r));
  const done = await waitFor(async () => (await dones()).find((d) => d.status === 101), { timeoutMs: 10_000, what: "the tunnel's DONE" });
  t.is(done.outcome, "ok");
  t.false(done.reusable);
  t.is(done.bytes_in, 6);
});

test.serial("PROCEED: the request continues as a v2 exchange relayed by the core", async (t) => {
  const res = await request(srv().port, { path: "/proceed/x", method: "POST", host: HOST, body: Buffer.from("abc") });
  t.is(res.status, 200);
  t.is(res.headers["x-path"], "relay");
  t.is(res.text, "relayed POST /proceed/x (3 body bytes)\n");
});

// ---- Passes (last: a pass serves every later request of the app) ---------

interface PassReply {
  readonly status: number;
  readonly pid: number;
  readonly pass: string | null;
  readonly rawHeaders: readonly string[];
}

function passGet(agent: http.Agent, reqPath: string, headers: Record<string, string> = {}): Promise<PassReply> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port: srv().port, path: reqPath, headers: { Host: HOST, ...headers }, agent }, (r) => {
      const chunks: Buffer[] = [];
      r.on("data", (c: Buffer) => chunks.push(c));
      r.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (r.statusCode !== 200) {
          resolve({ status: r.statusCode ?? 0, pid: 0, pass: null, rawHeaders: [] });
          return;
        }
        const v = JSON.parse(text) as { pid: number; pass: string | null; rawHeaders: string[] };
        resolve({ status: 200, pid: v.pid, pass: v.pass, rawHeaders: v.rawHeaders });
      });
    }).on("error", reject);
  });
}

const leasedUris = async (): Promise<string[]> => (await leases()).map((l) => l.uri);

test.serial("passes: after a LEASE with a pass, the app's next requests go straight to it (marked, no head to the core, no DONE)", async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await passGet(agent, "/pass/1");
    t.is(first.status, 200);
    t.is(first.pass, null, "a leased request carries no marker");
    // Every LEASE so far (this file's earlier tests and /pass/1) has had its DONE: none is still on its way.
    await waitFor(async () => {
      const [d, l] = await Promise.all([dones(), leases()]);
      return l.length > 0 && d.length >= l.length;
    }, { timeoutMs: 5000, what: "a DONE for every LEASE" });
    const donesBefore = (await dones()).length;
    for (let i = 2; i <= 6; i++) {
      const r = await passGet(agent, `/pass/${i}`, i === 6 ? { "X-Ferry-Pass": "forged" } : {});
      t.is(r.status, 200);
      t.is(r.pass, "1", `request ${i} went on the pass, marked`);
      t.is(r.pid, first.pid);
    }
    const seen = await leasedUris();
    t.true(seen.includes("/pass/1"));
    t.deepEqual(seen.filter((u) => /^\/pass\/[2-6]$/.test(u)), [], "no head reached the core");
    await new Promise((r) => setTimeout(r, 300)); // a DONE would have arrived by now
    t.is((await dones()).length, donesBefore, "no DONE for requests on a pass");
  } finally {
    agent.destroy();
  }
});

test.serial("passes: a touched restart file sends the next request to the core, which grants a new pass", async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    t.is((await passGet(agent, "/pass/a")).status, 200);
    const onPass = await passGet(agent, "/pass/b");
    t.is(onPass.pass, "1");
    const later = new Date(Date.now() + 5000);
    await utimes(restartFile, later, later);
    const r = await passGet(agent, "/pass/after-touch");
    t.is(r.status, 200);
    t.is(r.pass, null, "the first request after the touch was leased");
    t.true((await leasedUris()).includes("/pass/after-touch"));
    const again = await passGet(agent, "/pass/again");
    t.is(again.pass, "1", "the new LEASE brought a pass with the new mtime");
    t.false((await leasedUris()).includes("/pass/again"));
  } finally {
    agent.destroy();
  }
});

test.serial("passes: the pass's process exits: the next request goes through the core, no 502", async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const a = await passGet(agent, "/pass/k1");
    t.is((await passGet(agent, "/pass/k2")).pass, "1");
    // On the pass too: the app answers, stops listening and exits.
    const bye = await new Promise<number>((resolve, reject) => {
      http.get({ host: "127.0.0.1", port: srv().port, path: "/exit-after?pass", headers: { Host: HOST }, agent }, (r) => {
        r.resume();
        r.on("end", () => resolve(r.statusCode ?? 0));
      }).on("error", reject);
    });
    t.is(bye, 200);
    await waitFor(() => (isAlive(a.pid) ? undefined : true), { timeoutMs: 10_000, what: "the app process to exit" });
    const statuses: number[] = [];
    let pid = 0;
    for (let i = 0; i < 5; i++) {
      const r = await passGet(agent, `/pass/k-after-${i}`);
      statuses.push(r.status);
      pid = r.pid;
    }
    t.deepEqual(statuses, [200, 200, 200, 200, 200]);
    t.not(pid, a.pid);
    t.true((await leasedUris()).includes("/pass/k-after-0"), "the first request after the exit asked the core");
  } finally {
    agent.destroy();
  }
});
