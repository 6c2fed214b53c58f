/**
 * Module connections have deadlines and a cap (issue 13): a v2 connection idle
 * between exchanges closes after the idle deadline, a later head sent only in
 * part closes after the head deadline, and past the connection cap a new
 * connection displaces the oldest idle one (or is refused when none is idle).
 */
import test from "ava";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { ModuleListener, type ExchangeHandler, type ModuleListenerOptions } from "../../../core/src/front/module/listener.js";
import { encodeFrame } from "../../../core/src/protocol/codec.js";
import { FrameClient, requestHeadMap } from "../../helpers/frame-client.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "ferry-deadlines-"));
chmodSync(dir, 0o755);
const listeners: ModuleListener[] = [];
const clients: FrameClient[] = [];
let seq = 0;

test.after.always(async () => {
  for (const c of clients) c.destroy();
  await Promise.all(listeners.map((l) => l.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function startListener(handler: ExchangeHandler, opts: Partial<ModuleListenerOptions> = {}): Promise<ModuleListener> {
  const l = new ModuleListener({
    path: path.join(dir, `d${seq++}.sock`),
    log: pino({ level: "silent" }),
    apacheUid: 33,
    handler,
    peerCred: () => ({ pid: 1, uid: 0, gid: 0 }),
    ...opts,
  });
  listeners.push(l);
  await l.start();
  return l;
}

async function connect(l: ModuleListener): Promise<FrameClient> {
  const c = await FrameClient.connect(l.path);
  clients.push(c);
  return c;
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`Cannot wait for ${what}: not true within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const ok: ExchangeHandler = async (ex) => {
  ex.writeHead(200, []);
  ex.write(Buffer.from(ex.head.uri));
  ex.end();
};

test("v2: a connection idle between exchanges is closed after the idle deadline", async (t) => {
  const l = await startListener(ok, { idleDeadlineMs: 300, headDeadlineMs: 60_000 });
  const c = await connect(l);
  c.sendHead(requestHeadMap({ v: 2, uri: "/first" }));
  c.sendEnd();
  t.is((await c.readResponse()).body.toString(), "/first");
  const sentAt = Date.now();
  await until(() => c.ended, "the core to close the idle connection", 5_000);
  t.true(Date.now() - sentAt >= 250, "not before the idle deadline");
  await until(() => l.connectionCount === 0, "the listener to drop it");
});

test("v2: a second head sent only in part is closed after the head deadline, not the idle one", async (t) => {
  const l = await startListener(ok, { idleDeadlineMs: 60_000, headDeadlineMs: 300 });
  const c = await connect(l);
  c.sendHead(requestHeadMap({ v: 2, uri: "/first" }));
  c.sendEnd();
  t.is((await c.readResponse()).body.toString(), "/first");
  const head = encodeFrame({ kind: "request-head", head: requestHeadMap({ v: 2, uri: "/second" }) });
  c.writeRaw(head.subarray(0, head.length - 3));
  await until(() => c.ended, "the core to close the half-sent exchange", 5_000);
  t.is(l.connectionCount, 0);
});

test("v2: an idle connection that then sends a whole head in time is served", async (t) => {
  const l = await startListener(ok, { idleDeadlineMs: 2_000, headDeadlineMs: 2_000 });
  const c = await connect(l);
  for (const uri of ["/a", "/b"]) {
    c.sendHead(requestHeadMap({ v: 2, uri }));
    c.sendEnd();
    t.is((await c.readResponse()).body.toString(), uri);
  }
  t.false(c.ended);
});

test("past the connection cap a new connection displaces the oldest idle one", async (t) => {
  const l = await startListener(ok, { maxConnections: 3 });
  const a = await connect(l);
  const b = await connect(l);
  const c = await connect(l);
  await until(() => l.connectionCount === 3, "three connections");
  const d = await connect(l);
  await until(() => a.ended, "the oldest idle connection to be closed");
  t.false(b.ended);
  d.sendHead(requestHeadMap({ v: 2, uri: "/d" }));
  d.sendEnd();
  t.is((await d.readResponse()).body.toString(), "/d");
  t.true(l.connectionCount <= 3);
  c.destroy();
});

test("past the connection cap with every connection in an exchange, a new one is refused and the others finish", async (t) => {
  const releases: Array<() => void> = [];
  const l = await startListener(async (ex) => {
    await new Promise<void>((r) => releases.push(r));
    ex.writeHead(200, []);
    ex.end();
  }, { maxConnections: 2 });
  const busy = [await connect(l), await connect(l)];
  for (const c of busy) {
    c.sendHead(requestHeadMap({ v: 2 }));
    c.sendEnd();
  }
  await until(() => releases.length === 2, "both exchanges to start");
  const extra = await connect(l);
  await until(() => extra.ended || extra.closed, "the extra connection to be refused");
  for (const r of releases) r();
  for (const c of busy) t.is((await c.readResponse()).status, 200);
});
