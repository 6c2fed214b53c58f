/**
 * Issue 4: the core runs as root, tenants control the files in their app
 * root and in their own socket directory. The core must never lend root's
 * rights to a path a tenant controls:
 *   - a tenant app that replaces its own socket with a symlink to a root-only
 *     socket (here the core's own admin socket; in real life docker.sock …)
 *     must not get the core to talk to it as root: the core checks the peer
 *     credentials of every connection to an app;
 *   - PassengerAppLogFile inside the tenant's app root, pointed by the tenant
 *     (symlink) at a root-owned directory, must not let the core create or
 *     write files there.
 */
import test from "ava";
import { existsSync } from "node:fs";
import { lchown, mkdir, readFile, readdir, readlink, stat, symlink } from "node:fs/promises";
import path from "node:path";
import { ApacheServer, REPO_ROOT, makeTempRoot, waitFor, started, stopAndRemove } from "../../helpers/apache.js";
import { getJson, request } from "../../helpers/e2e-http.js";
import { ensureUser, prepareTenantApp, removeUser, type TestUser } from "../../helpers/users.js";

const FIXTURE = path.join(REPO_ROOT, "test/fixtures/apps/tenant-app");
const USER = "ferrytest-r";

let root = "";
let rootOnlyDir = "";
let logOkApp = "";
let server: ApacheServer | undefined;
let owner: TestUser;

const srv = (): ApacheServer => started(server);

/** The socket of the app running as `uid` (its directory under <instance>/apps.s is owned by uid). */
/** The app socket the process `pid` listens on (several apps of one user share that uid: find it by the process). */
async function appSocketOf(pid: number): Promise<string> {
  const base = path.join(srv().instanceDir, "apps.s");
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

test.before(async () => {
  root = await makeTempRoot("sec-root");
  owner = await ensureUser(USER);
  const swap = await prepareTenantApp(root, FIXTURE, "swap", owner);
  const logApp = await prepareTenantApp(root, FIXTURE, "logapp", owner);
  logOkApp = await prepareTenantApp(root, FIXTURE, "logok", owner);
  // A root-owned directory the tenant may not write to; the tenant points its log dir at it.
  rootOnlyDir = path.join(root, "root-only");
  await mkdir(rootOnlyDir, { mode: 0o755 });
  await symlink(rootOnlyDir, path.join(logApp, "log"));
  await lchown(path.join(logApp, "log"), owner.uid, owner.gid);
  server = await ApacheServer.start({
    root,
    vhosts: [
      { serverName: "swap.test", documentRoot: path.join(swap, "public") },
      { serverName: "logapp.test", documentRoot: path.join(logApp, "public"), directives: ["PassengerAppLogFile log/app.log"] },
      { serverName: "logok.test", documentRoot: path.join(logOkApp, "public"), directives: ["PassengerAppLogFile app.log"] },
    ],
  });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
  await removeUser(USER).catch(() => undefined);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(40));
});

test("a tenant app that swaps its socket for a symlink to a root-only socket does not get the core to connect to it", async (t) => {
  const before = await getJson(srv().port, "/pid", "swap.test");
  const sock = await appSocketOf(Number(before["pid"]));
  const target = path.join(srv().instanceDir, "control.sock");
  const swapped = await getJson(srv().port, `/swap?${new URLSearchParams({ sock, target }).toString()}`, "swap.test");
  t.is(swapped["result"], "swapped");
  // Next requests need a new connection "to the app": through the symlink they would
  // reach the admin API as root, which answers GET /status with the pool's status.
  // A keep-alive connection opened before the swap may still carry a request or
  // two; keep asking until one needs a new connection and the core refuses it.
  let i = 0;
  await waitFor(async () => {
    const res = await request(srv().port, { path: "/status", host: "swap.test" });
    t.false(res.text.includes("\"groups\""), `request ${i} reached the admin API: ${res.status} ${res.text.slice(0, 200)}`);
    t.false(res.text.includes("no such endpoint"), `request ${i} reached the admin API: ${res.text.slice(0, 200)}`);
    i++;
    return /served by uid 0 .*not by the app.s uid/.test(srv().errorLog());
  }, { timeoutMs: 20_000, intervalMs: 200, what: "the refusal in the log" });
  // The app is served again (by a new process, with a fresh socket).
  const after = await waitFor(async () => {
    const r = await request(srv().port, { path: "/pid", host: "swap.test" });
    return r.status === 200 ? (JSON.parse(r.text) as { pid: number }).pid : undefined;
  }, { timeoutMs: 30_000, intervalMs: 300, what: "the app to be served again" });
  t.not(after, before["pid"]);
});

test("PassengerAppLogFile through a tenant's symlink to a root-owned directory creates no file there", async (t) => {
  const res = await request(srv().port, { path: "/pid", host: "logapp.test" });
  t.is(res.status, 200, res.text.slice(0, 200));
  t.false(existsSync(path.join(rootOnlyDir, "app.log")), "the core created a file in a root-owned directory");
  t.deepEqual(await readdir(rootOnlyDir), []);
});

test("PassengerAppLogFile in the app root is created by the app's user", async (t) => {
  const res = await request(srv().port, { path: "/pid", host: "logok.test" });
  t.is(res.status, 200, res.text.slice(0, 200));
  const st = await waitFor(() => stat(path.join(logOkApp, "app.log")).catch(() => undefined), { timeoutMs: 10_000, what: "app.log" });
  t.true(st.isFile());
  t.is(st.uid, owner.uid);
  t.is(st.mode & 0o007, 0, "not readable by others");
});
