/**
 * The first hour on a stock Debian Apache, end to end: a private copy of
 * Debian's own /etc/apache2 layout (never the real one), `ferry apache
 * install` into it, `a2enmod ferry`, and every Apache example of README.md
 * and docs/*.md as a site (`a2ensite`) or server config (`a2enconf`), copied
 * verbatim except for the host-specific parts (paths under /srv, ports,
 * addresses, the secret file). Each answers from its app; `ferry apache check`
 * passes; with Passenger's module enabled too it says what to do.
 */
import test from "ava";
import { execFile as execFileCb, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { appendFile, chmod, cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT, freePort, isAlive, makeTempRoot, prepareApp, processesUnder, waitFor } from "../helpers/apache.js";
import { request } from "../helpers/e2e-http.js";
import { RedisServer } from "../helpers/redis.js";

const execFile = promisify(execFileCb);
const FERRY = path.join(REPO_ROOT, "bin/ferry.js");

let root = "";
let confdir = "";
let port = 0;
let apache: ChildProcess | undefined;
let apacheOut = "";
let redis: RedisServer | undefined;
const examples: Array<{ source: string; file: string; hosts: string[]; kind: "site" | "conf" }> = [];

/** Every ```apache block of README.md and docs/*.md, with where it came from. */
function apacheBlocks(): Array<{ source: string; text: string }> {
  const files = ["README.md", ...readdirSync(path.join(REPO_ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
  const out: Array<{ source: string; text: string }> = [];
  for (const f of files) {
    const md = readFileSync(path.join(REPO_ROOT, f), "utf8");
    for (const m of md.matchAll(/^```apache\n([\s\S]*?)^```$/gm)) out.push({ source: f, text: m[1] ?? "" });
  }
  return out;
}

const env = (): NodeJS.ProcessEnv => ({ ...process.env, APACHE_CONFDIR: confdir });

async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await execFile(cmd, args, { env: env(), timeout: 60_000 });
  return `${stdout}${stderr}`;
}

function errorLog(): string {
  try {
    return readFileSync(path.join(root, "log", "error.log"), "utf8");
  } catch {
    return "";
  }
}

test.before(async () => {
  if (!existsSync("/etc/apache2/apache2.conf")) throw new Error("Cannot run: Debian's apache2 package is not installed (sh scripts/install-deps.sh)");
  root = await makeTempRoot("e2e-first-hour");
  confdir = path.join(root, "apache2");
  await cp("/etc/apache2", confdir, { recursive: true, verbatimSymlinks: true });
  for (const d of ["run", "lock", "log", "srv", "etc"]) await mkdir(path.join(root, d), { recursive: true, mode: 0o755 });
  // Only the host-specific parts change: where Apache keeps its runtime files and which port it listens on.
  await appendFile(path.join(confdir, "envvars"), [
    "", `export APACHE_RUN_DIR=${root}/run`, `export APACHE_PID_FILE=${root}/run/apache2.pid`,
    `export APACHE_LOCK_DIR=${root}/lock`, `export APACHE_LOG_DIR=${root}/log`, "",
  ].join("\n"));
  port = await freePort();
  const ports = await readFile(path.join(confdir, "ports.conf"), "utf8");
  await writeFile(path.join(confdir, "ports.conf"), ports.replace(/^Listen 80$/m, `Listen 127.0.0.1:${port}`).replace(/^(\s*)Listen 443$/gm, "$1# Listen 443"));
  const dflt = path.join(confdir, "sites-available", "000-default.conf");
  await writeFile(dflt, (await readFile(dflt, "utf8")).replace("<VirtualHost *:80>", `<VirtualHost *:${port}>`));

  // The apps the examples serve, under a private /srv.
  for (const name of ["blog", "shop", "wiki"]) await prepareApp(path.join(root, "srv-apps"), "e2e-app", name);
  const srv = path.join(root, "srv-apps", "apps");
  const secret = path.join(root, "etc", "affinity.secret");
  await writeFile(secret, "first-hour-affinity-secret-0123456789", { mode: 0o600 });
  redis = await RedisServer.start();
  const metricsPort = await freePort();
  const affinityPort = await freePort();
  const subst = (text: string): string => text
    .replaceAll("/srv/", `${srv}/`)
    .replaceAll("<VirtualHost *:80>", `<VirtualHost *:${port}>`)
    .replaceAll("127.0.0.1:9464", `127.0.0.1:${metricsPort}`)
    .replaceAll("redis://10.0.0.2:6379/0", `redis://127.0.0.1:${redis?.port ?? 0}/0`)
    .replaceAll("10.0.0.11:7400", `127.0.0.1:${affinityPort}`)
    .replaceAll("/etc/ferry/affinity.secret", secret);

  // `ferry apache install` into the private copy, then Debian's own tools.
  await sh(process.execPath, [FERRY, "apache", "install", "--dest", path.join(confdir, "mods-available")]);
  await sh("a2enmod", ["-q", "ferry"]);
  const blocks = apacheBlocks();
  for (const [i, b] of blocks.entries()) {
    const name = `example${i}`;
    const site = /<VirtualHost/.test(b.text);
    const dir = path.join(confdir, site ? "sites-available" : "conf-available");
    await writeFile(path.join(dir, `${name}.conf`), `# From ${b.source}\n${subst(b.text)}`);
    await sh(site ? "a2ensite" : "a2enconf", ["-q", name]);
    examples.push({ source: b.source, file: name, kind: site ? "site" : "conf", hosts: [...b.text.matchAll(/ServerName\s+(\S+)/g)].map((m) => m[1] ?? "") });
  }
  // Started as Debian's apache2ctl would (envvars, -d the confdir), in the foreground.
  apache = spawn("/bin/sh", ["-c", '. "$1/envvars" && exec /usr/sbin/apache2 -d "$1" -DFOREGROUND', "sh", confdir], { env: env(), stdio: ["ignore", "pipe", "pipe"] });
  apache.stdout?.on("data", (d: Buffer) => (apacheOut += d.toString()));
  apache.stderr?.on("data", (d: Buffer) => (apacheOut += d.toString()));
  await waitFor(async () => {
    if (apache?.exitCode !== null) throw new Error(`apache2 exited: ${apacheOut}\n${errorLog().slice(-3000)}`);
    return (await request(port, { path: "/server-status-nonexistent", host: "localhost" }).catch(() => undefined)) !== undefined;
  }, { timeoutMs: 30_000, intervalMs: 200, what: "Apache to listen" });
});

test.after.always(async () => {
  if (apache?.pid !== undefined && apache.exitCode === null) {
    const exited = once(apache, "exit");
    apache.kill("SIGTERM");
    const t = setTimeout(() => apache?.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(t);
  }
  if (root !== "") {
    await waitFor(() => processesUnder(root).length === 0, { timeoutMs: 15_000, what: "the core and apps to exit" }).catch(() => {
      for (const pid of processesUnder(root)) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    });
  }
  await redis?.destroy();
  if (root !== "") await rm(root, { recursive: true, force: true });
});

test.afterEach.always((t) => {
  if (!t.passed) t.log(`${apacheOut.slice(-1000)}\n--- error.log ---\n${errorLog().slice(-4000)}`);
});

test.serial("every Apache example of README.md and docs/ answers from its app on Debian's layout", async (t) => {
  t.true(examples.length >= 5, `found ${examples.length} examples`);
  const hosts = examples.flatMap((e) => e.hosts);
  t.true(hosts.includes("example.com") && hosts.includes("www.example.com"), hosts.join(","));
  for (const host of hosts) {
    const r = await request(port, { path: "/", host });
    t.is(r.status, 200, `${host}: ${r.text.slice(0, 200)}`);
    t.regex(r.text, /hello from e2e-app/, host);
  }
  // The sub-URI example (server config): /wiki on the default site.
  const sub = await request(port, { path: "/wiki/url", host: "localhost" });
  t.is(sub.status, 200, sub.text.slice(0, 200));
  t.regex(sub.text, /"base":"\/wiki"/);
});

test.serial("the metrics example serves /metrics", async (t) => {
  const conf = examples.find((e) => e.source === "docs/metrics.md");
  t.truthy(conf);
  const text = await readFile(path.join(confdir, "conf-available", `${conf?.file ?? ""}.conf`), "utf8");
  const m = /PassengerMetricsListen 127\.0\.0\.1:(\d+)/.exec(text);
  const r = await fetch(`http://127.0.0.1:${m?.[1] ?? "0"}/metrics`, { signal: AbortSignal.timeout(5000) });
  t.is(r.status, 200);
  t.regex(await r.text(), /^ferry_app_requests_total\{/m);
});

test.serial("ferry apache check passes on it: configtest, then every app", async (t) => {
  const { stdout } = await execFile(process.execPath, [FERRY, "apache", "check", "--confdir", confdir], { env: env(), timeout: 60_000 });
  t.regex(stdout, /^OK: configtest passed, [3-9] apps checked/m);
});

test.serial("ferry apache check reports each problem on one line and exits 1", async (t) => {
  const bad = path.join(confdir, "sites-available", "broken.conf");
  await writeFile(bad, [
    `<VirtualHost *:${port}>`, "    ServerName broken.test", `    PassengerAppRoot ${root}/srv-apps/apps/missing`, "</VirtualHost>",
    `<VirtualHost *:${port}>`, "    ServerName nouser.test", `    DocumentRoot ${root}/srv-apps/apps/blog/public`, "    PassengerUser no-such-user-h14",
    "    PassengerNodejs /nonexistent/node", "</VirtualHost>", "",
  ].join("\n"));
  await sh("a2ensite", ["-q", "broken"]);
  try {
    const r = await execFile(process.execPath, [FERRY, "apache", "check", "--confdir", confdir], { env: env(), timeout: 60_000 }).then(
      () => ({ code: 0, out: "" }), (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, out: e.stdout ?? "" }));
    t.is(r.code, 1);
    t.regex(r.out, /^broken\.test \(sites-enabled\/broken\.conf:1\): app root \S+\/missing does not exist$/m);
    t.regex(r.out, /^nouser\.test \(sites-enabled\/broken\.conf:5\): PassengerUser no-such-user-h14 does not exist$/m);
    t.regex(r.out, /^nouser\.test \(sites-enabled\/broken\.conf:5\): Node\.js not found: "\/nonexistent\/node" is not an executable/m);
    t.regex(r.out, /^3 problems found/m);
  } finally {
    await sh("a2dissite", ["-q", "broken"]);
  }
});

test.serial("Passenger's module enabled next to Ferry: install and check say what to do", async (t) => {
  await writeFile(path.join(confdir, "mods-available", "passenger.load"), "LoadModule passenger_module /usr/lib/apache2/modules/mod_passenger.so\n");
  await sh("a2enmod", ["-q", "passenger"]);
  try {
    const install = await sh(process.execPath, [FERRY, "apache", "install", "--dest", path.join(confdir, "mods-available")]);
    t.regex(install, /Warning: Passenger's module is enabled/);
    t.regex(install, /a2dismod passenger/);
    const r = await execFile(process.execPath, [FERRY, "apache", "check", "--confdir", confdir], { env: env(), timeout: 60_000 }).then(
      () => ({ code: 0, out: "" }), (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, out: e.stdout ?? "" }));
    t.is(r.code, 1);
    t.regex(r.out, /^Apache \(mods-enabled\/passenger\.load:1\): Passenger's module \(passenger_module\) is enabled next to Ferry: .*"a2dismod passenger" and keep your VirtualHosts as they are/m);
  } finally {
    await sh("a2dismod", ["-q", "passenger"]);
  }
});
