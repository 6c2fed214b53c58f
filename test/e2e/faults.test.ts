/**
 * The fault suite (issue 13), through a real Apache with real apps. Each case
 * runs under a steady loop of requests and asserts what the clients see:
 * which statuses, how long the worst one took (no request hangs), and that a
 * fault costs only its own requests. docs/reliability.md quotes the figures
 * these tests log.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { ApacheServer, makeTempRoot, prepareApp, started, stopAndRemove } from "../helpers/apache.js";
import { request } from "../helpers/e2e-http.js";
import { until } from "../helpers/until.js";

let server: ApacheServer | undefined;
let root = "";
const srv = (): ApacheServer => started(server);

test.before(async () => {
  root = await makeTempRoot("e2e-faults");
  const faulty = await prepareApp(root, "faulty-app", "faulty");
  const web = await prepareApp(root, "e2e-app", "web");
  server = await ApacheServer.start({
    root,
    vhosts: [
      { serverName: "faulty.test", documentRoot: path.join(faulty, "public"), directives: ["PassengerMinInstances 2", "PassengerMaxRequestTime 3"] },
      { serverName: "web.test", documentRoot: path.join(web, "public"), directives: ["PassengerMinInstances 2", "PassengerMaxRequestTime 2"] },
    ],
  });
  for (const host of ["faulty.test", "web.test"]) {
    await until(async () => (await request(srv().port, { path: "/pid", host }).catch(() => ({ status: 0 }))).status === 200, `${host} up`, 60_000);
  }
});

test.after.always(async () => {
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(60));
});


interface Outcome {
  readonly at: number;
  readonly ms: number;
  /** HTTP status, or "error: …" (connection failed or cut) or "hung" (no answer within the loop's timeout). */
  readonly status: number | string;
}

/** `workers` clients asking for `pathname` back to back until stop(). */
class RequestLoop {
  readonly outcomes: Outcome[] = [];
  #running = true;
  readonly #done: Promise<void>;

  constructor(port: number, host: string, pathname: string, workers = 4, timeoutMs = 20_000) {
    const worker = async (): Promise<void> => {
      while (this.#running) {
        const at = Date.now();
        let status: number | string;
        try {
          status = (await request(port, { path: pathname, host, timeoutMs })).status;
        } catch (e: unknown) {
          const msg = e instanceof Error ? e.message : String(e);
          status = /aborted|timeout/i.test(msg) && Date.now() - at >= timeoutMs - 50 ? "hung" : `error: ${msg}`;
        }
        this.outcomes.push({ at, ms: Date.now() - at, status });
        if (status !== 200) await new Promise((r) => setTimeout(r, 20));
      }
    };
    this.#done = Promise.all(Array.from({ length: workers }, worker)).then(() => undefined);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }

  failures(): Outcome[] {
    return this.outcomes.filter((o) => o.status !== 200);
  }

  summary(): string {
    const counts = new Map<string, number>();
    for (const o of this.outcomes) counts.set(String(o.status), (counts.get(String(o.status)) ?? 0) + 1);
    const worst = Math.max(0, ...this.outcomes.map((o) => o.ms));
    return `${this.outcomes.length} requests: ${[...counts].map(([k, v]) => `${k}×${v}`).join(", ")}; slowest ${worst} ms`;
  }
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m?.[1] === undefined ? 0 : Number(m[1]);
}

function corePid(): number {
  const pid = srv().corePid();
  if (pid === undefined) throw new Error("Cannot find the core's pid in the error log");
  return pid;
}

test.serial("faulty apps: a hang, a stdout/stderr flood, a 1 MB header and a mid-body close cost only their own request; core memory stays bounded", async (t) => {
  t.timeout(120_000);
  const port = srv().port;
  const core = corePid();
  const rssBefore = rssKb(core);
  const loop = new RequestLoop(port, "faulty.test", "/pid");
  const started = Date.now();
  const [hang, flood, big, mid] = await Promise.all([
    request(port, { path: "/hang", host: "faulty.test", timeoutMs: 30_000 }),
    request(port, { path: "/flood", host: "faulty.test", timeoutMs: 30_000 }),
    request(port, { path: "/bigheader", host: "faulty.test", timeoutMs: 30_000 }),
    request(port, { path: "/midbody", host: "faulty.test", timeoutMs: 30_000 }).then(
      (r) => ({ status: r.status, bytes: r.body.length, cut: false }),
      () => ({ status: 200, bytes: -1, cut: true }),
    ),
  ]);
  await new Promise((r) => setTimeout(r, 1_000));
  await loop.stop();
  t.log(`hang → ${hang.status} after ${Date.now() - started} ms at most; flood → ${flood.status}; 1 MB header → ${big.status}; mid-body close → ${mid.cut ? "connection cut" : `${mid.bytes} bytes`}; loop: ${loop.summary()}`);
  t.is(hang.status, 504, "PassengerMaxRequestTime cuts the request that never gets an answer");
  t.is(flood.status, 200, "an app flooding its output still answers");
  t.is(big.status, 502, "a 1 MB response head is a readable 502");
  t.true(mid.cut || mid.bytes < 100_000, "a body closed midway reaches the client as cut, never as complete");
  t.deepEqual(loop.failures(), [], "the other requests to the same app all succeeded");
  t.is(corePid(), core, "the core did not restart");
  const grown = rssKb(core) - rssBefore;
  t.log(`core RSS ${rssBefore} kB → ${rssKb(core)} kB`);
  t.true(grown < 64 * 1024, `core RSS grew ${grown} kB`);
});

test.serial("SIGSTOP of one app process: its requests end in 504 within the limit, the others keep flowing, it leaves the rotation", async (t) => {
  t.timeout(120_000);
  const port = srv().port;
  // Two processes: concurrent slow requests spread over both.
  const pids = new Set<number>();
  await until(async () => {
    const rs = await Promise.all([1, 2, 3, 4].map(() => request(port, { path: "/slow?ms=300", host: "web.test" })));
    for (const r of rs) if (r.status === 200) pids.add(Number((JSON.parse(r.text) as { pid: number }).pid));
    return pids.size >= 2;
  }, "two app processes", 30_000);
  const victim = [...pids][0] ?? 0;
  process.kill(victim, "SIGSTOP");
  try {
    const loop = new RequestLoop(port, "web.test", "/pid", 4, 20_000);
    await new Promise((r) => setTimeout(r, 7_000));
    await loop.stop();
    t.log(`SIGSTOP: ${loop.summary()}`);
    t.false(loop.outcomes.some((o) => o.status === "hung"), "no request hung");
    for (const f of loop.failures()) t.is(f.status, 504, JSON.stringify(f));
    t.true(loop.failures().every((f) => f.ms < 2_000 + 3_000), "a stuck request ends within PassengerMaxRequestTime (2 s) plus slack");
    t.true(loop.failures().length <= 8, `only the requests routed to the stopped process fail (${loop.failures().length})`);
    const lastFailure = Math.max(0, ...loop.failures().map((f) => f.at + f.ms));
    t.true(loop.outcomes.filter((o) => o.at > lastFailure).length > 20, "after the stuck process left the rotation, requests keep succeeding");
  } finally {
    process.kill(victim, "SIGCONT");
  }
});

test.serial("slow-header and slow-body clients against Apache do not slow the others", async (t) => {
  t.timeout(120_000);
  const port = srv().port;
  const sockets: net.Socket[] = [];
  const drip = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write("a");
  }, 500);
  try {
    for (let i = 0; i < 40; i++) {
      const s = net.connect(port, "127.0.0.1");
      s.on("error", () => undefined);
      s.write(`GET /pid HTTP/1.1\r\nHost: web.test\r\nX-Slow: `);
      sockets.push(s);
    }
    for (let i = 0; i < 10; i++) {
      const s = net.connect(port, "127.0.0.1");
      s.on("error", () => undefined);
      s.write(`POST /upload HTTP/1.1\r\nHost: web.test\r\nContent-Length: 1000000\r\n\r\n`);
      sockets.push(s);
    }
    const loop = new RequestLoop(port, "web.test", "/pid");
    await new Promise((r) => setTimeout(r, 4_000));
    await loop.stop();
    t.log(`slow clients: ${loop.summary()}`);
    t.deepEqual(loop.failures(), []);
    t.true(loop.outcomes.length > 40);
  } finally {
    clearInterval(drip);
    for (const s of sockets) s.destroy();
  }
});

test.serial("thousands of connections to the module socket by an allowed process: the core stays up and keeps serving Apache", async (t) => {
  t.timeout(120_000);
  const port = srv().port;
  const core = corePid();
  const sock = path.join(srv().instanceDir, "module.sock");
  const conns: net.Socket[] = [];
  let refused = 0;
  try {
    await Promise.all(Array.from({ length: 3000 }, (_, i) => new Promise<void>((resolve) => {
      const s = net.connect(sock);
      s.on("error", () => {
        refused++;
        resolve();
      });
      s.on("connect", () => {
        // Some send a partial frame, some garbage, most nothing.
        if (i % 10 === 0) s.write(Buffer.from([0, 0, 0, 50, 0x92]));
        else if (i % 10 === 1) s.write("GET / HTTP/1.1\r\n\r\n");
        resolve();
      });
      conns.push(s);
    })));
    const loop = new RequestLoop(port, "web.test", "/pid");
    await new Promise((r) => setTimeout(r, 3_000));
    await loop.stop();
    t.log(`3000 module connections (${refused} refused): ${loop.summary()}`);
    t.deepEqual(loop.failures(), []);
    t.true(loop.outcomes.length > 20);
    t.is(corePid(), core, "the core did not restart");
  } finally {
    for (const s of conns) s.destroy();
  }
});

test.serial("kill -9 of the core under load: a bounded window of errors, no hung request, service back on its own", async (t) => {
  t.timeout(120_000);
  const port = srv().port;
  const old = corePid();
  const loop = new RequestLoop(port, "web.test", "/pid", 4, 20_000);
  await new Promise((r) => setTimeout(r, 1_000));
  const killedAt = Date.now();
  process.kill(old, "SIGKILL");
  await until(() => srv().corePid() !== undefined && srv().corePid() !== old, "a new core", 30_000);
  await until(() => loop.outcomes.filter((o) => o.at > killedAt && o.status === 200).length >= 20, "20 requests served after the kill", 30_000);
  await new Promise((r) => setTimeout(r, 1_000));
  await loop.stop();
  const failures = loop.failures();
  const window = failures.length === 0 ? 0 : Math.max(...failures.map((f) => f.at + f.ms)) - killedAt;
  t.log(`kill -9: ${loop.summary()}; errors for ${window} ms after the kill`);
  t.false(loop.outcomes.some((o) => o.status === "hung"), "no request hung");
  for (const f of failures) t.true(f.status === 503 || f.status === 502, `a failed request is a clear 502/503, got ${JSON.stringify(f)}`);
  t.true(window < 15_000, `the error window is bounded (${window} ms)`);
  const tail = loop.outcomes.filter((o) => o.at > killedAt + window);
  t.true(tail.length >= 10 && tail.every((o) => o.status === 200), "service is back on its own");
});
