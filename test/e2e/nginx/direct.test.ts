/**
 * End-to-end through a real nginx + ngx_http_ferry_module + the real core:
 * the direct data path (protocol v3) is nginx's default. The core leases an
 * app connection (SCM_RIGHTS) and the module speaks HTTP/1.1 to the app
 * through nginx's upstream machinery: an 8 MB body echoed while it is read,
 * an app closing idle kept connections without a single 502, WebSockets on
 * both paths, PROCEED to the relay path, passenger_base_uri,
 * passenger_read_timeout, passenger_max_request_time, reload, files that
 * appear in and vanish from public/ (the module's short memory of misses).
 * (`kill -9` of
 * the core mid-transfer: the shared case in test/e2e/nginx/core-crash.test.ts.)
 * One nginx for the whole file.
 */
import test from "ava";
import crypto from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { rm, symlink, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import WebSocket from "ws";
import { makeTempRoot, prepareApp, waitFor } from "../../helpers/apache.js";
import { request } from "../../helpers/e2e-http.js";
import { NginxServer, nginxStarted, stopAndRemoveNginx } from "../../helpers/nginx.js";
import { until } from "../../helpers/until.js";

let nginx: NginxServer | undefined;
let root = "";
let webPublic = "";
const srv = (): NginxServer => nginxStarted(nginx);

test.before(async () => {
  root = await makeTempRoot("e2e-nginx-direct");
  const server = async (name: string, fixture: string, extra: readonly string[] = []): Promise<{ serverName: string; root: string; directives: readonly string[] }> => ({
    serverName: name,
    root: path.join(await prepareApp(root, fixture, name.replace(".test", "")), "public"),
    directives: ["passenger_enabled on;", "client_max_body_size 0;", ...extra],
  });
  // a sub-URI app as Passenger's docs set it up: a symlink in the main app's public/
  const sub = await prepareApp(root, "e2e-app", "sub");
  const web = await server("web.test", "e2e-app", ["passenger_min_instances 2;", "passenger_base_uri /sub;",
    "location /slow { passenger_enabled on; passenger_read_timeout 1s; }"]);
  await symlink(path.join(sub, "public"), path.join(web.root, "sub"));
  webPublic = web.root;
  nginx = await NginxServer.start({
    root,
    // debug: the module's "ferry: lease ..." lines show which path a request took
    logLevel: "debug",
    // leases, DONE and their retries, one LEASE per request: passes off
    // (they have their own cases: pass.test.ts)
    env: { FERRY_PASS: "off" },
    servers: [
      web,
      await server("echo.test", "echo-body"),
      await server("ka.test", "short-keepalive"),
      await server("dev.test", "e2e-app", ["passenger_friendly_error_pages on;"]),
      await server("limit.test", "e2e-app", ["passenger_max_request_time 1;"]),
    ],
  });
});

test.after.always(async () => {
  await stopAndRemoveNginx(nginx, root);
});

test.afterEach.always((t) => {
  if (!t.passed && nginx !== undefined) t.log(nginx.errorLogTail(60));
});

const sha256 = (b: Buffer): string => crypto.createHash("sha256").update(b).digest("hex");

function get(host: string, p: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port: srv().port, path: p, headers: { Host: host }, agent }, (r) => {
      r.resume();
      r.on("end", () => resolve(r.statusCode ?? 0));
    }).on("error", reject);
  });
}

test.serial("requests take the direct path by default: the module logs the lease and DONE", async (t) => {
  // one client connection: one nginx worker, which keeps its app connection
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 3; i++) t.is(await get("web.test", "/pid", agent), 200);
  } finally {
    agent.destroy();
  }
  await until(() => /ferry: DONE [^ ]+: ok, status 200/.test(srv().errorLog()), "the DONE line");
  t.regex(srv().errorLog(), /ferry: lease [^ ]+: app pid \d+, new connection/);
  t.regex(srv().errorLog(), /ferry: lease [^ ]+: app pid \d+, kept connection/);
});

test.serial("8 MB echoed while it is read (req.pipe(res)): both directions sha256-exact", async (t) => {
  const body = crypto.randomBytes(8 * 1024 * 1024);
  const res = await request(srv().port, { path: "/", method: "POST", host: "echo.test", body, timeoutMs: 90_000 });
  t.is(res.status, 200);
  t.is(res.body.length, body.length);
  t.is(sha256(res.body), sha256(body));
});

test.serial("an app closing idle kept connections after 150 ms: zero 502s in a request loop", async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const statuses: number[] = [];
  try {
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, (i * 53) % 300));
      statuses.push(await get("ka.test", `/?i=${i}`, agent));
    }
  } finally {
    agent.destroy();
  }
  t.deepEqual(statuses.filter((s) => s !== 200), []);
});

test.serial("public/ files that appear after a miss are served once the miss is forgotten (100 ms); removed ones go to the app at once", async (t) => {
  // [path, file under public/, what nginx serves]: a static file, the page cache
  const cases = [["/later.txt", "later.txt"], ["/later", "later.html"]] as const;
  for (const [uri, file] of cases) {
    const before = await request(srv().port, { path: uri, host: "web.test" });
    t.is(before.status, 404, `${uri}: the app answers while there is no file`);
    t.regex(String(before.headers["x-powered-by"]), /^Ferry/);
    await writeFile(path.join(webPublic, file), `file ${file}\n`, { mode: 0o644 });
    // the miss was remembered by one worker for 100 ms: then nginx serves the file
    const served = await waitFor(async () => {
      const r = await request(srv().port, { path: uri, host: "web.test" });
      return r.status === 200 && r.text === `file ${file}\n` ? r : undefined;
    }, { timeoutMs: 10_000, intervalMs: 20, what: `nginx to serve the new ${file}` });
    t.is(served.headers["x-powered-by"], undefined);
    await rm(path.join(webPublic, file));
    const after = await request(srv().port, { path: uri, host: "web.test" });
    t.is(after.status, 404, `${uri}: a removed file is not remembered`);
    t.regex(String(after.headers["x-powered-by"]), /^Ferry/);
  }
});

test.serial("friendly error pages on: the core relays the request (PROCEED) and it is served", async (t) => {
  const res = await request(srv().port, { path: "/url?x=1", host: "dev.test" });
  t.is(res.status, 200);
  t.is((JSON.parse(res.text) as { url: string }).url, "/url?x=1");
  t.regex(srv().errorLog(), /ferry: the core relays this request \(PROCEED\)/);
});

test.serial("passenger_base_uri: the sub-URI app serves it, seeing the full URI and its base URI", async (t) => {
  const main = JSON.parse((await request(srv().port, { path: "/url", host: "web.test" })).text) as { url: string; base: string; pid: number };
  const sub = JSON.parse((await request(srv().port, { path: "/sub/url?q=1", host: "web.test" })).text) as { url: string; base: string; pid: number };
  t.deepEqual([main.url, main.base], ["/url", ""]);
  t.deepEqual([sub.url, sub.base], ["/sub/url?q=1", "/sub"]);
  t.not(sub.pid, main.pid);
  // "/subway" is not under "/sub": the main app
  const other = await request(srv().port, { path: "/subway", host: "web.test" });
  t.is((JSON.parse(other.text) as { url: string }).url, "/subway");
});

test.serial("passenger_read_timeout: an app slower than it gets 504; a faster answer is served", async (t) => {
  const start = Date.now();
  const slow = await request(srv().port, { path: "/slow?ms=4000", host: "web.test", timeoutMs: 15_000 });
  t.is(slow.status, 504);
  t.true(Date.now() - start < 3500, `504 after ${Date.now() - start} ms`);
  t.is((await request(srv().port, { path: "/slow?ms=50", host: "web.test" })).status, 200);
  await until(() => /ferry: DONE [^ ]+: timeout, status 504/.test(srv().errorLog()), "DONE timeout");
});

test.serial("passenger_max_request_time on the direct path: 504 before the head, a cut response after it", async (t) => {
  const slow = await request(srv().port, { path: "/slow?ms=4000", host: "limit.test", timeoutMs: 15_000 });
  t.is(slow.status, 504);
  const cut = await request(srv().port, { path: "/stream?chunks=20&interval=150", host: "limit.test", timeoutMs: 15_000 })
    .then((r) => r.body.toString().split("\n").filter((l) => l !== "").length, () => -1);
  t.true(cut < 21, `the streamed response was not cut (${cut} lines)`);
  await until(() => /ferry: DONE [^ ]+: timeout, status 200/.test(srv().errorLog()), "DONE timeout for the cut stream");
});

test.serial("a WebSocket through nginx on the direct path: upgraded, echoes both ways, closes cleanly", async (t) => {
  const ws = new WebSocket(`ws://127.0.0.1:${srv().port}/ws`, { headers: { Host: "web.test" }, handshakeTimeout: 20_000 });
  const received: string[] = [];
  ws.on("message", (d: WebSocket.RawData) => received.push(d.toString()));
  ws.on("error", (e: Error) => received.push(`error: ${e.message}`));
  await until(() => received.some((m) => m.startsWith("welcome") || m.startsWith("error")), "the WebSocket's welcome");
  t.true(received.some((m) => m.startsWith("welcome")), received.join(", "));
  const big = crypto.randomBytes(256 * 1024).toString("hex");
  ws.send("hello");
  ws.send(big);
  await until(() => received.includes("hello") && received.includes(big), "both echoes");
  const closed = new Promise<number>((resolve) => ws.once("close", (code: number) => resolve(code)));
  ws.close(1000);
  t.is(await closed, 1000);
  await until(() => /ferry: DONE [^ ]+: ok, status 101/.test(srv().errorLog()), "DONE for the tunnel");
});

test.serial("a WebSocket on the relay path (friendly error pages on): the core's 101, then the tunnel", async (t) => {
  const ws = new WebSocket(`ws://127.0.0.1:${srv().port}/ws`, { headers: { Host: "dev.test" }, handshakeTimeout: 20_000 });
  const received: string[] = [];
  ws.on("message", (d: WebSocket.RawData) => received.push(d.toString()));
  ws.on("error", (e: Error) => received.push(`error: ${e.message}`));
  await until(() => received.some((m) => m.startsWith("welcome") || m.startsWith("error")), "the WebSocket's welcome");
  t.true(received.some((m) => m.startsWith("welcome")), received.join(", "));
  const big = crypto.randomBytes(256 * 1024).toString("hex");
  ws.send("hello");
  ws.send(big);
  await until(() => received.includes("hello") && received.includes(big), "both echoes");
  const closed = new Promise<number>((resolve) => ws.once("close", (code: number) => resolve(code)));
  ws.close(1000);
  t.is(await closed, 1000);
});

/** The pids of nginx's worker processes (the master's children titled so). */
function workers(): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) !== srv().pid) continue;
      if (readFileSync(`/proc/${d}/cmdline`, "utf8").includes("worker process")) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

// Last: a reload redeploys the apps (a rolling restart).
test.serial("nginx -s reload: old workers holding kept app and core connections exit at once", async (t) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  try {
    await Promise.all([0, 1, 2, 3].map(async () => t.is(await get("web.test", "/pid", agent), 200)));
  } finally {
    agent.destroy();
  }
  const old = workers();
  t.true(old.length > 0);
  await srv().reload();
  const start = Date.now();
  await until(() => old.every((p) => !existsSync(`/proc/${p}`)), "the old workers to exit", 10_000);
  t.true(Date.now() - start < 3500, `old workers exited after ${Date.now() - start} ms`);
  t.is((await request(srv().port, { path: "/pid", host: "web.test" })).status, 200);
});
