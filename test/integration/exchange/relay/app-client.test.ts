/**
 * The core→app HTTP client of handleExchange() (undici pools, request.ts +
 * app-agents.ts) against real app servers: connection reuse, non-origin-form
 * targets, 1xx responses, early answers, backpressure towards the client,
 * bodies of unknown length, TCP addresses, and a client going away.
 */
import test from "ava";
import { promises as fsp } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { PassThrough, Readable, type Duplex } from "node:stream";
import { makeAppOptions } from "../../../../core/src/config/schema.js";
import { silentLogger } from "../../../../core/src/log.js";
import type { AppAddress, Session, SessionOutcome } from "../../../../core/src/pool/session.js";
import { AppAgents } from "../../../../core/src/exchange/relay/app-agents.js";
import type { Exchange, RequestHead } from "../../../../core/src/exchange/exchange.js";
import { handleExchange, type SessionSource } from "../../../../core/src/exchange/handle.js";

const BIG = Buffer.alloc(1024 * 1024, "z");
let tmp = "";
let unixSocket = "";
let tcpPort = 0;
let connections = 0;
let lastUploadClosed: Promise<boolean> = Promise.resolve(false);
const servers: http.Server[] = [];

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? "";
  if (url === "/early") {
    res.writeEarlyHints({ link: "</a.css>; rel=preload" });
    res.end("after hints");
    return;
  }
  if (url.startsWith("/bighead/")) {
    res.setHeader("X-Big", "b".repeat(Number(url.slice("/bighead/".length))));
    res.end("big head");
    return;
  }
  if (url === "/noread") {
    res.end("answered early");
    return;
  }
  if (url === "/big") {
    res.writeHead(200, { "Content-Length": String(BIG.length) });
    res.end(BIG);
    return;
  }
  if (url === "/hang") {
    lastUploadClosed = new Promise((resolve) => res.on("close", () => resolve(!res.writableFinished)));
    res.writeHead(200);
    res.write("first");
    return;
  }
  let n = 0;
  req.on("data", (c: Buffer) => { n += c.length; });
  req.on("end", () => {
    res.end(`${req.method ?? ""} ${url} len=${n} te=${req.headers["transfer-encoding"] ?? "-"}`);
  });
}

test.before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "ferry-h11-client-"));
  unixSocket = path.join(tmp, "app.sock");
  const u = http.createServer(handler);
  u.on("connection", () => { connections++; });
  const tcp = http.createServer(handler);
  servers.push(u, tcp);
  await new Promise<void>((resolve) => u.listen(unixSocket, resolve));
  await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
  tcpPort = (tcp.address() as AddressInfo).port;
});
test.after.always(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  await fsp.rm(tmp, { recursive: true, force: true });
});

interface Captured {
  status: number;
  headers: string[];
  chunks: Buffer[];
  ended: boolean;
  aborted: boolean;
  /** Writes that arrived while the client was "full" (write() had returned false and no drain yet). */
  writesWhileFull: number;
}

const app = makeAppOptions("/srv/app", { appEnv: "production" });

function exchange(over: Partial<RequestHead>, body: Readable, opts: { slowClient?: boolean; signal?: AbortSignal } = {}): { ex: Exchange; out: Captured } {
  const out: Captured = { status: 0, headers: [], chunks: [], ended: false, aborted: false, writesWhileFull: 0 };
  const head: RequestHead = {
    method: "GET", uri: "/", proto: "HTTP/1.1", headers: ["Host", "h"], remoteAddr: "192.0.2.9", remotePort: 1,
    serverName: "h", serverPort: 80, https: false, hasBody: false, upgrade: false, ...over,
  };
  let full = false;
  const ex: Exchange = {
    head, app, body, signal: opts.signal ?? new AbortController().signal,
    writeHead(status, headers) { out.status = status; out.headers = [...headers]; },
    write(chunk) {
      if (full) out.writesWhileFull++;
      out.chunks.push(Buffer.from(chunk));
      if (opts.slowClient === true) full = true;
      return !full;
    },
    waitDrain() {
      return new Promise((resolve) => setImmediate(() => { full = false; resolve(); }));
    },
    end() { out.ended = true; },
    abort() { out.aborted = true; },
    upgraded(): Duplex { return new PassThrough(); },
    tunnelEnded() { /* no tunnel here */ },
  };
  return { ex, out };
}

class OnePool implements SessionSource {
  readonly outcomes: SessionOutcome[] = [];
  constructor(private readonly address: AppAddress) {}
  checkout(): Promise<Session> {
    const outcomes = this.outcomes;
    return Promise.resolve({
      groupName: "g", pid: 4242, address: this.address, stickyId: "s", leaseId: "n.1", processGone: new AbortController().signal,
      markUpgraded() {},
      release(outcome: SessionOutcome) { outcomes.push(outcome); },
    });
  }
}

const unix = (): AppAddress => ({ kind: "unix", path: unixSocket });

test.serial("requests through one AppAgents reuse the keep-alive connection to the app", async (t) => {
  const agents = new AppAgents();
  const pool = new OnePool(unix());
  const before = connections;
  for (let i = 0; i < 6; i++) {
    const { ex, out } = exchange({ uri: `/n${i}` }, Readable.from([]));
    await handleExchange(ex, { pool, log: silentLogger(), agents });
    t.is(Buffer.concat(out.chunks).toString(), `GET /n${i} len=0 te=-`);
  }
  agents.destroy();
  // undici frees a connection one event-loop turn after a response ends, so a
  // request sent right after the previous one may open a second connection.
  t.true(connections - before <= 2, `${connections - before} connections for 6 requests`);
  t.deepEqual(pool.outcomes, ["ok", "ok", "ok", "ok", "ok", "ok"]);
});

test.serial("OPTIONS * reaches the app", async (t) => {
  const agents = new AppAgents();
  const pool = new OnePool(unix());
  const { ex, out } = exchange({ method: "OPTIONS", uri: "*" }, Readable.from([]));
  await handleExchange(ex, { pool, log: silentLogger(), agents });
  agents.destroy();
  t.is(out.status, 200);
  t.is(Buffer.concat(out.chunks).toString(), "OPTIONS * len=0 te=-");
});

test.serial("a 103 Early Hints is not relayed; the final answer is", async (t) => {
  const agents = new AppAgents();
  const { ex, out } = exchange({ uri: "/early" }, Readable.from([]));
  await handleExchange(ex, { pool: new OnePool(unix()), log: silentLogger(), agents });
  agents.destroy();
  t.is(out.status, 200);
  t.is(Buffer.concat(out.chunks).toString(), "after hints");
  t.true(out.ended);
});

test.serial("an app answering before reading the body: the answer is relayed and the client's body stream is left alone", async (t) => {
  const agents = new AppAgents();
  const body = new PassThrough();
  body.write(BIG);
  const { ex, out } = exchange({ method: "POST", uri: "/noread", hasBody: true, headers: ["Host", "h", "Content-Length", String(BIG.length * 4)] }, body);
  await handleExchange(ex, { pool: new OnePool(unix()), log: silentLogger(), agents });
  agents.destroy();
  t.is(out.status, 200);
  t.is(Buffer.concat(out.chunks).toString(), "answered early");
  t.false(body.destroyed);
  body.destroy();
});

test.serial("a body of unknown length reaches the app chunked and complete", async (t) => {
  const agents = new AppAgents();
  const parts = [BIG.subarray(0, 1000), "text", BIG.subarray(0, 300_000)];
  const { ex, out } = exchange({ method: "PUT", uri: "/up", hasBody: true }, Readable.from(parts));
  await handleExchange(ex, { pool: new OnePool(unix()), log: silentLogger(), agents });
  agents.destroy();
  t.is(Buffer.concat(out.chunks).toString(), `PUT /up len=${1000 + 4 + 300_000} te=chunked`);
});

test.serial("a slow client: no write while it is full, and the body arrives byte-exact", async (t) => {
  const agents = new AppAgents();
  const { ex, out } = exchange({ uri: "/big" }, Readable.from([]), { slowClient: true });
  await handleExchange(ex, { pool: new OnePool(unix()), log: silentLogger(), agents });
  agents.destroy();
  t.is(out.writesWhileFull, 0);
  t.true(Buffer.concat(out.chunks).equals(BIG));
  t.true(out.ended);
});

test.serial("an app on a TCP address, without shared agents (one connection per request)", async (t) => {
  const { ex, out } = exchange({ uri: "/tcp" }, Readable.from([]));
  const pool = new OnePool({ kind: "tcp", host: "127.0.0.1", port: tcpPort });
  await handleExchange(ex, { pool, log: silentLogger() });
  t.is(out.status, 200);
  t.is(Buffer.concat(out.chunks).toString(), "GET /tcp len=0 te=-");
  t.deepEqual(pool.outcomes, ["ok"]);
});

test.serial("the client going away mid-response cuts the app request", async (t) => {
  const agents = new AppAgents();
  const client = new AbortController();
  const { ex, out } = exchange({ uri: "/hang" }, Readable.from([]), { signal: client.signal });
  const pool = new OnePool(unix());
  const done = handleExchange(ex, { pool, log: silentLogger(), agents });
  const deadline = Date.now() + 10_000;
  while (out.chunks.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.is(Buffer.concat(out.chunks).toString(), "first");
  client.abort();
  await done;
  t.true(await lastUploadClosed, "the app's response was cut before it finished");
  agents.destroy();
  t.deepEqual(pool.outcomes, ["client_aborted"]);
  t.false(out.ended);
});

test.serial("a 40 KiB response head reaches the client; one over 64 KiB is a 502, not a crash", async (t) => {
  const agents = new AppAgents();
  const ok = exchange({ uri: "/bighead/40000" }, Readable.from([]));
  await handleExchange(ok.ex, { pool: new OnePool(unix()), log: silentLogger(), agents });
  t.is(ok.out.status, 200);
  t.is(ok.out.headers[ok.out.headers.indexOf("X-Big") + 1]?.length, 40000);
  const pool = new OnePool(unix());
  const tooBig = exchange({ uri: "/bighead/70000" }, Readable.from([]));
  await handleExchange(tooBig.ex, { pool, log: silentLogger(), agents });
  agents.destroy();
  t.is(tooBig.out.status, 502);
  t.deepEqual(pool.outcomes, ["app_error"]);
});
