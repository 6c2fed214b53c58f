/**
 * Issue 4, user switching, through a real Apache run as root: each app runs as
 * the owner of its startup file with that user's groups (initgroups) and
 * login variables, never with root's groups or capabilities; a root-owned app
 * runs as nobody; PassengerUser/PassengerGroup override; PassengerUserSwitching
 * off runs every app as PassengerDefaultUser; an app's environment holds only
 * its own variables; PassengerAppFileDescriptorUlimit reaches the process.
 * What the app reports is cross-checked against /proc/<pid>/status.
 */
import test from "ava";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { ApacheServer, REPO_ROOT, makeTempRoot, started } from "../../helpers/apache.js";
import { getJson } from "../../helpers/e2e-http.js";
import {
  ensureGroup, ensureUser, lookupUser, prepareTenantApp, procIdentity, removeGroup, removeUser, type TestGroup, type TestUser,
} from "../../helpers/users.js";

const FIXTURE = path.join(REPO_ROOT, "test/fixtures/apps/tenant-app");
const USERS = ["ferrytest-a", "ferrytest-b", "ferrytest-c"] as const;
const SUP_GROUP = "ferrytest-sup";
const FD_LIMIT = 777;
const CORE_SECRET = "FERRY_TEST_CORE_SECRET";

let root = "";
let root2 = "";
let server: ApacheServer | undefined;
let noSwitch: ApacheServer | undefined;
let a: TestUser;
let b: TestUser;
let c: TestUser;
let sup: TestGroup;
let nobody: TestUser;

interface IdReport {
  pid: number;
  uid: number;
  euid: number;
  gid: number;
  egid: number;
  groups: number[];
  env: Record<string, string>;
  nofile: { soft: string; hard: string };
  status: Record<string, string>;
}

const srv = (): ApacheServer => started(server);

async function id(s: ApacheServer, host: string): Promise<IdReport> {
  return (await getJson(s.port, "/id", host)) as unknown as IdReport;
}

const sorted = (xs: readonly number[]): number[] => [...xs].sort((x, y) => x - y);

test.before(async () => {
  // Reaches Apache's and the core's environment (the harness passes process.env on): must not reach apps.
  process.env[CORE_SECRET] = "core-only";
  root = await makeTempRoot("sec-users");
  sup = await ensureGroup(SUP_GROUP);
  a = await ensureUser(USERS[0], { groups: [SUP_GROUP] });
  b = await ensureUser(USERS[1]);
  c = await ensureUser(USERS[2]);
  const nb = lookupUser("nobody");
  if (nb === undefined) throw new Error("Cannot run: no user nobody");
  nobody = nb;
  const appA = await prepareTenantApp(root, FIXTURE, "a", a);
  const appB = await prepareTenantApp(root, FIXTURE, "b", b);
  const appRoot = await prepareTenantApp(root, FIXTURE, "rootowned", undefined);
  const appOver = await prepareTenantApp(root, FIXTURE, "override", a);
  root2 = await makeTempRoot("sec-users-noswitch");
  const appNoSwitch = await prepareTenantApp(root2, FIXTURE, "noswitch", a);
  const vhost = (name: string, dir: string, directives: readonly string[] = []): { serverName: string; documentRoot: string; directives: readonly string[] } =>
    ({ serverName: `${name}.test`, documentRoot: path.join(dir, "public"), directives });
  server = await ApacheServer.start({
    root,
    global: ["PassengerMaxPoolSize 8"],
    vhosts: [
      vhost("a", appA, ["SetEnv TENANT_A_SECRET alpha", `PassengerAppFileDescriptorUlimit ${FD_LIMIT}`]),
      vhost("b", appB, ["SetEnv TENANT_B_SECRET bravo", "PassengerEnvVar TENANT_B_VAR bravo2"]),
      vhost("rootowned", appRoot),
      vhost("override", appOver, [`PassengerUser ${c.name}`, `PassengerGroup ${SUP_GROUP}`]),
    ],
  });
  // A second Apache: PassengerUserSwitching off runs every app as PassengerDefaultUser.
  noSwitch = await ApacheServer.start({
    root: root2,
    global: ["PassengerUserSwitching off", `PassengerDefaultUser ${c.name}`],
    vhosts: [vhost("noswitch", appNoSwitch)],
  });
});

test.after.always(async () => {
  await noSwitch?.kill();
  await server?.kill();
  for (const d of [root, root2]) if (d !== "") await rm(d, { recursive: true, force: true });
  for (const u of USERS) await removeUser(u).catch(() => undefined);
  await removeGroup(SUP_GROUP).catch(() => undefined);
  delete process.env[CORE_SECRET];
});

test.afterEach.always((t) => {
  if (!t.passed) {
    if (server !== undefined) t.log(server.errorLogTail(40));
    if (noSwitch !== undefined) t.log(noSwitch.errorLogTail(20));
  }
});

test("an app runs as the owner of its startup file, with that user's supplementary groups", async (t) => {
  const r = await id(srv(), "a.test");
  t.is(r.uid, a.uid);
  t.is(r.euid, a.uid);
  t.is(r.gid, a.gid);
  t.is(r.egid, a.gid);
  t.deepEqual(sorted(r.groups), sorted([a.gid, sup.gid]));
  // The kernel's view of the same process agrees.
  const p = procIdentity(await readFile(`/proc/${r.pid}/status`, "utf8"));
  t.deepEqual([p.uid, p.euid, p.gid, p.egid], [a.uid, a.uid, a.gid, a.gid]);
  t.deepEqual(sorted(p.groups), sorted([a.gid, sup.gid]));
});

test("another tenant's app runs as its own owner", async (t) => {
  const r = await id(srv(), "b.test");
  t.is(r.uid, b.uid);
  t.is(r.gid, b.gid);
  t.deepEqual(r.groups, [b.gid]);
});

test("HOME, USER, LOGNAME and SHELL are the app user's", async (t) => {
  const r = await id(srv(), "a.test");
  t.is(r.env["USER"], a.name);
  t.is(r.env["LOGNAME"], a.name);
  t.is(r.env["HOME"], a.home);
  t.is(r.env["SHELL"], a.shell);
});

test("an app keeps no root group and no capability", async (t) => {
  for (const host of ["a.test", "b.test", "rootowned.test", "override.test"]) {
    const r = await id(srv(), host);
    t.false(r.groups.includes(0), `${host} groups ${r.groups.join(",")}`);
    t.not(r.gid, 0, host);
    t.not(r.uid, 0, host);
    t.is(BigInt(`0x${r.status["CapEff"] ?? "ff"}`), 0n, `${host} CapEff`);
    t.is(BigInt(`0x${r.status["CapPrm"] ?? "ff"}`), 0n, `${host} CapPrm`);
    t.is(BigInt(`0x${r.status["CapAmb"] ?? "ff"}`), 0n, `${host} CapAmb`);
  }
});

test("a root-owned app runs as nobody with nobody's group", async (t) => {
  const r = await id(srv(), "rootowned.test");
  t.is(r.uid, nobody.uid);
  t.is(r.gid, nobody.gid);
  t.deepEqual(r.groups, [nobody.gid]);
  t.is(r.env["USER"], "nobody");
});

test("PassengerUser and PassengerGroup override the startup file's owner", async (t) => {
  const r = await id(srv(), "override.test");
  t.is(r.uid, c.uid);
  t.is(r.gid, sup.gid);
  t.is(r.env["USER"], c.name);
  t.false(r.groups.includes(a.gid), "no group of the file's owner");
});

test("PassengerUserSwitching off runs apps as PassengerDefaultUser", async (t) => {
  if (noSwitch === undefined) return t.fail("second Apache did not start");
  const r = await id(noSwitch, "noswitch.test");
  t.is(r.uid, c.uid);
  t.is(r.gid, c.gid);
});

test("an app's environment holds its own SetEnv/PassengerEnvVar variables only: no other tenant's, no core's", async (t) => {
  const ra = await id(srv(), "a.test");
  const rb = await id(srv(), "b.test");
  t.is(ra.env["TENANT_A_SECRET"], "alpha");
  t.is(rb.env["TENANT_B_SECRET"], "bravo");
  t.is(rb.env["TENANT_B_VAR"], "bravo2");
  t.is(ra.env["TENANT_B_SECRET"], undefined);
  t.is(ra.env["TENANT_B_VAR"], undefined);
  t.is(rb.env["TENANT_A_SECRET"], undefined);
  for (const env of [ra.env, rb.env]) {
    t.is(env[CORE_SECRET], undefined);
    t.is(env["FERRY_LOADER_OPTIONS"], undefined);
  }
  // Everything else is the documented app environment (docs/loader.md).
  const base = new Set(["PATH", "HOME", "USER", "LOGNAME", "SHELL", "NODE_ENV", "PASSENGER_APP_ENV", "RAILS_ENV", "RACK_ENV",
    "WSGI_ENV", "PYTHONUNBUFFERED", "IN_PASSENGER", "PORT", "TZ", "LANG", "LANGUAGE"]);
  t.deepEqual(Object.keys(ra.env).filter((k) => !base.has(k) && !k.startsWith("LC_") && k !== "TENANT_A_SECRET"), []);
  t.deepEqual(Object.keys(rb.env).filter((k) => !base.has(k) && !k.startsWith("LC_") && k !== "TENANT_B_SECRET" && k !== "TENANT_B_VAR"), []);
});

test("PassengerAppFileDescriptorUlimit sets the app's RLIMIT_NOFILE (soft and hard)", async (t) => {
  const r = await id(srv(), "a.test");
  t.deepEqual(r.nofile, { soft: String(FD_LIMIT), hard: String(FD_LIMIT) });
  const limits = await readFile(`/proc/${r.pid}/limits`, "utf8");
  t.regex(limits, new RegExp(`Max open files\\s+${FD_LIMIT}\\s+${FD_LIMIT}\\s`));
  // Without the directive the app keeps the inherited limit.
  const rb = await id(srv(), "b.test");
  t.not(rb.nofile.soft, String(FD_LIMIT));
});
