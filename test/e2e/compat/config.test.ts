/**
 * Black-box compatibility: Apache configurations as Passenger's docs and
 * hosting panels write them, through a real Apache + mod_ferry, with an app
 * (test/fixtures/apps/compat-app) we treat as unseen. One Apache, one vhost
 * per scenario.
 */
import test from "ava";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { ApacheServer, makeTempRoot, prepareApp, waitFor, type VHostSpec, started, stopAndRemove } from "../../helpers/apache.js";
import { request, type HttpResult } from "../../helpers/e2e-http.js";
import { ferryStatus, groupOf } from "../../helpers/ferry-status.js";

let server: ApacheServer | undefined;
let root = "";
const apps: Record<string, string> = {};

/** Apache's module directory (for mod_rewrite). */
function modulesDir(): string {
  try {
    const dir = execFileSync("apxs", ["-q", "LIBEXECDIR"], { encoding: "utf8" }).trim();
    if (dir !== "") return dir;
  } catch {
    /* no apxs: Debian's path */
  }
  return "/usr/lib/apache2/modules";
}

/** PassengerLogFile: the core's log, app output included. */
function logFile(): string {
  return path.join(root, "ferry.log");
}

function readLog(): string {
  try {
    return readFileSync(logFile(), "utf8");
  } catch {
    return "";
  }
}

const srv = (): ApacheServer => started(server);

function get(host: string, p: string, headers?: Record<string, string>): Promise<HttpResult> {
  return request(srv().port, { path: p, host, timeoutMs: 45_000, ...(headers === undefined ? {} : { headers }) });
}

function jsonOf(res: HttpResult): Record<string, unknown> {
  const v: unknown = JSON.parse(res.text);
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`Cannot parse: not an object: ${res.text}`);
  return v as Record<string, unknown>;
}

/** An app root with the startup file Passenger users name explicitly (server.js). */
function explicit(name: string, ...extra: string[]): string[] {
  return [`PassengerAppRoot "${apps[name]}"`, "PassengerStartupFile server.js", ...extra];
}

test.before(async () => {
  root = await makeTempRoot("compat-config");
  const names = ["pre", "startup", "auto", "sub", "hta", "off", "dev", "prod", "min3", "sticky", "shared", "gen", "rails", "www", "dev2", "rw"];
  for (const n of names) apps[n] = await prepareApp(root, "compat-app", n);
  const dir = (n: string): string => apps[n] ?? "";
  // Autodetected apps: app.js in the parent of the DocumentRoot.
  for (const n of ["pre", "auto", "hta", "off"]) await rename(path.join(dir(n), "server.js"), path.join(dir(n), "app.js"));
  await mkdir(path.join(dir("auto"), "public", "static"), { recursive: true });
  await writeFile(path.join(dir("auto"), "public", "static", "file.txt"), "static file\n");
  await writeFile(path.join(dir("auto"), "public", "robots.txt"), "User-agent: *\n");
  await writeFile(path.join(dir("hta"), "public", ".htaccess"), "PassengerEnabled on\nPassengerStickySessions on\n# As CloudLinux's panel writes app variables:\nSetEnv DB_HOST db.internal\nSetEnv API_KEY \"k e y\"\n");
  // express-generator's layout: an extensionless bin/www with a shebang.
  await mkdir(path.join(dir("www"), "bin"), { recursive: true });
  await writeFile(path.join(dir("www"), "bin", "www"), "#!/usr/bin/env node\n'use strict';\nrequire('../server.js');\n", { mode: 0o755 });
  await writeFile(
    path.join(dir("rw"), "public", ".htaccess"),
    "RewriteEngine On\nRewriteRule ^hta-old/(.*)$ echo?from=$1 [L,QSA]\nRewriteRule ^moved$ /echo [R=301,L]\n",
  );
  const site = path.join(root, "site");
  await mkdir(site, { recursive: true });
  await writeFile(path.join(site, "index.html"), "static root website\n");

  const vhosts: VHostSpec[] = [
    // First vhost = Apache's default for Host 127.0.0.1: the PassengerPreStart target.
    { serverName: "pre.test", documentRoot: path.join(dir("pre"), "public") },
    {
      serverName: "startup.test",
      documentRoot: path.join(dir("startup"), "public"),
      // As Plesk writes it: PassengerEnabled On, and an absolute PassengerNodejs.
      directives: [
        "PassengerEnabled On",
        `PassengerAppRoot "${dir("startup")}"`,
        "PassengerAppType node",
        "PassengerStartupFile server.js",
        `PassengerNodejs "${process.execPath}"`,
      ],
    },
    {
      serverName: "auto.test",
      documentRoot: path.join(dir("auto"), "public"),
      directives: ["<Location /static>", "    PassengerEnabled off", "</Location>"],
    },
    {
      serverName: "sub.test",
      documentRoot: site,
      directives: [
        "DirectoryIndex index.html",
        `Alias /app "${dir("sub")}/public"`,
        `<Directory "${dir("sub")}/public">`,
        "    Require all granted",
        "</Directory>",
        "<Location /app>",
        "    PassengerBaseURI /app",
        `    PassengerAppRoot "${dir("sub")}"`,
        "    PassengerStartupFile server.js",
        "</Location>",
      ],
    },
    { serverName: "hta.test", documentRoot: path.join(dir("hta"), "public"), directives: ["PassengerEnabled off"] },
    { serverName: "off.test", documentRoot: path.join(dir("off"), "public"), directives: ["PassengerEnabled off"] },
    {
      serverName: "dev.test",
      documentRoot: path.join(dir("dev"), "public"),
      directives: explicit("dev", "PassengerAppEnv development", "PassengerFriendlyErrorPages on", "SetEnv COMPAT_CRASH_ON_START 1"),
    },
    {
      serverName: "dev2.test",
      documentRoot: path.join(dir("dev2"), "public"),
      directives: explicit("dev2", "PassengerAppEnv development", "SetEnv COMPAT_CRASH_ON_START 1"),
    },
    {
      serverName: "prod.test",
      documentRoot: path.join(dir("prod"), "public"),
      directives: explicit("prod", "SetEnv COMPAT_CRASH_ON_START 1"),
    },
    { serverName: "min3.test", documentRoot: path.join(dir("min3"), "public"), directives: explicit("min3", "PassengerMinInstances 3") },
    {
      serverName: "sticky.test",
      documentRoot: path.join(dir("sticky"), "public"),
      directives: explicit("sticky", "PassengerMinInstances 2", "PassengerStickySessions on", "PassengerStickySessionsCookieName my_route"),
    },
    { serverName: "shared1.test", documentRoot: path.join(dir("shared"), "public"), directives: explicit("shared", "PassengerAppGroupName shared-group") },
    { serverName: "shared2.test", documentRoot: path.join(dir("shared"), "public"), directives: explicit("shared", "PassengerAppGroupName shared-group") },
    {
      serverName: "gen.test",
      documentRoot: path.join(dir("gen"), "public"),
      directives: [`PassengerAppRoot "${dir("gen")}"`, 'PassengerAppStartCommand "node server.js --port=$PORT"'],
    },
    {
      serverName: "www.test",
      documentRoot: path.join(dir("www"), "public"),
      directives: [`PassengerAppRoot "${dir("www")}"`, "PassengerAppType node", "PassengerStartupFile bin/www"],
    },
    {
      serverName: "rw.test",
      documentRoot: path.join(dir("rw"), "public"),
      directives: [...explicit("rw"), "RewriteEngine On", "RewriteRule ^/old/(.*)$ /echo?from=$1 [PT,L,QSA]"],
    },
    { serverName: "rails.test", documentRoot: path.join(dir("rails"), "public"), directives: explicit("rails", "RailsEnv staging") },
    { serverName: "rack.test", documentRoot: path.join(dir("rails"), "public"), directives: explicit("rails", "RackEnv qa") },
  ];
  server = await ApacheServer.start({
    root,
    vhosts,
    global: [`LoadModule rewrite_module "${path.join(modulesDir(), "mod_rewrite.so")}"`, "PassengerMaxPoolSize 17", "PassengerPreStart http://127.0.0.1:{{PORT}}/", `PassengerLogFile "${logFile()}"`, "PassengerLogFormat json"],
  });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(40));
});

test.serial("PassengerPreStart spawns the app before any request, and PassengerMaxPoolSize applies", async (t) => {
  const st = await waitFor(
    async () => {
      const s = await ferryStatus(srv());
      const g = groupOf(s, apps.pre ?? "");
      return g !== undefined && g.processes.some((p) => p.state === "ready") ? s : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250, what: "the PassengerPreStart app to be spawned" },
  );
  t.is(st.maxPoolSize, 17);
});

test.serial("PassengerLogFile gets the apps' output, with the app and the pid", async (t) => {
  const pid = Number(jsonOf(await get("startup.test", "/log?tag=COMPAT-LOGFILE")).pid);
  const line = await waitFor(
    () => readLog().split("\n").find((l) => l.includes("compat-stderr COMPAT-LOGFILE")),
    { timeoutMs: 10_000, what: "the app's stderr in PassengerLogFile" },
  );
  const entry = JSON.parse(line) as { pid?: number; app?: string; stream?: string };
  t.is(entry.pid, pid);
  t.is(entry.stream, "stderr");
  t.true(String(entry.app).startsWith(apps.startup ?? "?"));
  t.false(srv().errorLog().includes("COMPAT-LOGFILE"), "not in Apache's ErrorLog");
});

test.serial("PassengerAppRoot + PassengerAppType node + PassengerStartupFile server.js (no app.js) + PassengerNodejs", async (t) => {
  const res = await get("startup.test", "/?q=1");
  t.is(res.status, 200, res.text);
  const body = jsonOf(res);
  t.is(body.url, "/?q=1");
  t.is(body.nodeEnv, "production");
  t.is(body.appEnv, "production");
  t.regex(String(res.headers["x-powered-by"]), /Ferry/);
});

test.serial("PassengerStartupFile bin/www (express-generator: no extension, a shebang)", async (t) => {
  const res = await get("www.test", "/");
  t.is(res.status, 200, res.text);
  t.is(typeof jsonOf(res).pid, "number");
});

test.serial("DocumentRoot public/ with app.js autodetected; files and PassengerEnabled off locations stay Apache's", async (t) => {
  const app = await get("auto.test", "/");
  t.is(app.status, 200);
  t.is(typeof jsonOf(app).pid, "number");
  const file = await get("auto.test", "/robots.txt");
  t.is(file.status, 200);
  t.is(file.text, "User-agent: *\n");
  t.is(file.headers["x-powered-by"], undefined);
  const inOff = await get("auto.test", "/static/file.txt");
  t.is(inOff.text, "static file\n");
  // A missing file under the PassengerEnabled off location is Apache's 404, not the app's.
  const missing = await get("auto.test", "/static/missing.txt");
  t.is(missing.status, 404);
  t.regex(missing.text, /Not Found/);
  t.notRegex(missing.text, /"error"/);
  t.is(missing.headers["x-powered-by"], undefined);
});

test.serial("PassengerBaseURI /app with an Alias: the app sees the full URI and PASSENGER_BASE_URI; the site stays static", async (t) => {
  const res = await get("sub.test", "/app/?x=1");
  t.is(res.status, 200, res.text);
  const body = jsonOf(res);
  t.is(body.url, "/app/?x=1");
  t.is(body.base, "/app");
  // The base URI itself, without a trailing slash: the app's, not mod_dir's 301.
  const bare = await get("sub.test", "/app");
  t.is(bare.status, 200, bare.text);
  t.is(jsonOf(bare).url, "/app");
  const redirect = await get("sub.test", "/app/redirect-rel");
  t.is(redirect.status, 302);
  t.is(redirect.headers.location, "/app/landed");
  const site = await get("sub.test", "/");
  t.is(site.text, "static root website\n");
  const outside = await get("sub.test", "/application");
  t.is(outside.status, 404);
  t.is(outside.headers["x-powered-by"], undefined);
});

test.serial(".htaccess with PassengerEnabled on (+ sticky sessions, SetEnv) serves the app of a vhost that has PassengerEnabled off", async (t) => {
  const res = await get("hta.test", "/");
  t.is(res.status, 200, res.text);
  t.is(typeof jsonOf(res).pid, "number");
  const cookies = res.headers["set-cookie"] ?? [];
  t.true(cookies.some((c) => c.startsWith("_passenger_route=")), `sticky cookie from .htaccess: ${cookies.join(" | ")}`);
  t.deepEqual(jsonOf(await get("hta.test", "/env?name=DB_HOST")), { name: "DB_HOST", value: "db.internal" });
  t.deepEqual(jsonOf(await get("hta.test", "/env?name=API_KEY")), { name: "API_KEY", value: "k e y" });
  const off = await get("off.test", "/");
  t.is(off.status, 404);
  t.is(off.headers["x-powered-by"], undefined);
});

test.serial("PassengerAppEnv development + PassengerFriendlyErrorPages: a boot failure shows the app's output; production does not", async (t) => {
  const dev = await get("dev.test", "/");
  t.is(dev.status, 500);
  t.regex(String(dev.headers["content-type"]), /text\/html/);
  t.regex(dev.text, /COMPAT-BOOT-FAILURE/);
  // Friendly pages are on by default in development (no PassengerFriendlyErrorPages line).
  const dev2 = await get("dev2.test", "/");
  t.is(dev2.status, 500);
  t.regex(dev2.text, /COMPAT-BOOT-FAILURE/);
  const prod = await get("prod.test", "/");
  t.is(prod.status, 500);
  t.notRegex(prod.text, /COMPAT-BOOT-FAILURE/);
  const id = /id="error-id">([0-9a-f]+)</.exec(prod.text)?.[1];
  t.truthy(id, prod.text);
  await waitFor(() => readLog().includes(id ?? "?"), { timeoutMs: 10_000, what: "the error ID in PassengerLogFile" });
  // The failing app's own output is in PassengerLogFile too.
  t.regex(readLog(), /COMPAT-BOOT-FAILURE/);
});

test.serial("PassengerMinInstances 3 spawns 3 processes after the first request", async (t) => {
  t.is((await get("min3.test", "/")).status, 200);
  const g = await waitFor(
    async () => {
      const found = groupOf(await ferryStatus(srv()), apps.min3 ?? "");
      return found !== undefined && found.processes.filter((p) => p.state === "ready").length === 3 ? found : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250, what: "3 ready processes" },
  );
  t.is(new Set(g.processes.map((p) => p.pid)).size, 3);
});

test.serial("PassengerStickySessions with a custom cookie name keeps in-process session state across 2 processes", async (t) => {
  t.is((await get("sticky.test", "/")).status, 200);
  await waitFor(
    async () => (groupOf(await ferryStatus(srv()), apps.sticky ?? "")?.processes.filter((p) => p.state === "ready").length ?? 0) >= 2,
    { timeoutMs: 30_000, intervalMs: 250, what: "2 ready processes" },
  );
  // Several long-polling clients at once (least-busy routing spreads their
  // first requests); each then polls with its cookies and must always reach
  // the process that holds its session.
  const client = async (): Promise<{ pids: Set<number>; known: boolean[]; cookieNames: string[] }> => {
    const jar = new Map<string, string>();
    const pids = new Set<number>();
    const known: boolean[] = [];
    const cookieNames: string[] = [];
    for (let i = 0; i < 6; i++) {
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
      const res = await get("sticky.test", "/poll", cookie === "" ? undefined : { Cookie: cookie });
      if (res.status !== 200) throw new Error(`Cannot poll: ${res.status} ${res.text}`);
      for (const c of res.headers["set-cookie"] ?? []) {
        const [pair] = c.split(";");
        const eq = (pair ?? "").indexOf("=");
        const name = (pair ?? "").slice(0, eq);
        jar.set(name, (pair ?? "").slice(eq + 1));
        cookieNames.push(name);
      }
      const body = jsonOf(res);
      pids.add(Number(body.pid));
      known.push(body.known === true);
    }
    return { pids, known, cookieNames };
  };
  const results = await Promise.all([client(), client(), client(), client(), client(), client()]);
  for (const r of results) {
    t.is(r.pids.size, 1, "one client, one process");
    t.deepEqual(r.known, [false, true, true, true, true, true], "the session is found on every later poll");
    t.true(r.cookieNames.includes("my_route"));
    t.false(r.cookieNames.includes("_passenger_route"));
  }
  const allPids = new Set(results.flatMap((r) => [...r.pids]));
  t.true(allPids.size >= 2, `clients were spread over ${allPids.size} process(es)`);
});

test.serial("PassengerAppGroupName shared by two vhosts makes one pool group", async (t) => {
  const a = jsonOf(await get("shared1.test", "/"));
  const b = jsonOf(await get("shared2.test", "/"));
  t.is(a.pid, b.pid);
  const st = await ferryStatus(srv());
  t.is(st.groups.filter((g) => g.name === "shared-group").length, 1);
  t.is(st.groups.filter((g) => g.appRoot === apps.shared).length, 1);
});

test.serial('PassengerAppStartCommand "node server.js --port=$PORT": a generic app on the port it was given', async (t) => {
  const res = await get("gen.test", "/");
  t.is(res.status, 200, res.text);
  const body = jsonOf(res);
  const argv = body.argv;
  t.true(Array.isArray(argv));
  t.deepEqual(argv, [`--port=${String(body.port)}`]);
  t.regex(String(body.port), /^\d+$/);
});

test.serial("mod_rewrite: vhost and .htaccess rewrites reach the app with the new URI; [R] stays Apache's", async (t) => {
  const vhost = await get("rw.test", "/old/abc?x=1");
  t.is(vhost.status, 200, vhost.text);
  t.is(jsonOf(vhost).url, "/echo?from=abc&x=1");
  const hta = await get("rw.test", "/hta-old/abc?x=1");
  t.is(hta.status, 200, hta.text);
  t.is(jsonOf(hta).url, "/echo?from=abc&x=1");
  const moved = await get("rw.test", "/moved");
  t.is(moved.status, 301);
  t.regex(String(moved.headers.location), /\/echo$/);
  // No rule matched: the client's bytes, unchanged.
  const plain = await get("rw.test", "/echo?y=%2F&z=a+b");
  t.is(jsonOf(plain).url, "/echo?y=%2F&z=a+b");
  const encoded = await get("rw.test", "/a%20b?y=%2F");
  t.is(jsonOf(encoded).url, "/a%20b?y=%2F");
});

test.serial("RailsEnv and RackEnv are PassengerAppEnv: NODE_ENV, and one group per env", async (t) => {
  const rails = jsonOf(await get("rails.test", "/"));
  const rack = jsonOf(await get("rack.test", "/"));
  t.is(rails.nodeEnv, "staging");
  t.is(rails.appEnv, "staging");
  t.is(rack.nodeEnv, "qa");
  t.not(rails.pid, rack.pid);
});
