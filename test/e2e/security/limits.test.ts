/**
 * Issue 4, per-app limits and .htaccess, through a real Apache run as root,
 * with apps owned by a test user: an app over PassengerMemoryLimit is
 * replaced (and the core logs why); a request over PassengerMaxRequestTime
 * gets 504 and its process is recycled; an app configured only by the
 * tenant's .htaccess (AllowOverride All) is served, as its owner, while a
 * server-wide directive in an .htaccess is refused.
 */
import test from "ava";
import { chown, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { ApacheServer, REPO_ROOT, isAlive, makeTempRoot, waitFor, started, stopAndRemove } from "../../helpers/apache.js";
import { getJson, request } from "../../helpers/e2e-http.js";
import { ensureUser, prepareTenantApp, removeUser, type TestUser } from "../../helpers/users.js";

const FIXTURE = path.join(REPO_ROOT, "test/fixtures/apps/tenant-app");
const USER = "ferrytest-l";
const MEMORY_LIMIT_MB = 120;
const MAX_REQUEST_TIME_S = 2;

let root = "";
let server: ApacheServer | undefined;
let owner: TestUser;

const srv = (): ApacheServer => started(server);

async function pidOf(host: string): Promise<number> {
  const body = await getJson(srv().port, "/pid", host);
  if (typeof body["pid"] !== "number") throw new Error("Cannot read pid: no number");
  return body["pid"];
}

test.before(async () => {
  root = await makeTempRoot("sec-limits");
  owner = await ensureUser(USER);
  const mem = await prepareTenantApp(root, FIXTURE, "mem", owner);
  const slow = await prepareTenantApp(root, FIXTURE, "slow", owner);
  const ht = await prepareTenantApp(root, FIXTURE, "ht", owner);
  // The tenant's own .htaccess turns the app on and sets per-location options.
  const put = async (file: string, text: string): Promise<void> => {
    await writeFile(file, text, { mode: 0o644 });
    await chown(file, owner.uid, owner.gid);
  };
  await put(path.join(ht, "public", ".htaccess"),
    "PassengerEnabled on\nPassengerStickySessions on\nPassengerMaxRequestTime 30\n");
  await mkdir(path.join(ht, "public", "bad"));
  await chown(path.join(ht, "public", "bad"), owner.uid, owner.gid);
  await put(path.join(ht, "public", "bad", ".htaccess"), "PassengerMaxPoolSize 100\n");
  server = await ApacheServer.start({
    root,
    global: ["PassengerMaxPoolSize 6"],
    vhosts: [
      { serverName: "mem.test", documentRoot: path.join(mem, "public"), directives: [`PassengerMemoryLimit ${MEMORY_LIMIT_MB}`] },
      { serverName: "slow.test", documentRoot: path.join(slow, "public"), directives: [`PassengerMaxRequestTime ${MAX_REQUEST_TIME_S}`] },
      // Off for the vhost: only the .htaccess turns it on.
      { serverName: "ht.test", documentRoot: path.join(ht, "public"), directives: ["PassengerEnabled off"] },
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

test("an app over PassengerMemoryLimit is replaced by a new process, with a log line", async (t) => {
  const before = await pidOf("mem.test");
  const grown = await getJson(srv().port, `/alloc?mb=${MEMORY_LIMIT_MB + 60}`, "mem.test");
  t.is(grown["pid"], before);
  t.true(Number(grown["rss"]) > MEMORY_LIMIT_MB * 1024 * 1024, `rss ${String(grown["rss"])}`);
  // The pool samples RSS every few seconds; the process is retired after its requests, a new one serves.
  const after = await waitFor(async () => {
    const p = await pidOf("mem.test");
    return p !== before ? p : undefined;
  }, { timeoutMs: 40_000, intervalMs: 500, what: "a new process after the memory limit" });
  t.not(after, before);
  await waitFor(() => !isAlive(before), { timeoutMs: 30_000, what: `the old process ${before} to exit` });
  t.regex(srv().errorLog(), /memory limit/);
});

test("a request over PassengerMaxRequestTime gets 504 and its process is recycled", async (t) => {
  const before = await pidOf("slow.test");
  const started = Date.now();
  const res = await request(srv().port, { path: "/sleep?ms=30000", host: "slow.test", timeoutMs: 60_000 });
  const took = Date.now() - started;
  t.is(res.status, 504, res.text.slice(0, 300));
  t.true(took >= MAX_REQUEST_TIME_S * 1000 - 100, `answered after ${took} ms`);
  t.true(took < 20_000, `answered after ${took} ms`);
  await waitFor(() => !isAlive(before), { timeoutMs: 30_000, what: `the timed-out process ${before} to exit` });
  const after = await pidOf("slow.test");
  t.not(after, before);
  // Short requests are unaffected.
  t.is((await request(srv().port, { path: "/sleep?ms=100", host: "slow.test" })).status, 200);
});

test("an app configured in the tenant's .htaccess is served, as its owner", async (t) => {
  const res = await request(srv().port, { path: "/id", host: "ht.test" });
  t.is(res.status, 200, res.text.slice(0, 300));
  const body = JSON.parse(res.text) as { uid: number; gid: number };
  t.is(body.uid, owner.uid);
  t.is(body.gid, owner.gid);
  // PassengerStickySessions on from the .htaccess: the sticky cookie is set.
  const cookies = res.headers["set-cookie"] ?? [];
  t.true(cookies.some((c) => c.startsWith("_passenger_route=")), `Set-Cookie: ${cookies.join(" | ")}`);
});

test("a server-wide directive in a tenant's .htaccess is refused with a clear error", async (t) => {
  const res = await request(srv().port, { path: "/bad/x", host: "ht.test" });
  t.is(res.status, 500);
  t.regex(srv().errorLog(), /PassengerMaxPoolSize not allowed here/);
});
