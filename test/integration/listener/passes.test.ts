/**
 * Passes (docs/protocol.md "Passes") against a real core process and real app
 * processes: a head asking for one gets a LEASE with a pass when the grant
 * rules hold and none otherwise; a request sent with the pass over the held
 * app connection reaches the app without its marker, is counted by the
 * loader and shows in `ferry status` (processed, directRequests), and a
 * leased request is never counted twice.
 */
import test from "ava";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fetchStatus, readInstance } from "../../../core/src/control/client.js";
import type { GroupStatus, PoolStatus } from "../../../core/src/control/status.js";
import { PASS_TTL_MS, type DoneReport, type Lease } from "../../../core/src/protocol/frames.js";
import { requestHeadMap } from "../../helpers/frame-client.js";
import { LeaseClient, httpOverSocket } from "../../helpers/lease-client.js";
import { startCoreProcess, until, type RunningCore } from "../../helpers/core-process.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "ferry-passes-"));
chmodSync(tmp, 0o755);
const cores: RunningCore[] = [];
const sockets: Array<{ destroy(): void }> = [];
let seq = 0;

test.after.always(() => {
  for (const s of sockets) s.destroy();
  for (const c of cores) c.kill();
  rmSync(tmp, { recursive: true, force: true });
});

/** An app answering with the headers it saw (JSON), in its own directory (restart.txt is per test). */
function app(name: string): string {
  const root = path.join(tmp, name);
  mkdirSync(path.join(root, "tmp"), { recursive: true });
  chmodSync(root, 0o755);
  writeFileSync(path.join(root, "app.js"), `
const http = require("http");
http.createServer((req, res) => {
  const body = JSON.stringify({ pid: process.pid, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders });
  res.writeHead(req.url === "/teapot" ? 418 : 200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}).listen(process.env.PORT || 3000);
`, { mode: 0o644 });
  return root;
}

async function core(): Promise<RunningCore> {
  const c = await startCoreProcess(path.join(tmp, `inst${seq++}`));
  cores.push(c);
  return c;
}

async function client(c: RunningCore): Promise<LeaseClient> {
  const l = await LeaseClient.connect(c.moduleSocket);
  sockets.push(l);
  return l;
}

function done(lease: Lease, over: Partial<DoneReport> = {}): DoneReport {
  return { id: lease.id, outcome: "ok", status: 200, bytesIn: 0, bytesOut: 10, durationUs: 100, reusable: true, ...over };
}

async function leaseOf(l: LeaseClient): Promise<{ lease: Lease; fd: number }> {
  const got = await l.next();
  if (got?.frame.kind !== "lease") throw new Error(`Cannot take a lease: got ${got?.frame.kind ?? "EOF"}`);
  return { lease: got.frame.lease, fd: got.fd };
}

function appSocket(fd: number): net.Socket {
  const s = new net.Socket({ fd, readable: true, writable: true });
  sockets.push(s);
  return s;
}

async function status(c: RunningCore): Promise<PoolStatus> {
  const inst = await readInstance(c.dir);
  if (inst === undefined) throw new Error("Cannot read the core's instance");
  return fetchStatus(inst);
}

async function group(c: RunningCore): Promise<GroupStatus> {
  const s = await status(c);
  const g = s.groups[0];
  if (g === undefined) throw new Error("Cannot find the app's group in the status");
  return g;
}

/** The head the module would write with a pass: the LEASE's head with `X-Ferry-Pass: 1` as the last header. */
function passHead(lease: Lease, uri: string): Buffer {
  const text = Buffer.from(lease.head).toString("latin1").replace(/^GET \S+ /, `GET ${uri} `);
  return Buffer.from(`${text.slice(0, -2)}X-Ferry-Pass: 1\r\n\r\n`, "latin1");
}

function bodyOf(answer: string): { pid: number; url: string; headers: Record<string, string>; rawHeaders: string[] } {
  return JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as { pid: number; url: string; headers: Record<string, string>; rawHeaders: string[] };
}

const TWO = { max_instances_per_app: 2, min_instances: 2 };

test.serial("a head with pass: true gets a LEASE with a pass; pass requests are unmarked, counted by the loader and shown in status", async (t) => {
  t.timeout(90_000);
  const root = app("granted");
  const c = await core();
  const l = await client(c);
  // Two processes, so the pass names both: the first LEASE starts the group, then wait for the second.
  l.sendHead(requestHeadMap({ v: 3, uri: "/first", held: [], pass: true }, { app_root: root, ...TWO }));
  const first = await leaseOf(l);
  let sock = appSocket(first.fd);
  t.is(bodyOf(await httpOverSocket(sock, first.lease.head)).url, "/first");
  l.sendDone(done(first.lease));
  await until(async () => (await group(c)).processes.filter((p) => p.state === "ready").length === 2, "two ready processes", 30_000);
  l.sendHead(requestHeadMap({ v: 3, uri: "/second", held: [first.lease.id], pass: true }, { app_root: root, ...TWO }));
  const got = await leaseOf(l);
  if (!got.lease.reuse) sock = appSocket(got.fd); // the other process was chosen: a new connection
  t.is(bodyOf(await httpOverSocket(sock, got.lease.head)).url, "/second");
  l.sendDone(done(got.lease));
  t.is(got.lease.pass?.procs.length, 2);
  const pass = got.lease.pass;
  if (pass === undefined) return t.fail("no pass");
  t.is(pass.ttlMs, PASS_TTL_MS);
  t.is(pass.procs[0], got.lease.id, "the lease's own process first");
  t.is(pass.restartFile, path.join(root, "tmp", "restart.txt"));
  t.is(pass.restartMtimeNs, -1n, "restart.txt absent");

  const before = await group(c);
  t.is(before.leases, 2);
  t.is(before.passes, 2, "both LEASEs carried a pass");
  const processedBefore = before.processes.reduce((n, p) => n + p.processed, 0);

  // Three requests with the pass over the held connection: the module's part, without the core.
  for (const uri of ["/p1", "/p2", "/teapot"]) {
    const b = bodyOf(await httpOverSocket(sock, passHead(got.lease, uri)));
    t.is(b.url, uri);
    t.is(b.headers["x-ferry-pass"], undefined, "the app does not see the marker");
    t.false(b.rawHeaders.some((h) => h.toLowerCase() === "x-ferry-pass"));
    t.is(b.headers["x-forwarded-proto"], "http");
  }
  await until(async () => (await group(c)).directRequests >= 3, "the loader's report of 3 pass requests", 10_000);
  const after = await group(c);
  t.is(after.directRequests, 3);
  t.is(after.processes.reduce((n, p) => n + p.processed, 0), processedBefore + 3, "processed includes the pass requests");
  t.is(after.leases, before.leases, "no LEASE for them");
  t.is(after.processes.reduce((n, p) => n + p.inFlight, 0), 0, "nothing left in flight");
});

test.serial("a head without pass gets a LEASE without one; a leased request whose client sent X-Ferry-Pass is counted once", async (t) => {
  t.timeout(60_000);
  const root = app("plain");
  const c = await core();
  const l = await client(c);
  l.sendHead(requestHeadMap({ v: 3, uri: "/a", held: [], headers: ["Host", "localhost", "X-Ferry-Pass", "1"] }, { app_root: root, min_instances: 1 }));
  const { lease, fd } = await leaseOf(l);
  t.is(lease.pass, undefined);
  t.notRegex(Buffer.from(lease.head).toString("latin1"), /x-ferry-pass/i, "the core's head drops a client's marker");
  const b = bodyOf(await httpOverSocket(appSocket(fd), lease.head));
  t.is(b.headers["x-ferry-pass"], undefined);
  l.sendDone(done(lease));
  await until(async () => (await group(c)).processes.some((p) => p.processed === 1), "the leased request counted", 10_000);
  // Give a (wrong) loader report time to arrive: the request must not be counted again.
  await new Promise((r) => setTimeout(r, 300));
  const g = await group(c);
  t.is(g.processes.reduce((n, p) => n + p.processed, 0), 1);
  t.is(g.directRequests, 0);
  t.is(g.leases, 1);
  t.is(g.passes, 0);
});

test.serial("an app with sticky sessions: a head with pass_sticky gets a pass naming each process's sticky id and cookies", async (t) => {
  t.timeout(90_000);
  const root = app("sticky");
  const c = await core();
  const l = await client(c);
  const opts = { app_root: root, ...TWO, sticky_sessions: true };
  l.sendHead(requestHeadMap({ v: 3, uri: "/first", held: [], pass: true, pass_sticky: true }, opts));
  const first = await leaseOf(l);
  appSocket(first.fd).destroy();
  l.sendDone(done(first.lease, { reusable: false }));
  await until(async () => (await group(c)).processes.filter((p) => p.state === "ready").length === 2, "two ready processes", 30_000);
  l.sendHead(requestHeadMap({ v: 3, uri: "/second", held: [], pass: true, pass_sticky: true }, opts));
  const got = await leaseOf(l);
  appSocket(got.fd).destroy();
  l.sendDone(done(got.lease, { reusable: false }));
  const sticky = got.lease.pass?.sticky;
  if (sticky === undefined) return t.fail("no sticky pass");
  t.is(sticky.cookie, "_passenger_route");
  const g = await group(c);
  const byPid = new Map(g.processes.map((p) => [p.pid, p.stickyId]));
  t.is(sticky.ids.length, 2);
  t.is(sticky.ids[0], byPid.get(got.lease.pid), "the leased process first, with its sticky id");
  t.deepEqual([...sticky.ids].sort(), [...byPid.values()].sort());
  // The leased response's own cookie is the one the pass names for that process.
  const own = got.lease.addHeaders[got.lease.addHeaders.indexOf("Set-Cookie") + 1];
  t.is(sticky.setCookie[0], own);
  t.is(sticky.setCookieHttps[0], `${own}; Secure`);
  t.deepEqual(sticky.addHeaders, got.lease.addHeaders.slice(0, 2), "X-Powered-By, no cookie");
  t.is(sticky.addHeaders[0], "X-Powered-By");

  // The same app with a head that cannot route by the cookie: no pass.
  l.sendHead(requestHeadMap({ v: 3, uri: "/third", held: [], pass: true }, opts));
  const plain = await leaseOf(l);
  if (plain.fd >= 0) appSocket(plain.fd).destroy();
  l.sendDone(done(plain.lease, { reusable: false }));
  t.is(plain.lease.pass, undefined);
});

test.serial("restart_mtime is restart.txt's mtime in ns as the core saw it", async (t) => {
  t.timeout(60_000);
  const root = app("mtime");
  const file = path.join(root, "tmp", "restart.txt");
  writeFileSync(file, "");
  const c = await core();
  const l = await client(c);
  l.sendHead(requestHeadMap({ v: 3, held: [], pass: true }, { app_root: root, min_instances: 1 }));
  const { lease, fd } = await leaseOf(l);
  appSocket(fd).destroy();
  l.sendDone(done(lease, { reusable: false }));
  t.is(lease.pass?.restartMtimeNs, statSync(file, { bigint: true }).mtimeNs);
  t.is(lease.pass?.restartFile, file);
});

/** App options that each rule out a pass (policy/pass.ts), with the app they need. */
const REFUSED: ReadonlyArray<{ readonly title: string; readonly app: Readonly<Record<string, unknown>> }> = [
  { title: "sticky sessions (the head has no pass_sticky)", app: { sticky_sessions: true } },
  { title: "max requests", app: { max_requests: 1000 } },
  { title: "max request time", app: { max_request_time: 60 } },
  { title: "a forced max concurrency per process", app: { force_max_concurrent_requests_per_process: 4 } },
];

test.serial("no pass for an app with sticky sessions, max requests, max request time or forced concurrency", async (t) => {
  t.timeout(120_000);
  const c = await core();
  const l = await client(c);
  for (const [i, r] of REFUSED.entries()) {
    const root = app(`refused${i}`);
    l.sendHead(requestHeadMap({ v: 3, held: [], pass: true }, { app_root: root, min_instances: 1, max_instances_per_app: 1, ...r.app }));
    const { lease, fd } = await leaseOf(l);
    if (fd >= 0) appSocket(fd).destroy();
    l.sendDone(done(lease, { reusable: false }));
    t.is(lease.pass, undefined, r.title);
  }
  const s = await status(c);
  t.is(s.groups.reduce((n, g) => n + g.passes, 0), 0);
  t.is(s.groups.reduce((n, g) => n + g.leases, 0), REFUSED.length);
});

test.serial("no pass while always_restart.txt exists", async (t) => {
  t.timeout(60_000);
  const root = app("always");
  writeFileSync(path.join(root, "tmp", "always_restart.txt"), "");
  const c = await core();
  const l = await client(c);
  l.sendHead(requestHeadMap({ v: 3, held: [], pass: true }, { app_root: root, min_instances: 1 }));
  const { lease, fd } = await leaseOf(l);
  if (fd >= 0) appSocket(fd).destroy();
  l.sendDone(done(lease, { reusable: false }));
  t.is(lease.pass, undefined);
});
