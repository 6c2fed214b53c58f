/**
 * Protocol v3, the core's side of the direct path (docs/protocol.md, "Version
 * 3: leases"), against a real core process and a real app: the LEASE carries a
 * connected app socket (SCM_RIGHTS) or says "reuse yours", DONE releases the
 * process, PROCEED opens the relay path.
 */
import test from "ava";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { DoneReport, Lease } from "../../../core/src/protocol/frames.js";
import { FrameClient, requestHeadMap } from "../../helpers/frame-client.js";
import { LeaseClient, httpOverSocket } from "../../helpers/lease-client.js";
import { ROOT, startCoreProcess, type RunningCore } from "../../helpers/core-process.js";

const HELLO = path.join(ROOT, "test/fixtures/apps/hello");
const tmp = mkdtempSync(path.join(os.tmpdir(), "ferry-lease-"));
chmodSync(tmp, 0o755);
const cores: RunningCore[] = [];
const sockets: Array<{ destroy(): void }> = [];
let seq = 0;

test.after.always(() => {
  for (const s of sockets) s.destroy();
  for (const c of cores) c.kill();
  rmSync(tmp, { recursive: true, force: true });
});

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

/** App options: one process taking one request at a time, so a leaked lease would stall the next request. */
const ONE = { app_root: HELLO, max_instances_per_app: 1, min_instances: 1, force_max_concurrent_requests_per_process: 1 };

function done(lease: Lease, over: Partial<DoneReport> = {}): DoneReport {
  return { id: lease.id, outcome: "ok", status: 200, bytesIn: 0, bytesOut: 10, durationUs: 100, reusable: true, ...over };
}

async function leaseOf(l: LeaseClient): Promise<{ lease: Lease; fd: number }> {
  const got = await l.next();
  if (got?.frame.kind !== "lease") throw new Error(`Cannot take a lease: got ${got?.frame.kind ?? "EOF"}`);
  return { lease: got.frame.lease, fd: got.fd };
}

test.serial("a v3 head gets a LEASE with a connected app socket; a later head holding it gets reuse", async (t) => {
  t.timeout(60_000);
  const c = await core();
  const l = await client(c);

  l.sendHead(requestHeadMap({ v: 3, uri: "/a?x=1", held: [] }, ONE));
  const first = await leaseOf(l);
  t.false(first.lease.reuse);
  t.true(first.fd >= 0, "a descriptor came with the LEASE");
  t.regex(Buffer.from(first.lease.head).toString("latin1"), /^GET \/a\?x=1 HTTP\/1\.1\r\nHost: localhost\r\n/);
  t.false(first.lease.chunked);
  t.deepEqual(first.lease.addHeaders.slice(0, 1), ["X-Powered-By"]);
  const app = new net.Socket({ fd: first.fd, readable: true, writable: true });
  sockets.push(app);
  const answer = await httpOverSocket(app, first.lease.head);
  t.regex(answer, /^HTTP\/1\.1 200 OK\r\n/);
  t.regex(answer, new RegExp(`hello from ${first.lease.pid} `));
  l.sendDone(done(first.lease));

  l.sendHead(requestHeadMap({ v: 3, uri: "/b", held: [first.lease.id] }, ONE));
  const second = await leaseOf(l);
  t.true(second.lease.reuse);
  t.is(second.fd, -1, "no descriptor with a reuse lease");
  t.is(second.lease.id, first.lease.id);
  t.regex(await httpOverSocket(app, second.lease.head), new RegExp(`hello from ${first.lease.pid} `));
  l.sendDone(done(second.lease));
});

test.serial("a module connection that closes while leased releases the process (no leaked lease)", async (t) => {
  t.timeout(60_000);
  const c = await core();
  const l1 = await client(c);
  l1.sendHead(requestHeadMap({ v: 3, held: [] }, ONE));
  const { lease } = await leaseOf(l1);
  l1.destroy(); // the Apache child died before its DONE

  const l2 = await client(c);
  l2.sendHead(requestHeadMap({ v: 3, held: [] }, ONE));
  const next = await leaseOf(l2);
  t.is(next.lease.pid, lease.pid, "the one process takes the next request: its slot was released");
  l2.sendDone(done(next.lease));
});

test.serial("DONE stale is followed by the same request again and gets a fresh connection", async (t) => {
  t.timeout(60_000);
  const c = await core();
  const l = await client(c);
  l.sendHead(requestHeadMap({ v: 3, held: [] }, ONE));
  const first = await leaseOf(l);
  l.sendDone(done(first.lease, { outcome: "stale", status: 0, bytesOut: 0, reusable: false }));
  l.sendHead(requestHeadMap({ v: 3, held: [] }, ONE));
  const again = await leaseOf(l);
  t.false(again.lease.reuse);
  t.true(again.fd >= 0);
  const app = new net.Socket({ fd: again.fd, readable: true, writable: true });
  sockets.push(app);
  t.regex(await httpOverSocket(app, again.lease.head), /hello from/);
  l.sendDone(done(again.lease));
});

test.serial("an app with friendly error pages takes the relay path: PROCEED, then a version 2 exchange", async (t) => {
  t.timeout(60_000);
  const c = await core();
  const fc = await FrameClient.connect(c.moduleSocket);
  sockets.push(fc);
  fc.sendHead(requestHeadMap({ v: 3, held: [] }, { ...ONE, app_env: "development" }));
  t.is((await fc.nextFrame()).kind, "proceed");
  fc.sendEnd();
  const res = await fc.readResponse();
  t.is(res.status, 200);
  t.regex(res.body.toString(), /hello from/);
});

test.serial("a request body of unknown length is leased as chunked", async (t) => {
  t.timeout(60_000);
  const c = await core();
  const l = await client(c);
  l.sendHead(requestHeadMap({ v: 3, method: "POST", has_body: true, headers: ["Host", "localhost"], held: [] }, ONE));
  const { lease, fd } = await leaseOf(l);
  t.true(lease.chunked);
  t.regex(Buffer.from(lease.head).toString("latin1"), /\r\nTransfer-Encoding: chunked\r\n\r\n$/);
  const app = new net.Socket({ fd, readable: true, writable: true });
  sockets.push(app);
  t.regex(await httpOverSocket(app, lease.head, Buffer.from("5\r\nhello\r\n0\r\n\r\n")), /^HTTP\/1\.1 200/);
  l.sendDone(done(lease, { bytesIn: 5 }));
});
