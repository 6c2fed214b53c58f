/**
 * nginx only: the core's module socket follows nginx's `user`.
 *   - As root with no `user` directive, nginx's workers run as `nobody`, the
 *     user a root-owned app runs as (PassengerDefaultUser). That app gets
 *     through the module socket's permissions (they are the workers'), but
 *     the core accepts, of the workers' uid, only children of nginx's master:
 *     the app is refused and the core logs why, while the workers are served.
 *     (Apache on Debian runs its children as www-data; the shared isolation
 *     case "an app running as the web server's user …" covers that user.)
 *   - With `user <own user> <own group>` (not www-data) the socket is that
 *     group's (0660 root:<group>), the workers are served, and a tenant's app
 *     gets EACCES.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT, makeTempRoot, waitFor } from "../../helpers/apache.js";
import { childrenOf } from "../../helpers/web-server.js";
import { getJson, request } from "../../helpers/e2e-http.js";
import { NginxServer, nginxStarted, stopAndRemoveNginx } from "../../helpers/nginx.js";
import { stat } from "node:fs/promises";
import { ensureUser, lookupUser, prepareTenantApp, procIdentity, removeUser, testUserName, type TestUser } from "../../helpers/users.js";

const FIXTURE = path.join(REPO_ROOT, "test/fixtures/apps/tenant-app");

const WEB_USER = testUserName("nginx", "web");
const TENANT = testUserName("nginx", "wt");

let root = "";
let root2 = "";
let server: NginxServer | undefined;
let own: NginxServer | undefined;
let web: TestUser | undefined;
let tenant: TestUser | undefined;

/** The pids of a master's worker processes. */
function workersOf(master: number): number[] {
  return childrenOf(master).filter((p) => readFileSync(`/proc/${p}/cmdline`, "utf8").startsWith("nginx: worker process"));
}

test.before(async () => {
  root = await makeTempRoot("e2e-nginx-worker-user");
  const app = await prepareTenantApp(root, FIXTURE, "rootowned", undefined);
  server = await NginxServer.start({
    root, user: "",
    servers: [{ serverName: "rootowned.test", root: path.join(app, "public"), directives: ["passenger_enabled on;"] }],
  });
});

test.before(async () => {
  web = await ensureUser(WEB_USER);
  tenant = await ensureUser(TENANT);
  root2 = await makeTempRoot("e2e-nginx-own-user");
  const app = await prepareTenantApp(root2, FIXTURE, "t", tenant);
  own = await NginxServer.start({
    root: root2, user: `${WEB_USER} ${WEB_USER}`,
    servers: [{ serverName: "t.test", root: path.join(app, "public"), directives: ["passenger_enabled on;"] }],
  });
});

test.after.always(async () => {
  await stopAndRemoveNginx(server, root);
  await stopAndRemoveNginx(own, root2);
  for (const n of [WEB_USER, TENANT]) await removeUser(n).catch(() => undefined);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(40));
  if (!t.passed && own !== undefined) t.log(own.errorLogTail(40));
});

test.serial("without a user directive nginx's workers run as nobody, and so does a root-owned app", async (t) => {
  const srv = nginxStarted(server);
  const nobody = lookupUser("nobody");
  if (nobody === undefined) return t.fail("no user nobody");
  const workers = workersOf(srv.pid);
  t.true(workers.length > 0);
  for (const p of workers) t.is(procIdentity(readFileSync(`/proc/${p}/status`, "utf8")).uid, nobody.uid, `worker ${p}`);
  const id = await getJson(srv.port, "/id", "rootowned.test");
  t.is(id["uid"], nobody.uid);
});

test.serial("an app running as nginx's workers' user is refused on the module socket, and the core logs it", async (t) => {
  const srv = nginxStarted(server);
  const sock = path.join(srv.instanceDir, "module.sock");
  const r = await getJson(srv.port, `/connect-hold?${new URLSearchParams({ path: sock }).toString()}`, "rootowned.test");
  t.is(r["result"], "closed-by-peer", JSON.stringify(r));
  await waitFor(() => srv.errorLog().includes(`(pid ${String(r["pid"])}): it runs as the web server's uid`), {
    timeoutMs: 10_000, what: "the core to log the refused connection",
  });
  t.pass();
  // nginx's workers (the same uid, children of the master) are still served.
  for (let i = 0; i < 4; i++) t.is((await request(srv.port, { path: "/pid", host: "rootowned.test" })).status, 200);
});

test.serial("with nginx's own user and group, the module socket is that group's, the workers are served, a tenant's app gets EACCES", async (t) => {
  const srv = nginxStarted(own);
  if (web === undefined || tenant === undefined) return t.fail("the test users were not created");
  const workers = workersOf(srv.pid);
  t.true(workers.length > 0);
  for (const p of workers) t.is(procIdentity(readFileSync(`/proc/${p}/status`, "utf8")).uid, web.uid, `worker ${p}`);
  const sock = path.join(srv.instanceDir, "module.sock");
  const st = await stat(sock);
  t.is(st.mode & 0o777, 0o660);
  t.is(st.uid, 0);
  t.is(st.gid, web.gid);
  const id = await getJson(srv.port, "/id", "t.test");
  t.is(id["uid"], tenant.uid);
  const r = await getJson(srv.port, `/connect?${new URLSearchParams({ path: sock }).toString()}`, "t.test");
  t.is(r["result"], "EACCES");
  for (let i = 0; i < 4; i++) t.is((await request(srv.port, { path: "/pid", host: "t.test" })).status, 200);
});
