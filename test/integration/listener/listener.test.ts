import test from "ava";
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, statSync, chmodSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { ModuleListener, isPeerAllowed, type ExchangeHandler } from "../../../core/src/front/module/listener.js";
import { wireAbortCode } from "../../../core/src/front/module/module-exchange.js";
import type { Exchange } from "../../../core/src/exchange/exchange.js";
import { silentLogger, type Logger } from "../../../core/src/log.js";
import { FrameClient, frameRequest, headerValue, requestHeadMap } from "../../helpers/frame-client.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "ferry-listener-"));
chmodSync(dir, 0o755);
const listeners: ModuleListener[] = [];
let seq = 0;

test.after.always(async () => {
  await Promise.all(listeners.map((l) => l.close()));
  rmSync(dir, { recursive: true, force: true });
});

/** A logger whose lines the test can read. */
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

async function startListener(handler: ExchangeHandler, extra: { log?: Logger; headDeadlineMs?: number; apacheGid?: number } = {}): Promise<ModuleListener> {
  const l = new ModuleListener({
    path: path.join(dir, `m${seq++}.sock`),
    log: extra.log ?? silentLogger(),
    apacheUid: 33,
    handler,
    ...(extra.headDeadlineMs !== undefined ? { headDeadlineMs: extra.headDeadlineMs } : {}),
    ...(extra.apacheGid !== undefined ? { apacheGid: extra.apacheGid } : {}),
  });
  listeners.push(l);
  await l.start();
  return l;
}

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`Cannot wait for ${what}: not true within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function readAll(ex: Exchange): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of ex.body) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

test("isPeerAllowed() accepts root and Apache's uid only", (t) => {
  t.true(isPeerAllowed({ uid: 0, pid: 10 }, 33));
  t.true(isPeerAllowed({ uid: 33, pid: 10 }, 33));
  t.false(isPeerAllowed({ uid: 65534, pid: 10 }, 33));
  t.false(isPeerAllowed({ uid: 1000, pid: 10 }, 33));
});

test("isPeerAllowed() with the web server's parent known: of the workers' uid, only its children (and itself)", (t) => {
  const front = (peerParent: number | undefined, frontPids: readonly number[] = [500]): { frontPids: readonly number[]; peerParent: number | undefined } => ({ frontPids, peerParent });
  t.true(isPeerAllowed({ uid: 33, pid: 501 }, 33, front(500)), "a worker");
  t.true(isPeerAllowed({ uid: 33, pid: 500 }, 33, front(1)), "the parent itself (httpd -X)");
  t.true(isPeerAllowed({ uid: 33, pid: 801 }, 33, front(800, [500, 800])), "a worker of the other master (nginx binary upgrade)");
  t.false(isPeerAllowed({ uid: 33, pid: 700 }, 33, front(600)), "an app running as the workers' user");
  t.false(isPeerAllowed({ uid: 33, pid: 700 }, 33, front(undefined)), "a peer already gone");
  t.true(isPeerAllowed({ uid: 0, pid: 700 }, 33, front(600)), "root, whoever its parent");
  t.false(isPeerAllowed({ uid: 1000, pid: 501 }, 33, front(500)), "another uid, even a child of the server");
});

test("wireAbortCode() turns FerryError codes into the protocol's snake_case codes", (t) => {
  t.is(wireAbortCode("FERRY_ERR_APP_CRASHED"), "app_crashed");
  t.is(wireAbortCode("FERRY_ERR_APP_TIMEOUT"), "app_timeout");
  t.is(wireAbortCode("FERRY_ERR_INTERNAL"), "internal");
  t.is(wireAbortCode("internal"), "internal");
  t.is(wireAbortCode(""), "internal");
});

test("ModuleListener creates the socket with mode 0660 and Apache's group", async (t) => {
  const l = await startListener(async () => undefined, { apacheGid: 33 });
  const st = statSync(l.path);
  t.true(st.isSocket());
  t.is(st.mode & 0o777, 0o660);
  if (process.getuid?.() === 0) t.is(st.gid, 33);
});

test("a request round trip: head, app options and env reach the handler; the response comes back in frames", async (t) => {
  let seen: { ex: Exchange; gen: number } | undefined;
  const l = await startListener(async (ex, gen) => {
    seen = { ex, gen };
    const body = await readAll(ex);
    // Node byte strings (latin1), as an app's rawHeaders are.
    ex.writeHead(200, ["Content-Type", "text/plain", "Set-Cookie", "a=1", "Set-Cookie", "b=2", "X-Note", Buffer.from("café").toString("latin1")]);
    ex.write(Buffer.from(`${ex.head.method} ${ex.head.uri} ${body.toString()}`));
    ex.end();
  });
  const res = await frameRequest(
    l.path,
    requestHeadMap({ method: "POST", uri: "/x?y=1", has_body: true, gen: 5, env: ["FOO", "bar"], headers: ["Host", "localhost", "X-Name", "Zoë"] }, { app_env: "development", start_timeout: 7 }),
    ["hel", "lo"],
  );
  t.is(res.status, 200);
  t.is(res.ending, "end");
  t.deepEqual(res.headers, ["Content-Type", "text/plain", "Set-Cookie", "a=1", "Set-Cookie", "b=2", "X-Note", "café"]);
  t.is(res.body.toString(), "POST /x?y=1 hello");
  t.is(seen?.gen, 5);
  t.is(seen?.ex.app.startTimeoutMs, 7000);
  t.true(seen?.ex.app.friendlyErrorPages);
  t.deepEqual(seen?.ex.app.env, { FOO: "bar" });
  t.is(headerValue(seen?.ex.head.headers ?? [], "host"), "localhost");
  t.is(Buffer.from(headerValue(seen?.ex.head.headers ?? [], "x-name") ?? "", "latin1").toString("utf8"), "Zoë");
});

test("a large body streams both ways with backpressure and arrives intact", async (t) => {
  const total = 6 * 1024 * 1024;
  const payload = Buffer.alloc(total);
  for (let i = 0; i < total; i++) payload[i] = (i * 7 + (i >> 11)) & 0xff;
  let maxBuffered = 0;
  const l = await startListener(async (ex) => {
    ex.writeHead(200, []);
    for await (const c of ex.body) {
      maxBuffered = Math.max(maxBuffered, ex.body.readableLength);
      if (!ex.write(c as Buffer)) await ex.waitDrain();
    }
    ex.end();
  });
  const c = await FrameClient.connect(l.path);
  c.sendHead(requestHeadMap({ method: "PUT", has_body: true }));
  const reading = c.readResponse(40_000);
  for (let at = 0; at < total; at += 64 * 1024) {
    if (!c.sendBody(payload.subarray(at, at + 64 * 1024))) await c.drain(20_000);
  }
  c.sendEnd();
  const res = await reading;
  c.destroy();
  t.is(res.ending, "end");
  t.is(res.body.length, total);
  t.is(sha(res.body), sha(payload));
  t.true(maxBuffered <= 256 * 1024, `body buffered ${maxBuffered} bytes`);
});

test("a handler that does not read the body pushes backpressure to the module", async (t) => {
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  let ex: Exchange | undefined;
  const l = await startListener(async (e) => {
    ex = e;
    await released;
    const body = await readAll(e);
    e.writeHead(200, []);
    e.write(Buffer.from(String(body.length)));
    e.end();
  });
  const c = await FrameClient.connect(l.path);
  c.sendHead(requestHeadMap({ method: "POST", has_body: true }));
  const chunk = Buffer.alloc(64 * 1024, 1);
  let sent = 0;
  // Write until the core stops reading: a drain that does not come within 1 s.
  for (;;) {
    if (sent >= 64 * 1024 * 1024) break;
    if (c.sendBody(chunk)) {
      sent += chunk.length;
      continue;
    }
    sent += chunk.length;
    const drained = await c.drain(1_000).then(() => true, () => false);
    if (!drained) break;
  }
  // Only socket buffers plus the body stream's high-water mark got in, not all 64 MiB.
  t.log(`module sent ${sent} bytes before the core pushed back`);
  t.true(sent < 16 * 1024 * 1024, `sent ${sent}`);
  // The core holds only a bounded amount, whatever the module sent.
  t.true((ex?.body.readableLength ?? 0) <= 256 * 1024, `buffered ${ex?.body.readableLength}`);
  release();
  await c.drain(20_000);
  c.sendEnd();
  const res = await c.readResponse();
  c.destroy();
  t.is(res.body.toString(), String(sent));
});

test("the core's writes wait for drain while the module does not read", async (t) => {
  const total = 16 * 1024 * 1024;
  let writtenBeforeFalse = -1;
  let drained = false;
  const l = await startListener(async (ex) => {
    await readAll(ex);
    ex.writeHead(200, []);
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    for (let sent = 0; sent < total; sent += chunk.length) {
      if (!ex.write(chunk)) {
        if (writtenBeforeFalse < 0) writtenBeforeFalse = sent + chunk.length;
        await ex.waitDrain();
        drained = true;
      }
    }
    ex.end();
  });
  const c = await FrameClient.connect(l.path);
  c.socket.pause();
  c.sendHead(requestHeadMap());
  c.sendEnd();
  await until(() => writtenBeforeFalse > 0, "the core's write() to return false");
  t.true(writtenBeforeFalse < total);
  t.false(drained);
  c.socket.resume();
  const res = await c.readResponse(40_000);
  c.destroy();
  t.is(res.body.length, total);
  t.true(drained);
});

test("after a 101 the connection carries raw bytes both ways, with half-close", async (t) => {
  const l = await startListener(async (ex) => {
    t.true(ex.head.upgrade);
    await readAll(ex);
    ex.writeHead(101, ["Upgrade", "websocket", "Connection", "Upgrade"]);
    const raw = ex.upgraded();
    raw.write("hello from the app\n");
    await new Promise<void>((resolve) => {
      raw.on("data", (d: Buffer) => raw.write(d.toString().toUpperCase()));
      raw.on("end", () => {
        raw.end("bye\n");
        resolve();
      });
    });
    await new Promise((r) => raw.once("close", r));
  });
  const c = await FrameClient.connect(l.path);
  c.sendHead(requestHeadMap({ upgrade: true, headers: ["Host", "x", "Connection", "Upgrade", "Upgrade", "websocket"] }));
  c.sendEnd();
  const res = await c.readResponse();
  t.is(res.status, 101);
  t.is((await c.readRaw(19)).toString(), "hello from the app\n");
  // Bytes that look like frames are not frames any more.
  c.writeRaw(Buffer.from([0, 0, 0, 1, 3]));
  c.writeRaw("abc\x00z");
  const echoed = await c.readRaw(5 + 5);
  t.deepEqual([...echoed.subarray(0, 5)], [0, 0, 0, 1, 3]);
  t.is(echoed.subarray(5).toString("latin1"), "ABC\x00Z");
  c.endWrite();
  t.is((await c.readRawToEnd()).toString(), "bye\n");
  c.destroy();
});

test("a 101 sent before the module's END: the END is consumed, raw bytes start after it", async (t) => {
  const l = await startListener(async (ex) => {
    // Synchronously, before the END was read.
    ex.writeHead(101, ["Upgrade", "x"]);
    const raw = ex.upgraded();
    raw.pipe(raw);
    await new Promise((r) => raw.once("close", r));
  });
  const c = await FrameClient.connect(l.path);
  c.sendHead(requestHeadMap({ upgrade: true }));
  const res = await c.readResponse();
  t.is(res.status, 101);
  c.writeRaw(Buffer.concat([Buffer.from("000000029103", "hex"), Buffer.from("raw after end")]));
  t.is((await c.readRaw(13)).toString(), "raw after end");
  c.endWrite();
  t.is((await c.readRawToEnd()).length, 0);
  c.destroy();
});

test("an ABORT frame from the module aborts ex.signal and the body", async (t) => {
  let ex: Exchange | undefined;
  const l = await startListener(async (e) => {
    ex = e;
    await new Promise((r) => e.signal.addEventListener("abort", r));
  });
  const c = await FrameClient.connect(l.path);
  c.sendHead(requestHeadMap({ has_body: true }));
  c.sendBody("partial");
  await until(() => ex !== undefined, "the handler to start");
  c.sendAbort();
  await until(() => ex?.signal.aborted === true, "ex.signal to abort");
  await c.waitClosed();
  t.true(ex?.body.destroyed);
  c.destroy();
});

test("the module closing the connection before END aborts ex.signal; a half-close after END does not", async (t) => {
  const exes: Exchange[] = [];
  const l = await startListener(async (e) => {
    exes.push(e);
    await new Promise<void>((resolve) => {
      e.signal.addEventListener("abort", () => resolve());
      if (e.head.method === "GET") {
        setImmediate(() => {
          e.writeHead(204, []);
          e.end();
          resolve();
        });
      }
    });
  });
  const a = await FrameClient.connect(l.path);
  a.sendHead(requestHeadMap({ method: "POST", has_body: true }));
  await until(() => exes.length === 1, "the first handler");
  a.destroy();
  await until(() => exes[0]?.signal.aborted === true, "ex.signal to abort on close");

  const b = await FrameClient.connect(l.path);
  b.sendHead(requestHeadMap());
  b.sendEnd();
  b.endWrite();
  const res = await b.readResponse();
  t.is(res.status, 204);
  t.is(res.ending, "end");
  t.false(exes[1]?.signal.aborted);
  b.destroy();
});

test("a connection that sends no REQUEST_HEAD within the deadline is closed", async (t) => {
  const { log, lines } = captureLogger();
  const l = await startListener(async () => t.fail("no handler call expected"), { log, headDeadlineMs: 300 });
  const c = await FrameClient.connect(l.path);
  c.writeRaw(Buffer.from([0, 0, 0]));
  await c.waitClosed();
  t.true(lines.some((s) => s.includes("none within 300 ms")));
  c.destroy();
});

test("malformed frames close only their connection, with one log line", async (t) => {
  const { log, lines } = captureLogger();
  const l = await startListener(async (ex) => {
    await readAll(ex);
    ex.writeHead(200, []);
    ex.end();
  }, { log });
  const bad = [
    Buffer.from("0000000103", "hex"), // not an array
    Buffer.from("000000029109", "hex"), // unknown type
    Buffer.from("00500000", "hex"), // oversized
    Buffer.from("000000049202c400", "hex"), // BODY before head
  ];
  for (const bytes of bad) {
    const c = await FrameClient.connect(l.path);
    c.writeRaw(bytes);
    await c.waitClosed();
    c.destroy();
  }
  // A head that fails validation.
  const v = await FrameClient.connect(l.path);
  v.sendHead(requestHeadMap({ v: 4 }));
  await v.waitClosed();
  v.destroy();
  t.is(lines.filter((s) => s.includes("protocol error")).length, 5);
  t.true(lines.some((s) => s.includes("protocol version 4 is not 1-3")));
  const res = await frameRequest(l.path, requestHeadMap());
  t.is(res.status, 200);
});

test("a handler that returns without ending the response makes the core send ABORT", async (t) => {
  const l = await startListener(async (ex) => {
    ex.writeHead(200, []);
    ex.write(Buffer.from("part"));
  });
  const res = await frameRequest(l.path, requestHeadMap());
  t.is(res.ending, "abort");
  t.is(res.abort?.code, "internal");
  t.is(res.body.toString(), "part");
});

test("ex.abort() after the head sends an ABORT frame", async (t) => {
  const l = await startListener(async (ex) => {
    ex.writeHead(200, []);
    ex.write(Buffer.from("half"));
    ex.abort("FERRY_ERR_APP_CRASHED", "The app died");
  });
  const res = await frameRequest(l.path, requestHeadMap());
  t.is(res.status, 200);
  t.is(res.body.toString(), "half");
  t.deepEqual(res.abort, { kind: "abort", code: "app_crashed", message: "The app died" });
});

test("close() waits for in-flight exchanges up to the deadline and removes the socket", async (t) => {
  let release: (() => void) | undefined;
  const l = await startListener(async (ex) => {
    await new Promise<void>((r) => (release = r));
    ex.writeHead(200, []);
    ex.end();
  });
  const c = await FrameClient.connect(l.path);
  c.sendHead(requestHeadMap());
  c.sendEnd();
  await until(() => release !== undefined, "the handler to start");
  const closing = l.close(10_000);
  await t.throwsAsync(FrameClient.connect(l.path, 2000));
  release?.();
  const res = await c.readResponse();
  t.is(res.status, 200);
  c.destroy();
  t.true(await closing);
  t.throws(() => statSync(l.path));
});

// Needs root to run the client as nobody; isPeerAllowed() is tested on its own above.
(process.getuid?.() === 0 ? test : test.skip)("a peer that is neither root nor Apache's uid is refused (client run as nobody)", async (t) => {
  const { log, lines } = captureLogger();
  let calls = 0;
  const l = await startListener(async (ex) => {
    calls++;
    ex.writeHead(200, []);
    ex.end();
  }, { log, apacheGid: 65534 });
  const script = `
    const net = require("node:net");
    const s = net.createConnection(process.argv[1]);
    let got = 0;
    s.on("data", (d) => (got += d.length));
    s.on("error", (e) => { console.log("error " + e.code); process.exit(0); });
    s.on("connect", () => s.write(Buffer.from(process.argv[2], "hex")));
    s.on("close", () => { console.log("closed " + got); process.exit(0); });
    setTimeout(() => { console.log("timeout"); process.exit(0); }, 8000);
  `;
  const head = (await import("../../../core/src/protocol/codec.js")).encodeFrame({ kind: "request-head", head: requestHeadMap() });
  const end = Buffer.from("000000029103", "hex");
  const out = await new Promise<string>((resolve, reject) => {
    execFile("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "-e", script, l.path, Buffer.concat([head, end]).toString("hex")],
      { timeout: 20_000 }, (err, stdout) => (err !== null ? reject(err) : resolve(stdout.trim())));
  });
  // Refused: closed before any byte of a response (a reset, if our write raced the close).
  t.regex(out, /^(closed 0|error (ECONNRESET|EPIPE))$/);
  t.is(calls, 0);
  t.true(lines.some((s) => s.includes("Cannot accept module connection from uid 65534")));
  // Root is still served.
  t.is((await frameRequest(l.path, requestHeadMap())).status, 200);
});
