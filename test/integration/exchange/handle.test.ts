/**
 * handleExchange() against real app sockets with a scripted session source:
 * checkout retry when a process cannot be connected to, 502 when every try
 * fails, release exactly once with the right outcome, sticky id passed to checkout.
 */
import test from "ava";
import { promises as fsp } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { PassThrough, Readable, type Duplex } from "node:stream";
import { makeAppOptions, type AppOptions } from "../../../core/src/config/schema.js";
import { QueueFullError } from "../../../core/src/errors.js";
import { silentLogger } from "../../../core/src/log.js";
import type { Session, SessionOutcome } from "../../../core/src/pool/session.js";
import { AppAgents } from "../../../core/src/exchange/relay/app-agents.js";
import type { Exchange, RequestHead } from "../../../core/src/exchange/exchange.js";
import { handleExchange, type CheckoutOptions, type SessionSource } from "../../../core/src/exchange/handle.js";

let tmp = "";
let server: http.Server | undefined;
let goodSocket = "";
test.before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "ferry-h3-req-"));
  goodSocket = path.join(tmp, "good.sock");
  server = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/plain", "Set-Cookie": ["a=1", "b=2"] });
    res.end(`ok ${req.method ?? ""} ${req.url ?? ""} xff=${req.headers["x-forwarded-for"] ?? ""}`);
  });
  const s = server;
  await new Promise<void>((resolve) => s.listen(goodSocket, resolve));
});
test.after.always(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await fsp.rm(tmp, { recursive: true, force: true });
});

interface Captured { status: number; headers: string[]; body: string; ended: boolean; aborted: boolean }

function exchange(app: AppOptions, over: Partial<RequestHead> = {}): { ex: Exchange; out: Captured } {
  const out: Captured = { status: 0, headers: [], body: "", ended: false, aborted: false };
  const head: RequestHead = {
    method: "GET", uri: "/x?y=1", proto: "HTTP/1.1", headers: ["Host", "h"], remoteAddr: "192.0.2.9", remotePort: 1,
    serverName: "h", serverPort: 80, https: false, hasBody: false, upgrade: false, ...over,
  };
  const ex: Exchange = {
    head, app, body: Readable.from([]), signal: new AbortController().signal,
    writeHead(status, headers) { out.status = status; out.headers = [...headers]; },
    write(chunk) { out.body += Buffer.from(chunk).toString(); return true; },
    waitDrain() { return Promise.resolve(); },
    end() { out.ended = true; },
    abort() { out.aborted = true; },
    upgraded(): Duplex { return new PassThrough(); },
    tunnelEnded() { /* no tunnel here */ },
  };
  return { ex, out };
}

class ScriptedPool implements SessionSource {
  readonly releases: Array<{ pid: number; outcome: SessionOutcome }> = [];
  readonly checkouts: CheckoutOptions[] = [];
  constructor(private readonly sockets: string[]) {}
  checkout(_app: AppOptions, opts: CheckoutOptions): Promise<Session> {
    this.checkouts.push(opts);
    const i = this.checkouts.length - 1;
    const sock = this.sockets[Math.min(i, this.sockets.length - 1)] ?? "";
    if (sock === "full") return Promise.reject(new QueueFullError("Cannot queue request: the queue is full"));
    const gone = new AbortController();
    const pid = 1000 + i;
    const releases = this.releases;
    let released = false;
    return Promise.resolve({
      groupName: "g", pid, address: { kind: "unix", path: sock }, stickyId: String(pid), leaseId: `n.${pid}`, processGone: gone.signal,
      markUpgraded() {},
      release(outcome: SessionOutcome) { if (!released) { released = true; releases.push({ pid, outcome }); } },
    });
  }
}

const app = makeAppOptions("/srv/app", { appEnv: "production" });

test("handleExchange() relays the app's answer, every Set-Cookie, X-Forwarded-For, and releases ok once", async (t) => {
  const pool = new ScriptedPool([goodSocket]);
  const { ex, out } = exchange(app);
  const agents = new AppAgents();
  await handleExchange(ex, { pool, log: silentLogger(), agents });
  agents.destroy();
  t.is(out.status, 200);
  t.is(out.body, "ok GET /x?y=1 xff=192.0.2.9");
  t.true(out.ended);
  const cookies = out.headers.filter((_, i) => i % 2 === 1 && out.headers[i - 1]?.toLowerCase() === "set-cookie");
  t.deepEqual(cookies, ["a=1", "b=2"]);
  t.deepEqual(pool.releases, [{ pid: 1000, outcome: "ok" }]);
});

test("handleExchange() checks out again when a process cannot be connected to", async (t) => {
  const pool = new ScriptedPool([path.join(tmp, "missing.sock"), goodSocket]);
  const { ex, out } = exchange(app);
  await handleExchange(ex, { pool, log: silentLogger() });
  t.is(out.status, 200);
  t.deepEqual(pool.releases, [{ pid: 1000, outcome: "app_error" }, { pid: 1001, outcome: "ok" }]);
});

test("handleExchange() answers 502 when every checkout fails to connect", async (t) => {
  const pool = new ScriptedPool([path.join(tmp, "missing.sock")]);
  const { ex, out } = exchange(app);
  await handleExchange(ex, { pool, log: silentLogger() });
  t.is(out.status, 502);
  t.regex(out.body, /Error ID/);
  t.is(pool.releases.length, 4);
  t.true(pool.releases.every((r) => r.outcome === "app_error"));
});

test("handleExchange() answers 503 when the queue is full, and passes the sticky id to checkout", async (t) => {
  const pool = new ScriptedPool(["full"]);
  const sticky = makeAppOptions("/srv/app", { stickySessions: true });
  const { ex, out } = exchange(sticky, { headers: ["Host", "h", "Cookie", "_passenger_route=77"] });
  await handleExchange(ex, { pool, log: silentLogger(), generation: 3 });
  t.is(out.status, 503);
  t.is(pool.checkouts[0]?.stickyId, "77");
  t.is(pool.checkouts[0]?.generation, 3);
  t.deepEqual(pool.releases, []);
});

test("handleExchange() adds the sticky Set-Cookie of the serving process", async (t) => {
  const pool = new ScriptedPool([goodSocket]);
  const sticky = makeAppOptions("/srv/app", { stickySessions: true });
  const { ex, out } = exchange(sticky);
  await handleExchange(ex, { pool, log: silentLogger() });
  t.true(out.headers.includes("_passenger_route=1000; Path=/; SameSite=Lax"));
});

test("handleExchange() sends no body for a HEAD error page", async (t) => {
  const pool = new ScriptedPool(["full"]);
  const { ex, out } = exchange(app, { method: "HEAD" });
  await handleExchange(ex, { pool, log: silentLogger() });
  t.is(out.status, 503);
  t.is(out.body, "");
  t.true(out.ended);
});
