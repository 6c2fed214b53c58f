/** Request and response bodies stream through standalone mode byte-exact, both ways. */
import test from "ava";
import { createHash } from "node:crypto";
import http from "node:http";
import path from "node:path";
import { FIXTURE_APPS, json, pidOf, req, startApp, waitFor, type Running } from "../../helpers/standalone.js";

let r: Running | undefined;
test.before(async () => {
  r = await startApp(path.join(FIXTURE_APPS, "h3-app"));
  await pidOf(r.port);
});
test.after.always(async () => { await r?.stop(); });

function port(): number {
  if (r === undefined) throw new Error("not started");
  return r.port;
}

/** Deterministic pseudo-random chunk i. */
function chunk(i: number, size: number): Buffer {
  const seed = createHash("sha256").update(`chunk-${i}`).digest();
  const b = Buffer.alloc(size);
  for (let o = 0; o < size; o += seed.length) seed.copy(b, o);
  return b;
}

test("a 32 MB chunked upload is echoed back byte-exact (streamed both ways)", async (t) => {
  const chunks = 512;
  const size = 64 * 1024;
  const sent = createHash("sha256");
  const got = createHash("sha256");
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    const q = http.request({ host: "127.0.0.1", port: port(), path: "/echo", method: "POST", agent: false, signal: AbortSignal.timeout(60_000) }, (res) => {
      t.is(res.statusCode, 200);
      res.on("data", (c: Buffer) => { received += c.length; got.update(c); });
      res.on("end", () => resolve());
      res.on("error", reject);
    });
    q.on("error", reject);
    let i = 0;
    const pump = (): void => {
      while (i < chunks) {
        const c = chunk(i++, size);
        sent.update(c);
        if (!q.write(c)) { q.once("drain", pump); return; }
      }
      q.end();
    };
    pump();
  });
  t.is(received, chunks * size);
  t.is(got.digest("hex"), sent.digest("hex"));
});

test("a Content-Length upload reaches the app byte-exact", async (t) => {
  const body = Buffer.concat(Array.from({ length: 64 }, (_, i) => chunk(i, 16 * 1024)));
  const res = await req(port(), "/hash", { method: "PUT", body });
  t.is(res.status, 200);
  const v = JSON.parse(res.text) as { bytes: number; sha256: string };
  t.is(v.bytes, body.length);
  t.is(v.sha256, createHash("sha256").update(body).digest("hex"));
});

test("HEAD and 204 answers have no body; keep-alive clients reuse the connection", async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const head = await req(port(), "/", { method: "HEAD", agent });
    t.is(head.status, 200);
    t.is(head.body.length, 0);
    const none = await req(port(), "/nocontent", { agent });
    t.is(none.status, 204);
    t.is(none.body.length, 0);
    const again = await json(port(), "/headers", { agent });
    t.is(again["method"], "GET");
  } finally {
    agent.destroy();
  }
});

test("the app sees the raw URI, the client's headers in order, and X-Forwarded-*", async (t) => {
  const v = await json(port(), "/headers?a=1&b=%2F", { headers: { "X-One": "1", "X-Forwarded-Proto": "https", Host: "example.test:8080" } });
  t.is(v["url"], "/headers?a=1&b=%2F");
  const h = v["headers"] as Record<string, string>;
  t.is(h["x-one"], "1");
  t.is(h["host"], "example.test:8080");
  t.is(h["x-forwarded-proto"], "http", "a client-sent X-Forwarded-Proto is replaced");
  t.is(h["x-forwarded-for"], "127.0.0.1");
});

test("backpressure: a client that does not read the echo stalls its own upload instead of filling memory", async (t) => {
  const size = 64 * 1024;
  const limit = 128 * 1024 * 1024;
  const sent = createHash("sha256");
  const got = createHash("sha256");
  let written = 0;
  let received = 0;
  let response: http.IncomingMessage | undefined;
  const q = http.request({ host: "127.0.0.1", port: port(), path: "/echo", method: "POST", agent: false, signal: AbortSignal.timeout(90_000) });
  const done = new Promise<void>((resolve, reject) => {
    q.on("response", (res) => {
      response = res;
      res.pause();
      res.on("end", () => resolve());
      res.on("error", reject);
    });
    q.on("error", reject);
  });
  let i = 0;
  let finished = false;
  const pump = (): void => {
    while (written < limit) {
      const c = chunk(i++, size);
      sent.update(c);
      written += c.length;
      if (!q.write(c)) { q.once("drain", pump); return; }
    }
    finished = true;
    q.end();
  };
  pump();
  // With the response unread, the upload must stall well below the limit: every hop
  // (front server → core → app → core → client) holds only bounded buffers.
  let last = -1;
  let stableSince = Date.now();
  await waitFor("the upload to stall", () => {
    if (written !== last) {
      last = written;
      stableSince = Date.now();
      return undefined;
    }
    return Date.now() - stableSince > 1_000 ? true : undefined;
  }, 60_000, 50);
  t.false(finished);
  t.log(`stalled after ${written} bytes`);
  t.true(written < 48 * 1024 * 1024, `stalled after ${written} bytes`);
  // Reading the response releases everything; the echo is byte-exact.
  const res = response;
  if (res === undefined) throw new Error("no response head while stalled");
  res.on("data", (c: Buffer) => { received += c.length; got.update(c); });
  res.resume();
  await done;
  t.true(finished);
  t.is(received, limit);
  t.is(got.digest("hex"), sent.digest("hex"));
});

test("a client that goes away mid-upload releases its process (no leaked session)", async (t) => {
  const inst = r;
  if (inst === undefined) throw new Error("not started");
  const q = http.request({ host: "127.0.0.1", port: port(), path: "/hash", method: "POST", agent: false, headers: { "Content-Length": String(10 * 1024 * 1024) } });
  q.on("error", () => undefined);
  q.write(chunk(0, 64 * 1024));
  await waitFor("the upload in flight", () => (inst.instance.pool.status().groups[0]?.processes.some((p) => p.inFlight > 0) === true ? true : undefined));
  q.destroy();
  await waitFor("no request in flight", () => (inst.instance.pool.status().groups[0]?.processes.every((p) => p.inFlight === 0) === true ? true : undefined));
  t.is((await req(port(), "/")).status, 200);
});

test("an app that answers before reading the body: the client gets the answer", async (t) => {
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const q = http.request({ host: "127.0.0.1", port: port(), path: "/early", method: "POST", agent: false, headers: { "Content-Length": String(8 * 1024 * 1024) }, signal: AbortSignal.timeout(30_000) }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => { body += c.toString(); });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    q.on("error", (e) => reject(e));
    let i = 0;
    const pump = (): void => {
      while (i < 128) {
        if (!q.write(chunk(i++, 64 * 1024))) { q.once("drain", pump); return; }
      }
      q.end();
    };
    pump();
  });
  t.is(answer.status, 413);
  t.regex(answer.body, /too large/);
  t.is((await req(port(), "/")).status, 200);
});
