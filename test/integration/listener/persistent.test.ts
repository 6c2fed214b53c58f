/**
 * Protocol v2 (docs/protocol.md "Connections"): one module connection carries
 * sequential exchanges; v1 heads still get one exchange per connection.
 */
import test from "ava";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { ModuleListener, type ExchangeHandler } from "../../../core/src/front/module/listener.js";
import type { Exchange } from "../../../core/src/exchange/exchange.js";
import type { Logger } from "../../../core/src/log.js";
import { FrameClient, requestHeadMap } from "../../helpers/frame-client.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "ferry-persistent-"));
chmodSync(dir, 0o755);
const listeners: ModuleListener[] = [];
const clients: FrameClient[] = [];
let seq = 0;

test.after.always(async () => {
  for (const c of clients) c.destroy();
  await Promise.all(listeners.map((l) => l.close()));
  rmSync(dir, { recursive: true, force: true });
});

function captureLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { log: pino({ level: "debug" }, sink), lines };
}

async function startListener(handler: ExchangeHandler, log: Logger): Promise<ModuleListener> {
  const l = new ModuleListener({ path: path.join(dir, `p${seq++}.sock`), log, apacheUid: 33, handler, peerCred: () => ({ pid: 1, uid: 0, gid: 0 }) });
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

/** Answers "<uri> <body bytes read>"; with `?early` it answers before reading the body. */
const echo: ExchangeHandler = async (ex: Exchange) => {
  let n = 0;
  if (!ex.head.uri.endsWith("?early")) {
    for await (const c of ex.body) n += (c as Buffer).length;
  }
  ex.writeHead(200, ["Content-Type", "text/plain"]);
  ex.write(Buffer.from(`${ex.head.uri} ${n}`));
  ex.end();
};

test("a v2 connection carries sequential exchanges, with and without bodies", async (t) => {
  const { log, lines } = captureLogger();
  const l = await startListener(echo, log);
  const c = await connect(l);
  for (let i = 0; i < 3; i++) {
    c.sendHead(requestHeadMap({ v: 2, uri: `/get${i}` }));
    c.sendEnd();
    const res = await c.readResponse();
    t.is(res.ending, "end");
    t.is(res.body.toString(), `/get${i} 0`);
  }
  c.sendHead(requestHeadMap({ v: 2, method: "POST", uri: "/post", has_body: true }));
  c.sendBody("hello ");
  c.sendBody("world");
  c.sendEnd();
  const post = await c.readResponse();
  t.is(post.body.toString(), "/post 11");
  t.false(c.ended, "the core keeps the connection open between exchanges");
  t.is(l.connectionCount, 1);
  t.false(lines.some((s) => s.includes("protocol error")));
});

test("a v1 head still gets one exchange per connection", async (t) => {
  const { log } = captureLogger();
  const l = await startListener(echo, log);
  const c = await connect(l);
  c.sendHead(requestHeadMap({ v: 1, uri: "/one" }));
  c.sendEnd();
  const res = await c.readResponse();
  t.is(res.body.toString(), "/one 0");
  await until(() => c.ended, "EOF after the v1 exchange");
  t.pass();
});

test("v2: a response sent before the request body was read skips the rest of it, then the next exchange works", async (t) => {
  const { log, lines } = captureLogger();
  const l = await startListener(echo, log);
  const c = await connect(l);
  c.sendHead(requestHeadMap({ v: 2, method: "POST", uri: "/x?early", has_body: true }));
  const early = await c.readResponse();
  t.is(early.body.toString(), "/x?early 0");
  c.sendBody(Buffer.alloc(200_000, 1));
  c.sendBody("more");
  c.sendEnd();
  c.sendHead(requestHeadMap({ v: 2, uri: "/after" }));
  c.sendEnd();
  const next = await c.readResponse();
  t.is(next.body.toString(), "/after 0");
  t.false(lines.some((s) => s.includes("protocol error")));
});

test("v2: an ABORT between exchanges closes the connection quietly; closing the listener closes idle connections", async (t) => {
  const { log, lines } = captureLogger();
  const l = await startListener(echo, log);
  const a = await connect(l);
  a.sendHead(requestHeadMap({ v: 2, uri: "/a" }));
  a.sendEnd();
  t.is((await a.readResponse()).body.toString(), "/a 0");
  a.sendAbort();
  await until(() => a.ended, "EOF on the aborted connection");
  t.false(lines.some((s) => s.includes("protocol error")));

  const idle = await connect(l);
  idle.sendHead(requestHeadMap({ v: 2, uri: "/b" }));
  idle.sendEnd();
  t.is((await idle.readResponse()).body.toString(), "/b 0");
  t.true(await l.close(10_000), "close() finds every connection done");
  await until(() => idle.ended, "EOF on the idle connection");
});

test("v2: a module that half-closes after its END gets the response, then the connection closes", async (t) => {
  const { log } = captureLogger();
  const l = await startListener(echo, log);
  const c = await connect(l);
  c.sendHead(requestHeadMap({ v: 2, uri: "/half" }));
  c.sendEnd();
  c.socket.end();
  const res = await c.readResponse();
  t.is(res.body.toString(), "/half 0");
  await until(() => c.ended, "EOF after the exchange");
  await until(() => l.connectionCount === 0, "the core to drop the connection");
  t.pass();
});
