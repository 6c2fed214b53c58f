/**
 * Issue 4, isolation, through a real Apache run as root. The attacker is a
 * tenant's app (the connect/read attempts run inside tenant D's app process,
 * as its user) or a local user who is neither root nor Apache's User (run
 * with setpriv). Shows: D cannot connect to tenant E's app socket (EACCES)
 * nor list the socket directories; no app user can connect to the core's
 * module socket, read the admin tokens or use the admin API; a local user who
 * gets through the socket's permissions (member of Apache's group) is still
 * refused by the peer-credential check, and the core logs it.
 */
import test from "ava";
import { execFile as execFileCb } from "node:child_process";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { ApacheServer, REPO_ROOT, makeTempRoot, waitFor, started, stopAndRemove } from "../../helpers/apache.js";
import { getJson, request } from "../../helpers/e2e-http.js";
import { ensureUser, lookupGroup, prepareTenantApp, removeUser, type TestUser } from "../../helpers/users.js";

const execFile = promisify(execFileCb);
const FIXTURE = path.join(REPO_ROOT, "test/fixtures/apps/tenant-app");
const USERS = ["ferrytest-d", "ferrytest-e", "ferrytest-f"] as const;

let root = "";
let server: ApacheServer | undefined;
let d: TestUser;
let e: TestUser;
let f: TestUser;

const srv = (): ApacheServer => started(server);

/** Ask tenant D's app (running as D) to try something; returns its JSON answer. */
async function fromTenantD(route: string, query: Record<string, string>): Promise<Record<string, unknown>> {
  return getJson(srv().port, `${route}?${new URLSearchParams(query).toString()}`, "d.test");
}

/** The app socket directory (under <instance>/apps.s) owned by `uid`, and a socket in it. */
async function appSocketOf(uid: number): Promise<{ dir: string; socket: string }> {
  const base = path.join(srv().instanceDir, "apps.s");
  for (const name of await readdir(base)) {
    const dir = path.join(base, name);
    const st = await stat(dir);
    if (!st.isDirectory() || st.uid !== uid) continue;
    const sock = (await readdir(dir)).find((x) => x.endsWith(".sock"));
    if (sock !== undefined) return { dir, socket: path.join(dir, sock) };
  }
  throw new Error(`Cannot find an app socket of uid ${uid} under ${base}`);
}

/** Connect to a Unix socket as another user (setpriv); prints EACCES/…, or "closed-by-peer"/"open". */
async function connectAs(user: TestUser, groups: readonly number[], socketPath: string): Promise<string> {
  const probe = `
    const s = require("net").connect(${JSON.stringify(socketPath)});
    let connected = false;
    const done = (r) => { console.log(r); process.exit(0); };
    s.on("connect", () => { connected = true; setTimeout(() => done("open"), 5000); });
    s.on("error", (e) => done(connected ? "closed-by-peer" : e.code));
    s.on("close", () => done(connected ? "closed-by-peer" : "closed"));
    s.resume();`;
  const args = [`--reuid=${user.uid}`, `--regid=${user.gid}`, groups.length === 0 ? "--clear-groups" : `--groups=${groups.join(",")}`,
    "--", process.execPath, "-e", probe];
  const out = await execFile("setpriv", args, { timeout: 20_000 });
  return out.stdout.trim();
}

test.before(async () => {
  root = await makeTempRoot("sec-iso");
  d = await ensureUser(USERS[0]);
  e = await ensureUser(USERS[1]);
  f = await ensureUser(USERS[2]);
  const appD = await prepareTenantApp(root, FIXTURE, "d", d);
  const appE = await prepareTenantApp(root, FIXTURE, "e", e);
  server = await ApacheServer.start({
    root,
    vhosts: [
      { serverName: "d.test", documentRoot: path.join(appD, "public") },
      { serverName: "e.test", documentRoot: path.join(appE, "public") },
    ],
  });
  // Both apps up (each has a socket).
  await getJson(srv().port, "/pid", "d.test");
  await getJson(srv().port, "/pid", "e.test");
});

test.after.always(async () => {
  await stopAndRemove(server, root);
  for (const u of USERS) await removeUser(u).catch(() => undefined);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(40));
});

test("each app's socket directory is 0700 and owned by the app's user", async (t) => {
  for (const u of [d, e]) {
    const { dir } = await appSocketOf(u.uid);
    const st = await stat(dir);
    t.is(st.mode & 0o777, 0o700, dir);
    t.is(st.uid, u.uid);
  }
  const base = await stat(path.join(srv().instanceDir, "apps.s"));
  t.is(base.mode & 0o777, 0o711, "apps.s: traversable, not listable");
  t.is(base.uid, 0);
});

test("tenant D's app connecting to tenant E's app socket gets EACCES (and its own socket connects)", async (t) => {
  const theirs = await appSocketOf(e.uid);
  const mine = await appSocketOf(d.uid);
  t.is((await fromTenantD("/connect", { path: theirs.socket })).result, "EACCES");
  t.is((await fromTenantD("/connect", { path: mine.socket })).result, "connected");
});

test("tenant D's app cannot list the socket directories", async (t) => {
  const theirs = await appSocketOf(e.uid);
  t.is((await fromTenantD("/readdir", { path: path.join(srv().instanceDir, "apps.s") })).result, "EACCES");
  t.is((await fromTenantD("/readdir", { path: theirs.dir })).result, "EACCES");
});

test("an app cannot connect to the core's module socket", async (t) => {
  t.is((await fromTenantD("/connect", { path: path.join(srv().instanceDir, "module.sock") })).result, "EACCES");
});

test("the admin tokens and the core config are not readable by app users", async (t) => {
  const dir = srv().instanceDir;
  for (const name of ["admin_token", "read_only_token", "config.json"]) {
    const st = await stat(path.join(dir, name));
    t.is(st.uid, 0, name);
    t.is(st.mode & 0o077, 0, `${name} mode ${(st.mode & 0o777).toString(8)}`);
    t.is((await fromTenantD("/read", { path: path.join(dir, name) })).result, "EACCES", name);
  }
});

test("an app cannot reach the admin API (EACCES): no status, no restart, not with a guessed token", async (t) => {
  const sock = path.join(srv().instanceDir, "control.sock");
  const st = await stat(sock);
  t.is(st.mode & 0o777, 0o600, "control.sock: root's only without PassengerAdminGroup");
  const status = await fromTenantD("/control", { sock, path: "/status" });
  t.is(status.result, "EACCES", JSON.stringify(status));
  const restart = await fromTenantD("/control", { sock, path: "/restart", method: "POST", body: JSON.stringify({ app: "e" }) });
  t.is(restart.result, "EACCES", JSON.stringify(restart));
  const guessed = await fromTenantD("/control", { sock, path: "/restart", method: "POST", token: "0".repeat(48), body: "{}" });
  t.is(guessed.result, "EACCES", JSON.stringify(guessed));
  // Tenant E's app kept running (no restart happened).
  t.is((await request(srv().port, { path: "/", host: "e.test" })).status, 200);
});

test("an app cannot read the instance's registry files (properties.json, core.pid)", async (t) => {
  for (const name of ["properties.json", "core.pid"]) {
    t.is((await fromTenantD("/read", { path: path.join(srv().instanceDir, name) })).result, "EACCES", name);
  }
});

test("a local non-root, non-Apache user cannot connect to the module socket (EACCES)", async (t) => {
  t.is(await connectAs(f, [f.gid], path.join(srv().instanceDir, "module.sock")), "EACCES");
});

test("a local user in Apache's group gets through the permissions but is refused by peer credentials, and the core logs it", async (t) => {
  const apacheGroup = lookupGroup("www-data");
  if (apacheGroup === undefined) return t.fail("no group www-data");
  const result = await connectAs(f, [f.gid, apacheGroup.gid], path.join(srv().instanceDir, "module.sock"));
  t.is(result, "closed-by-peer");
  await waitFor(() => srv().errorLog().includes(`Cannot accept module connection from uid ${f.uid}`), {
    timeoutMs: 10_000, what: "the core to log the refused connection",
  });
  t.pass();
  // Apache itself is still served.
  t.is((await request(srv().port, { path: "/", host: "d.test" })).status, 200);
});
