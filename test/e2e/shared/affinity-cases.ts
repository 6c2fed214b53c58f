/**
 * End-to-end cases every front end must pass the same way: shared session
 * affinity (docs/affinity.md) through two real front ends of one kind,
 * configured with the affinity directives (PassengerAffinity* in httpd.conf,
 * passenger_affinity_* in nginx's http{}), one redis-server, one secret file
 * and one app dir both hosts serve. A session started on host A sticks to
 * A's process whichever host the client hits; a WebSocket opened on B for
 * A's session reaches A's process; Redis going away fails no request and its
 * return restores sharing; and the front end's configtest refuses Redis
 * affinity without a secret file. Run through Apache by
 * test/e2e/affinity.test.ts and through nginx by
 * test/e2e/nginx/affinity.test.ts.
 */
import type { TestFn } from "ava";
import { execFile } from "node:child_process";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Redis } from "ioredis";
import WebSocket from "ws";
import { freePort, prepareApp, processesUnder, waitFor } from "../../helpers/apache.js";
import { request } from "../../helpers/e2e-http.js";
import { RedisServer } from "../../helpers/redis.js";
import { type FrontEnd, type FrontEndConfig, type FrontEndKind, frontEndTempRoot, startFrontEnd } from "./front-end.js";

const HOST = "affinity.test";
/** Another name of the same site (ServerAlias / a second server_name). */
const ALIAS = "www.affinity.test";
const NODES = ["e2e-a", "e2e-b"] as const;

/** How each front end checks a configuration, and what it says when the secret file is missing. */
const CONFIG_TEST: Readonly<Record<FrontEndKind, {
  readonly file: string;
  readonly secretLine: RegExp;
  readonly args: (conf: string, fe: FrontEnd) => readonly string[];
  readonly command: string;
  /** "<redis directive> without <secret file directive>", as this front end spells them. */
  readonly what: string;
  readonly refusal: readonly RegExp[];
}>> = {
  apache: {
    file: "httpd.conf",
    secretLine: /PassengerAffinitySecretFile/,
    command: "apache2",
    what: "PassengerAffinityRedis without PassengerAffinitySecretFile",
    args: (conf) => ["-t", "-f", conf],
    refusal: [/PassengerAffinitySecretFile is required/, /FERRY0013/],
  },
  nginx: {
    file: "nginx.conf",
    secretLine: /passenger_affinity_secret_file/,
    command: "nginx",
    what: "passenger_affinity_redis without passenger_affinity_secret_file",
    args: (conf, fe) => ["-t", "-p", fe.server.dir, "-c", conf],
    refusal: [/passenger_affinity_secret_file is required when passenger_affinity_redis is set/, /FERRY0456/],
  },
};

interface Hit {
  readonly status: number;
  readonly pid: number;
  readonly count: number;
  readonly setCookie: string | undefined;
  readonly text: string;
}

function parseCounter(text: string): { pid: number; count: number } {
  const v: unknown = JSON.parse(text);
  if (typeof v !== "object" || v === null) throw new Error(`Cannot parse the app's answer: ${text}`);
  const o = v as Record<string, unknown>;
  if (typeof o.pid !== "number" || typeof o.count !== "number") throw new Error(`Cannot parse the app's answer: ${text}`);
  return { pid: o.pid, count: o.count };
}

function cookieOf(setCookie: string | undefined): string {
  const c = (setCookie ?? "").split(";")[0] ?? "";
  if (!/^_passenger_route=\S+$/.test(c)) throw new Error(`Cannot read the sticky cookie from: ${String(setCookie)}`);
  return c;
}

function run(cmd: string, args: readonly string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

export function affinityCases(test: TestFn, kind: FrontEndKind): void {
  let root = "";
  let redis: RedisServer | undefined;
  let client: Redis | undefined;
  let secretFile = "";
  let appDir = "";
  const hostPorts: number[] = [];
  const hosts: FrontEnd[] = [];

  function host(i: 0 | 1): FrontEnd {
    const h = hosts[i];
    if (h === undefined) throw new Error(`Cannot run: ${kind} did not start`);
    return h;
  }

  function rds(): Redis {
    if (client === undefined) throw new Error("Cannot run: Redis did not start");
    return client;
  }

  async function hit(i: 0 | 1, session: string, cookie: string | undefined, hostName = HOST): Promise<Hit> {
    const res = await request(host(i).port, {
      path: `/hit?s=${session}`,
      host: hostName,
      headers: cookie === undefined ? {} : { Cookie: cookie },
    });
    const sc = res.headers["set-cookie"];
    const setCookie = sc === undefined ? undefined : sc.find((c) => c.startsWith("_passenger_route="));
    if (res.status !== 200) return { status: res.status, pid: 0, count: 0, setCookie, text: res.text };
    return { status: res.status, ...parseCounter(res.text), setCookie, text: res.text };
  }

  /** The Redis pin key of sticky id `id` (any app group), once it exists. */
  async function pinKey(id: string): Promise<string | undefined> {
    const keys = await rds().keys(`ferry:aff:*:${id}`);
    return keys[0];
  }

  async function nodesRegistered(): Promise<boolean> {
    for (const n of NODES) if ((await rds().get(`ferry:node:${n}`)) === null) return false;
    return true;
  }

  function hostConfig(app: string, node: string, listenPort: number, ttl = 600): FrontEndConfig {
    if (redis === undefined) throw new Error("Cannot configure: Redis did not start");
    return {
      server: {
        AffinityRedis: redis.url,
        AffinityNodeName: node,
        AffinityListen: `127.0.0.1:${listenPort}`,
        AffinitySecretFile: secretFile,
        AffinityTTL: ttl,
        // A loaded 2-core machine: a generous per-call budget so a slow Redis
        // answer does not turn into a (correct, but here unwanted) local fallback.
        AffinityRedisTimeout: 2000,
      },
      sites: [{ serverName: HOST, aliases: [ALIAS], appRoot: app, options: { StickySessions: "on", MinInstances: 2, AppEnv: "production" } }],
    };
  }

  test.before(async () => {
    root = await frontEndTempRoot(kind, "affinity");
    redis = await RedisServer.start();
    client = new Redis(redis.port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
    await client.connect();
    secretFile = path.join(root, "affinity.secret");
    await writeFile(secretFile, "e2e-shared-affinity-secret-0123456789\n", { mode: 0o600 });
    appDir = await prepareApp(root, "affinity-counter", "counter");
    for (const node of NODES) {
      const hostRoot = path.join(root, node);
      await mkdir(hostRoot, { recursive: true });
      await chmod(hostRoot, 0o755);
      hostPorts.push(await freePort());
      hosts.push(await startFrontEnd(kind, hostRoot, hostConfig(appDir, node, hostPorts[hostPorts.length - 1] ?? 0)));
    }
    await waitFor(nodesRegistered, { timeoutMs: 30_000, what: "both cores registered in Redis" });
  });

  test.after.always(async () => {
    await Promise.all(hosts.map((h) => h.server.kill()));
    if (root !== "") {
      // The app processes run from the shared app dir, outside each host's root.
      await waitFor(() => processesUnder(root).length === 0, { timeoutMs: 15_000, what: "the apps to exit" }).catch(() => {
        for (const pid of processesUnder(root)) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            /* gone */
          }
        }
      });
    }
    client?.disconnect();
    await redis?.destroy();
    if (root !== "") await rm(root, { recursive: true, force: true });
  });

  test.afterEach.always((t) => {
    if (!t.passed) for (const h of hosts) t.log(h.server.errorLogTail(40));
  });

  /** Start a session on host A; resolves once A pinned it in Redis. */
  async function startSessionOnA(session: string): Promise<{ cookie: string; pid: number }> {
    const first = await hit(0, session, undefined);
    if (first.status !== 200) throw new Error(`Cannot start a session on A: ${first.status} ${first.text}`);
    const cookie = cookieOf(first.setCookie);
    const id = cookie.slice("_passenger_route=".length);
    await waitFor(() => pinKey(id), { timeoutMs: 15_000, what: `the pin of sticky id ${id} in Redis` });
    return { cookie, pid: first.pid };
  }

  test.serial("a session started on A reaches A's process and keeps counting when sent to A and B at random", async (t) => {
    // Warm B up (its own processes) so "reached A's pid" cannot be an accident.
    const warm = await hit(1, "warm-b", undefined);
    t.is(warm.status, 200, warm.text);
    const { cookie, pid } = await startSessionOnA("s1");
    t.not(pid, warm.pid);
    const key = (await pinKey(cookie.split("=")[1] ?? "")) ?? "";
    const raw = await rds().get(key);
    t.regex(raw ?? "", /"node":"e2e-a"/);
    // The TTL directive reached the core (the default is 1800 s).
    const ttl = await rds().ttl(key);
    t.true(ttl > 0 && ttl <= 600, `the pin's TTL is ${ttl} s`);

    const order: (0 | 1)[] = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1];
    for (let k = 0; k < 6; k++) order.push(Math.random() < 0.5 ? 0 : 1);
    let expected = 1;
    for (const i of order) {
      const r = await hit(i, "s1", cookie);
      expected++;
      t.is(r.status, 200, r.text);
      t.is(r.pid, pid, `request ${expected} via host ${i === 0 ? "A" : "B"} reached another process`);
      t.is(r.count, expected, `request ${expected} via host ${i === 0 ? "A" : "B"}: the session's counter`);
      if (r.setCookie !== undefined) t.is(cookieOf(r.setCookie), cookie, "the cookie stays the same");
    }
  });

  test.serial("a WebSocket opened on B for a session owned by A reaches A's process", async (t) => {
    const { cookie, pid } = await startSessionOnA("ws1");
    const ws = new WebSocket(`ws://127.0.0.1:${host(1).port}/ws?s=ws1`, {
      headers: { Host: HOST, Cookie: cookie },
      handshakeTimeout: 20_000,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
        ws.once("unexpected-response", (_req, res) => reject(new Error(`Cannot open the WebSocket: HTTP ${res.statusCode ?? 0}`)));
      });
      const answers: unknown[] = [];
      for (const msg of ["one", "two", "three"]) {
        const reply = new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("Cannot read a WebSocket reply: none within 15 s")), 15_000);
          ws.once("message", (d: Buffer) => {
            clearTimeout(timer);
            resolve(d.toString("utf8"));
          });
        });
        ws.send(msg);
        answers.push(JSON.parse(await reply));
      }
      t.deepEqual(answers, [
        { pid, session: "ws1", count: 2, echo: "one" },
        { pid, session: "ws1", count: 3, echo: "two" },
        { pid, session: "ws1", count: 4, echo: "three" },
      ]);
    } finally {
      ws.terminate();
    }
    // Plain HTTP through A still sees the same process and counter.
    const after = await hit(0, "ws1", cookie);
    t.is(after.pid, pid);
    t.is(after.count, 5);
  });

  test.serial("a request for A's session under another name of the site reaches A's process (the site is keyed by its server name)", async (t) => {
    const { cookie, pid } = await startSessionOnA("alias1");
    const viaAlias = await hit(1, "alias1", cookie, ALIAS);
    t.is(viaAlias.status, 200, viaAlias.text);
    t.is(viaAlias.pid, pid, `via B as ${ALIAS}`);
    t.is(viaAlias.count, 2);
    const back = await hit(0, "alias1", cookie, ALIAS);
    t.is(back.pid, pid, `via A as ${ALIAS}`);
    t.is(back.count, 3);
    // One key per site: the pin is under the server name, never the alias.
    t.deepEqual(await rds().keys(`ferry:aff:*${ALIAS}*`), []);
  });

  test.serial(`a reload of B (${kind === "apache" ? "apachectl graceful" : "nginx -s reload"}) keeps forwarding A's sessions to A's process`, async (t) => {
    const { cookie, pid } = await startSessionOnA("reload1");
    await host(1).reload();
    let expected = 1;
    for (const i of [1, 0, 1] as const) {
      const r = await hit(i, "reload1", cookie);
      expected++;
      t.is(r.status, 200, r.text);
      t.is(r.pid, pid, `request ${expected} via host ${i === 0 ? "A" : "B"} after B's reload reached another process`);
      t.is(r.count, expected);
    }
    // B is still a live member of the cluster (its heartbeat goes on after the reload).
    await waitFor(nodesRegistered, { timeoutMs: 10_000, what: "both cores still registered in Redis" });
    t.pass();
  });

  test.serial("Redis going away fails no request, and its return restores sharing", async (t) => {
    const r = redis;
    if (r === undefined) throw new Error("Cannot run: Redis did not start");
    const { cookie, pid } = await startSessionOnA("down1");
    await r.stop();
    client?.disconnect();
    let countOnA = 1;
    for (const i of [0, 1, 0, 1, 1, 0] as const) {
      const res = await hit(i, "down1", cookie);
      t.is(res.status, 200, `via host ${i === 0 ? "A" : "B"} while Redis is down: ${res.text}`);
      if (i === 0) {
        countOnA++;
        t.is(res.pid, pid, "A keeps serving its own session locally");
        t.is(res.count, countOnA);
      } else {
        t.not(res.pid, pid, "without Redis, B cannot know the session's owner: served by its own process");
      }
    }
    // Each core noticed (its heartbeat fails within 2 s) and said so once.
    await waitFor(() => hosts.every((h) => /affinity is local-only until it returns/.test(h.server.errorLog())), {
      timeoutMs: 20_000,
      what: "both cores to log that affinity is local-only",
    });
    await r.restart();
    client = new Redis(r.port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
    await client.connect();
    // Both cores re-registered (their heartbeats succeed again) and A republished its pin.
    const id = cookie.split("=")[1] ?? "";
    await waitFor(async () => (await nodesRegistered()) && (await pinKey(id)) !== undefined, {
      timeoutMs: 30_000,
      what: "both cores and the session's pin back in the restarted Redis",
    });
    await waitFor(() => hosts.every((h) => /shared session affinity restored/.test(h.server.errorLog())), {
      timeoutMs: 20_000,
      what: "both cores to log that shared affinity is restored",
    });
    const back = await hit(1, "down1", cookie);
    t.is(back.status, 200, back.text);
    t.is(back.pid, pid, "B forwards A's session to A again");
    t.is(back.count, countOnA + 1);
  });

  const ct = CONFIG_TEST[kind];
  test.serial(`${ct.command} -t refuses ${ct.what}, naming it`, async (t) => {
    const fe = host(0);
    const confFile = path.join(fe.server.dir, "conf", ct.file);
    const conf = await readFile(confFile, "utf8");
    t.regex(conf, ct.secretLine);
    const without = conf.split("\n").filter((l) => !ct.secretLine.test(l)).join("\n");
    const confPath = path.join(fe.server.dir, "conf", `no-secret-${ct.file}`);
    await writeFile(confPath, without);
    const result = await run(ct.command, ct.args(confPath, fe));
    t.not(result.code, 0, result.out);
    for (const re of ct.refusal) t.regex(result.out, re);
    // The full config (with the secret file) passes the same check.
    const ok = await run(ct.command, ct.args(confFile, fe));
    t.is(ok.code, 0, ok.out);
  });

  test.serial("a reload that changes an affinity directive says it applies when the core restarts, and B keeps serving", async (t) => {
    const b = host(1);
    await b.reconfigure(hostConfig(appDir, "e2e-b", hostPorts[1] ?? 0, 300));
    await b.reload();
    await waitFor(() => /Cannot apply a changed affinity_ttl on reload: it takes effect when the core restarts/.test(b.server.errorLog()), {
      timeoutMs: 15_000,
      what: "B's core to say the changed TTL applies when it restarts",
    });
    const r = await hit(1, "after-ttl-reload", undefined);
    t.is(r.status, 200, r.text);
  });
}
