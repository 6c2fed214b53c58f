/**
 * End-to-end cases every front end must pass the same way (issue 4): the
 * core runs as root, tenants control the files in their app root and in
 * their own socket directory. The core must never lend root's rights to a
 * path a tenant controls:
 *   - a tenant app that replaces its own socket with a symlink to a root-only
 *     socket (here the core's own admin socket; in real life docker.sock …)
 *     must not get the core to talk to it as root: the core checks the peer
 *     credentials of every connection to an app;
 *   - PassengerAppLogFile (passenger_app_log_file) inside the tenant's app
 *     root, pointed by the tenant (symlink) at a root-owned directory, must
 *     not let the core create or write files there.
 * Run through Apache by test/e2e/security/core-as-root.test.ts and through
 * nginx by test/e2e/nginx/security-core-as-root.test.ts; each names its test
 * user after its front end (testUserName), so both run in parallel.
 */
import type { TestFn } from "ava";
import { existsSync } from "node:fs";
import { lchown, mkdir, readFile, readdir, readlink, stat, symlink } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT, waitFor } from "../../helpers/apache.js";
import { getJson, request } from "../../helpers/e2e-http.js";
import { ensureUser, prepareTenantApp, removeUser, testUserName, type TestUser } from "../../helpers/users.js";
import { type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

const FIXTURE = path.join(REPO_ROOT, "test/fixtures/apps/tenant-app");

export function coreAsRootCases(test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {}): void {
  const userName = testUserName(kind, "r");
  let owner: TestUser | undefined;
  let rootOnlyDir = "";
  let logOkApp = "";
  const { fe, serial } = frontEndSuite(test, kind, "core-as-root", async (root) => {
    const u = owner = await ensureUser(userName);
    const swap = await prepareTenantApp(root, FIXTURE, "swap", u);
    const logApp = await prepareTenantApp(root, FIXTURE, "logapp", u);
    logOkApp = await prepareTenantApp(root, FIXTURE, "logok", u);
    // A root-owned directory the tenant may not write to; the tenant points its log dir at it.
    rootOnlyDir = path.join(root, "root-only");
    await mkdir(rootOnlyDir, { mode: 0o755 });
    await symlink(rootOnlyDir, path.join(logApp, "log"));
    await lchown(path.join(logApp, "log"), u.uid, u.gid);
    return {
      sites: [
        { serverName: "swap.test", appRoot: swap },
        { serverName: "logapp.test", appRoot: logApp, options: { AppLogFile: "log/app.log" } },
        { serverName: "logok.test", appRoot: logOkApp, options: { AppLogFile: "app.log" } },
      ],
    };
  }, opts);
  test.after.always(async () => {
    await removeUser(userName).catch(() => undefined);
  });

  /** The app socket the process `pid` listens on (several apps of one user share that uid: find it by the process). */
  async function appSocketOf(pid: number): Promise<string> {
    const base = path.join(fe().server.instanceDir, "apps.s");
    const inodes = new Set<string>();
    for (const fd of await readdir(`/proc/${pid}/fd`)) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m?.[1] !== undefined) inodes.add(m[1]);
    }
    // /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path
    for (const line of (await readFile("/proc/net/unix", "utf8")).split("\n")) {
      const f = line.trim().split(/\s+/);
      const inode = f[6];
      const sockPath = f[7];
      if (inode !== undefined && sockPath !== undefined && inodes.has(inode) && sockPath.startsWith(base + "/")) return sockPath;
    }
    throw new Error(`Cannot find the app socket of pid ${pid} under ${base}`);
  }

  serial("a tenant app that swaps its socket for a symlink to a root-only socket does not get the core to connect to it", async (t) => {
    const srv = fe().server;
    const port = fe().port;
    const before = await getJson(port, "/pid", "swap.test");
    const sock = await appSocketOf(Number(before["pid"]));
    const target = path.join(srv.instanceDir, "control.sock");
    const swapped = await getJson(port, `/swap?${new URLSearchParams({ sock, target }).toString()}`, "swap.test");
    t.is(swapped["result"], "swapped");
    // Next requests need a new connection "to the app": through the symlink they would
    // reach the admin API as root, which answers GET /status with the pool's status.
    // A keep-alive connection opened before the swap may still carry a request or
    // two; keep asking until one needs a new connection and the core refuses it.
    let i = 0;
    await waitFor(async () => {
      const res = await request(port, { path: "/status", host: "swap.test" });
      t.false(res.text.includes("\"groups\""), `request ${i} reached the admin API: ${res.status} ${res.text.slice(0, 200)}`);
      t.false(res.text.includes("no such endpoint"), `request ${i} reached the admin API: ${res.text.slice(0, 200)}`);
      i++;
      return /served by uid 0 .*not by the app.s uid/.test(srv.errorLog());
    }, { timeoutMs: 20_000, intervalMs: 200, what: "the refusal in the log" });
    // The app is served again (by a new process, with a fresh socket).
    const after = await waitFor(async () => {
      const r = await request(port, { path: "/pid", host: "swap.test" });
      return r.status === 200 ? (JSON.parse(r.text) as { pid: number }).pid : undefined;
    }, { timeoutMs: 30_000, intervalMs: 300, what: "the app to be served again" });
    t.not(after, before["pid"]);
  });

  serial("PassengerAppLogFile through a tenant's symlink to a root-owned directory creates no file there", async (t) => {
    const res = await request(fe().port, { path: "/pid", host: "logapp.test" });
    t.is(res.status, 200, res.text.slice(0, 200));
    t.false(existsSync(path.join(rootOnlyDir, "app.log")), "the core created a file in a root-owned directory");
    t.deepEqual(await readdir(rootOnlyDir), []);
  });

  serial("PassengerAppLogFile in the app root is created by the app's user", async (t) => {
    const res = await request(fe().port, { path: "/pid", host: "logok.test" });
    t.is(res.status, 200, res.text.slice(0, 200));
    const st = await waitFor(() => stat(path.join(logOkApp, "app.log")).catch(() => undefined), { timeoutMs: 10_000, what: "app.log" });
    t.true(st.isFile());
    if (owner === undefined) return t.fail("the test user was not created");
    t.is(st.uid, owner.uid);
    t.is(st.mode & 0o007, 0, "not readable by others");
  });
}
