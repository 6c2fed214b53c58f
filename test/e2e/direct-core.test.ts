/**
 * End-to-end: the direct data path (protocol v3, FERRY_DATA_PATH=direct)
 * through a real Apache and the real core: the core leases app connections
 * (SCM_RIGHTS), the module speaks HTTP/1.1 to the apps itself. Issue 11's
 * "Done when" cases that need the whole stack: an 8 MB body echoed while it
 * is read, a slow 50 MB download with Apache and the core staying small
 * (the core never sees the bytes), and an app that closes idle kept
 * connections under a request loop without a single 502.
 */
import test from "ava";
import crypto from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { ApacheServer, makeTempRoot, prepareApp, processesUnder, started, stopAndRemove } from "../helpers/apache.js";
import { request } from "../helpers/e2e-http.js";

let server: ApacheServer | undefined;
let root = "";
const srv = (): ApacheServer => started(server);

test.before(async () => {
  root = await makeTempRoot("e2e-direct-core");
  const echo = await prepareApp(root, "echo-body", "echo");
  const web = await prepareApp(root, "e2e-app", "web");
  const ka = await prepareApp(root, "short-keepalive", "ka");
  server = await ApacheServer.start({
    root,
    env: { FERRY_DATA_PATH: "direct" },
    logLevel: "warn ferry:trace2",
    vhosts: [
      { serverName: "echo.test", documentRoot: path.join(echo, "public") },
      { serverName: "web.test", documentRoot: path.join(web, "public") },
      { serverName: "ka.test", documentRoot: path.join(ka, "public") },
    ],
  });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(60));
});

const sha256 = (b: Buffer): string => crypto.createHash("sha256").update(b).digest("hex");

/** RSS in bytes of the processes under the server root whose comm matches. */
function rssOf(comm: string): number {
  let sum = 0;
  for (const pid of processesUnder(srv().serverRoot)) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== comm) continue;
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      sum += m ? Number(m[1]) * 1024 : 0;
    } catch {
      /* gone */
    }
  }
  return sum;
}

function get(host: string, p: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port: srv().port, path: p, headers: { Host: host }, agent }, (r) => {
      r.resume();
      r.on("end", () => resolve(r.statusCode ?? 0));
    }).on("error", reject);
  });
}

test.serial("requests take the direct path: the module logs the lease", async (t) => {
  const res = await request(srv().port, { path: "/pid", host: "web.test" });
  t.is(res.status, 200);
  t.regex(srv().errorLogTail(200), /lease [^ ]+: app pid \d+/);
});

test.serial("8 MB echoed while it is read (req.pipe(res)): both directions sha256-exact", async (t) => {
  const body = crypto.randomBytes(8 * 1024 * 1024);
  const res = await request(srv().port, { path: "/", method: "POST", host: "echo.test", body, timeoutMs: 90_000 });
  t.is(res.status, 200);
  t.is(res.body.length, body.length);
  t.is(sha256(res.body), sha256(body));
});

test.serial("a slow client downloading 50 MB: Apache and the core stay small", async (t) => {
  const total = 50 * 1024 * 1024;
  const apacheBefore = rssOf("apache2");
  const coreBefore = rssOf("node");
  let apachePeak = apacheBefore;
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port: srv().port, path: `/download?bytes=${total}`, headers: { Host: "web.test" }, agent: false }, (res) => {
      res.on("data", (c: Buffer) => {
        got += c.length;
        if (got % (4 * 1024 * 1024) < c.length) {
          res.pause();
          apachePeak = Math.max(apachePeak, rssOf("apache2"));
          setTimeout(() => res.resume(), 300);
        }
      });
      res.on("end", resolve);
      res.on("error", reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error("download timed out")));
    req.on("error", reject);
  });
  t.is(got, total);
  const coreAfter = rssOf("node");
  t.log(`Apache RSS ${(apacheBefore / 1048576).toFixed(1)} → peak ${(apachePeak / 1048576).toFixed(1)} MB; ` +
    `node (core + apps) ${(coreBefore / 1048576).toFixed(1)} → ${(coreAfter / 1048576).toFixed(1)} MB`);
  t.true(apachePeak - apacheBefore < 32 * 1024 * 1024, "Apache grew by more than 32 MB");
  t.true(coreAfter - coreBefore < 32 * 1024 * 1024, "the core and the apps grew by more than 32 MB");
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
