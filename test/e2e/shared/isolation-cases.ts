/**
 * End-to-end cases every front end must pass the same way: tenant isolation
 * (issue 4), with the front end run as root and its workers as www-data. The
 * attacker is a tenant's app (the connect/read attempts run inside tenant D's
 * app process, as its user) or a local user who is neither root nor the web
 * server's user (run with setpriv). Shows: D cannot connect to tenant E's app
 * socket (EACCES) nor list the socket directories; no app user can connect
 * to the core's module socket, read the admin tokens or use the admin API;
 * an app that runs as the workers' user gets through the socket's
 * permissions but is refused as no process of the web server's; a
 * local user who gets through the socket's permissions (member of the
 * workers' group) is still refused by the peer-credential check, and the
 * core logs it. Run through Apache by test/e2e/security/isolation.test.ts and
 * through nginx by test/e2e/nginx/security-isolation.test.ts; each names its
 * test users after its front end (testUserName), so both run in parallel.
 */
import type { TestFn } from "ava";
import { execFile as execFileCb } from "node:child_process";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT, waitFor } from "../../helpers/apache.js";
import { getJson, request } from "../../helpers/e2e-http.js";
import { ensureUser, lookupGroup, lookupUser, prepareTenantApp, removeUser, testUserName, type TestUser } from "../../helpers/users.js";
import { type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

const execFile = promisify(execFileCb);
const FIXTURE = path.join(REPO_ROOT, "test/fixtures/apps/tenant-app");
/** The user and group the front end's workers run as (test/helpers/apache.ts, test/fixtures/nginx/nginx.conf.tmpl). */
const WORKERS_USER = "www-data";
const WORKERS_GROUP = "www-data";

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

export function isolationCases(test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {}): void {
  const names = ["d", "e", "f"].map((n) => testUserName(kind, n));
  const users: TestUser[] = [];
  const user = (i: number): TestUser => {
    const u = users[i];
    if (u === undefined) throw new Error(`Cannot run: test user ${names[i] ?? i} was not created`);
    return u;
  };
  const { fe, serial } = frontEndSuite(test, kind, "isolation", async (root) => {
    for (const n of names) users.push(await ensureUser(n));
    const appD = await prepareTenantApp(root, FIXTURE, "d", user(0));
    const appE = await prepareTenantApp(root, FIXTURE, "e", user(1));
    // An app owned by the workers' user (www-data-owned files are common in hosting): it runs as that user.
    const www = lookupUser(WORKERS_USER);
    if (www === undefined) throw new Error(`Cannot run: no user ${WORKERS_USER}`);
    const appW = await prepareTenantApp(root, FIXTURE, "w", www);
    return { sites: [{ serverName: "d.test", appRoot: appD }, { serverName: "e.test", appRoot: appE }, { serverName: "w.test", appRoot: appW }] };
  }, opts);
  test.after.always(async () => {
    for (const n of names) await removeUser(n).catch(() => undefined);
  });
  // Both apps up (each has a socket) before a case looks for their sockets (ava runs before hooks concurrently).
  let up: Promise<void> | undefined;
  const appsUp = (): Promise<void> => (up ??= (async () => {
    await getJson(fe().port, "/pid", "d.test");
    await getJson(fe().port, "/pid", "e.test");
  })());

  const instanceDir = (): string => fe().server.instanceDir;

  /** Ask tenant D's app (running as D) to try something; returns its JSON answer. */
  async function fromTenantD(route: string, query: Record<string, string>): Promise<Record<string, unknown>> {
    return getJson(fe().port, `${route}?${new URLSearchParams(query).toString()}`, "d.test");
  }

  /** The app socket directory (under <instance>/apps.s) owned by `uid`, and a socket in it. */
  async function appSocketOf(uid: number): Promise<{ dir: string; socket: string }> {
    await appsUp();
    const base = path.join(instanceDir(), "apps.s");
    for (const name of await readdir(base)) {
      const dir = path.join(base, name);
      const st = await stat(dir);
      if (!st.isDirectory() || st.uid !== uid) continue;
      const sock = (await readdir(dir)).find((x) => x.endsWith(".sock"));
      if (sock !== undefined) return { dir, socket: path.join(dir, sock) };
    }
    throw new Error(`Cannot find an app socket of uid ${uid} under ${base}`);
  }

  serial("each app's socket directory is 0700 and owned by the app's user", async (t) => {
    for (const u of [user(0), user(1)]) {
      const { dir } = await appSocketOf(u.uid);
      const st = await stat(dir);
      t.is(st.mode & 0o777, 0o700, dir);
      t.is(st.uid, u.uid);
    }
    const base = await stat(path.join(instanceDir(), "apps.s"));
    t.is(base.mode & 0o777, 0o711, "apps.s: traversable, not listable");
    t.is(base.uid, 0);
  });

  serial("tenant D's app connecting to tenant E's app socket gets EACCES (and its own socket connects)", async (t) => {
    const theirs = await appSocketOf(user(1).uid);
    const mine = await appSocketOf(user(0).uid);
    t.is((await fromTenantD("/connect", { path: theirs.socket })).result, "EACCES");
    t.is((await fromTenantD("/connect", { path: mine.socket })).result, "connected");
  });

  serial("tenant D's app cannot list the socket directories", async (t) => {
    const theirs = await appSocketOf(user(1).uid);
    t.is((await fromTenantD("/readdir", { path: path.join(instanceDir(), "apps.s") })).result, "EACCES");
    t.is((await fromTenantD("/readdir", { path: theirs.dir })).result, "EACCES");
  });

  serial("an app cannot connect to the core's module socket", async (t) => {
    t.is((await fromTenantD("/connect", { path: path.join(instanceDir(), "module.sock") })).result, "EACCES");
  });

  serial("the admin tokens and the core config are not readable by app users", async (t) => {
    const dir = instanceDir();
    for (const name of ["admin_token", "read_only_token", "config.json"]) {
      const st = await stat(path.join(dir, name));
      t.is(st.uid, 0, name);
      t.is(st.mode & 0o077, 0, `${name} mode ${(st.mode & 0o777).toString(8)}`);
      t.is((await fromTenantD("/read", { path: path.join(dir, name) })).result, "EACCES", name);
    }
  });

  serial("an app cannot reach the admin API (EACCES): no status, no restart, not with a guessed token", async (t) => {
    const sock = path.join(instanceDir(), "control.sock");
    const st = await stat(sock);
    t.is(st.mode & 0o777, 0o600, "control.sock: root's only without PassengerAdminGroup");
    const status = await fromTenantD("/control", { sock, path: "/status" });
    t.is(status.result, "EACCES", JSON.stringify(status));
    const restart = await fromTenantD("/control", { sock, path: "/restart", method: "POST", body: JSON.stringify({ app: "e" }) });
    t.is(restart.result, "EACCES", JSON.stringify(restart));
    const guessed = await fromTenantD("/control", { sock, path: "/restart", method: "POST", token: "0".repeat(48), body: "{}" });
    t.is(guessed.result, "EACCES", JSON.stringify(guessed));
    // Tenant E's app kept running (no restart happened).
    t.is((await request(fe().port, { path: "/", host: "e.test" })).status, 200);
  });

  serial("an app cannot read the instance's registry files (properties.json, core.pid)", async (t) => {
    for (const name of ["properties.json", "core.pid"]) {
      t.is((await fromTenantD("/read", { path: path.join(instanceDir(), name) })).result, "EACCES", name);
    }
  });

  serial("an app running as the web server's user is refused on the module socket (not one of the server's processes), and the core logs it", async (t) => {
    const www = lookupUser(WORKERS_USER);
    if (www === undefined) return t.fail(`no user ${WORKERS_USER}`);
    const id = await getJson(fe().port, "/id", "w.test");
    t.is(id["uid"], www.uid, "the app runs as the workers' user");
    const r = await getJson(fe().port, `/connect-hold?${new URLSearchParams({ path: path.join(instanceDir(), "module.sock") }).toString()}`, "w.test");
    t.is(r["result"], "closed-by-peer", JSON.stringify(r));
    await waitFor(() => fe().server.errorLog().includes(`(pid ${String(r["pid"])}): it runs as the web server's uid ${www.uid} but is not a child of the web server`), {
      timeoutMs: 10_000, what: "the core to log the refused connection",
    });
    t.pass();
    // The web server's own workers are still served by the core.
    t.is((await request(fe().port, { path: "/", host: "e.test" })).status, 200);
  });

  serial("a local non-root user outside the web server's group cannot connect to the module socket (EACCES)", async (t) => {
    const f = user(2);
    t.is(await connectAs(f, [f.gid], path.join(instanceDir(), "module.sock")), "EACCES");
  });

  serial("a local user in the workers' group gets through the permissions but is refused by peer credentials, and the core logs it", async (t) => {
    const f = user(2);
    const workers = lookupGroup(WORKERS_GROUP);
    if (workers === undefined) return t.fail(`no group ${WORKERS_GROUP}`);
    const result = await connectAs(f, [f.gid, workers.gid], path.join(instanceDir(), "module.sock"));
    t.is(result, "closed-by-peer");
    await waitFor(() => fe().server.errorLog().includes(`Cannot accept module connection from uid ${f.uid}`), {
      timeoutMs: 10_000, what: "the core to log the refused connection",
    });
    t.pass();
    // The web server itself is still served.
    t.is((await request(fe().port, { path: "/", host: "d.test" })).status, 200);
  });
}
