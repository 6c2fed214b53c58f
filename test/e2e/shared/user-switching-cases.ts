/**
 * End-to-end cases every front end must pass the same way: user switching
 * (issue 4), with the front end run as root. Each app runs as the owner of
 * its startup file with that user's groups (initgroups) and login variables,
 * never with root's groups or capabilities; a root-owned app runs as nobody;
 * PassengerUser/PassengerGroup (passenger_user/passenger_group) override;
 * PassengerUserSwitching off runs every app as PassengerDefaultUser; an app's
 * environment holds only its own variables; PassengerAppFileDescriptorUlimit
 * reaches the process. What the app reports is cross-checked against
 * /proc/<pid>/status. Run through Apache by
 * test/e2e/security/user-switching.test.ts and through nginx by
 * test/e2e/nginx/security-user-switching.test.ts; each names its test users
 * after its front end (testUserName), so both run in parallel.
 */
import type { TestFn } from "ava";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT } from "../../helpers/apache.js";
import { getJson } from "../../helpers/e2e-http.js";
import {
  ensureGroup, ensureUser, lookupUser, prepareTenantApp, procIdentity, removeGroup, removeUser, testUserName,
  type TestGroup, type TestUser,
} from "../../helpers/users.js";
import {
  type AppSite, type FrontEnd, type FrontEndKind, type SharedCaseOptions, frontEndSuite, frontEndTempRoot, startFrontEnd, stopFrontEnd,
} from "./front-end.js";

const FIXTURE = path.join(REPO_ROOT, "test/fixtures/apps/tenant-app");
const FD_LIMIT = 777;
const CORE_SECRET = "FERRY_TEST_CORE_SECRET";

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

interface Tenants {
  readonly a: TestUser;
  readonly b: TestUser;
  readonly c: TestUser;
  readonly sup: TestGroup;
  readonly nobody: TestUser;
}

const sorted = (xs: readonly number[]): number[] => [...xs].sort((x, y) => x - y);

export function userSwitchingCases(test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {}): void {
  const [nameA, nameB, nameC, supName] = ["a", "b", "c", "sup"].map((n) => testUserName(kind, n)) as [string, string, string, string];
  // Reaches the server's and the core's environment (the harness passes process.env on): must not reach apps.
  process.env[CORE_SECRET] = "core-only";
  // Created once, by whichever before hook (they run concurrently) gets there first.
  let made: Promise<Tenants> | undefined;
  const tenants = (): Promise<Tenants> => (made ??= (async () => {
    const sup = await ensureGroup(supName);
    const a = await ensureUser(nameA, { groups: [supName] });
    const b = await ensureUser(nameB);
    const c = await ensureUser(nameC);
    const nobody = lookupUser("nobody");
    if (nobody === undefined) throw new Error("Cannot run: no user nobody");
    return { a, b, c, sup, nobody };
  })());
  let known: Tenants | undefined;
  const who = (): Tenants => {
    if (known === undefined) throw new Error("Cannot run: the test users were not created");
    return known;
  };

  const { fe, serial } = frontEndSuite(test, kind, "user-switching", async (root) => {
    const { a, b, c } = known = await tenants();
    const appA = await prepareTenantApp(root, FIXTURE, "a", a);
    const appB = await prepareTenantApp(root, FIXTURE, "b", b);
    const appRoot = await prepareTenantApp(root, FIXTURE, "rootowned", undefined);
    const appOver = await prepareTenantApp(root, FIXTURE, "override", a);
    const sites: AppSite[] = [
      { serverName: "a.test", appRoot: appA, env: { TENANT_A_SECRET: "alpha" }, options: { AppFileDescriptorUlimit: FD_LIMIT } },
      {
        serverName: "b.test", appRoot: appB, env: { TENANT_B_SECRET: "bravo" },
        // Passenger's own variable directive, beside SetEnv (Apache; nginx has only this one).
        raw: { apache: ["PassengerEnvVar TENANT_B_VAR bravo2"], nginx: ["passenger_env_var TENANT_B_VAR bravo2;"] },
      },
      { serverName: "rootowned.test", appRoot },
      { serverName: "override.test", appRoot: appOver, options: { User: c.name, Group: supName } },
    ];
    return { server: { MaxPoolSize: 8 }, sites };
  }, opts);

  // A second front end: PassengerUserSwitching off runs every app as PassengerDefaultUser.
  let noSwitch: FrontEnd | undefined;
  let root2 = "";
  test.before(async () => {
    const { a, c } = await tenants();
    root2 = await frontEndTempRoot(kind, "us-off");
    const appNoSwitch = await prepareTenantApp(root2, FIXTURE, "noswitch", a);
    noSwitch = await startFrontEnd(kind, root2, {
      server: { UserSwitching: "off", DefaultUser: c.name },
      sites: [{ serverName: "noswitch.test", appRoot: appNoSwitch }],
    });
  });
  test.after.always(async () => {
    if (root2 !== "") await stopFrontEnd(noSwitch, root2);
    for (const n of [nameA, nameB, nameC]) await removeUser(n).catch(() => undefined);
    await removeGroup(supName).catch(() => undefined);
    delete process.env[CORE_SECRET];
  });
  test.afterEach.always((t) => {
    if (!t.passed && noSwitch !== undefined) t.log(noSwitch.server.errorLogTail(20));
  });

  async function id(host: string, front: FrontEnd = fe()): Promise<IdReport> {
    return (await getJson(front.port, "/id", host)) as unknown as IdReport;
  }

  serial("an app runs as the owner of its startup file, with that user's supplementary groups", async (t) => {
    const { a, sup } = who();
    const r = await id("a.test");
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

  serial("another tenant's app runs as its own owner", async (t) => {
    const { b } = who();
    const r = await id("b.test");
    t.is(r.uid, b.uid);
    t.is(r.gid, b.gid);
    t.deepEqual(r.groups, [b.gid]);
  });

  serial("HOME, USER, LOGNAME and SHELL are the app user's", async (t) => {
    const { a } = who();
    const r = await id("a.test");
    t.is(r.env["USER"], a.name);
    t.is(r.env["LOGNAME"], a.name);
    t.is(r.env["HOME"], a.home);
    t.is(r.env["SHELL"], a.shell);
  });

  serial("an app keeps no root group and no capability", async (t) => {
    for (const host of ["a.test", "b.test", "rootowned.test", "override.test"]) {
      const r = await id(host);
      t.false(r.groups.includes(0), `${host} groups ${r.groups.join(",")}`);
      t.not(r.gid, 0, host);
      t.not(r.uid, 0, host);
      t.is(BigInt(`0x${r.status["CapEff"] ?? "ff"}`), 0n, `${host} CapEff`);
      t.is(BigInt(`0x${r.status["CapPrm"] ?? "ff"}`), 0n, `${host} CapPrm`);
      t.is(BigInt(`0x${r.status["CapAmb"] ?? "ff"}`), 0n, `${host} CapAmb`);
    }
  });

  serial("a root-owned app runs as nobody with nobody's group", async (t) => {
    const { nobody } = who();
    const r = await id("rootowned.test");
    t.is(r.uid, nobody.uid);
    t.is(r.gid, nobody.gid);
    t.deepEqual(r.groups, [nobody.gid]);
    t.is(r.env["USER"], "nobody");
  });

  serial("PassengerUser and PassengerGroup override the startup file's owner", async (t) => {
    const { a, c, sup } = who();
    const r = await id("override.test");
    t.is(r.uid, c.uid);
    t.is(r.gid, sup.gid);
    t.is(r.env["USER"], c.name);
    t.false(r.groups.includes(a.gid), "no group of the file's owner");
  });

  serial("PassengerUserSwitching off runs apps as PassengerDefaultUser", async (t) => {
    const { c } = who();
    if (noSwitch === undefined) return t.fail("the second front end did not start");
    const r = await id("noswitch.test", noSwitch);
    t.is(r.uid, c.uid);
    t.is(r.gid, c.gid);
  });

  serial("an app's environment holds its own SetEnv/PassengerEnvVar variables only: no other tenant's, no core's", async (t) => {
    const ra = await id("a.test");
    const rb = await id("b.test");
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

  serial("PassengerAppFileDescriptorUlimit sets the app's RLIMIT_NOFILE (soft and hard)", async (t) => {
    const r = await id("a.test");
    t.deepEqual(r.nofile, { soft: String(FD_LIMIT), hard: String(FD_LIMIT) });
    const limits = await readFile(`/proc/${r.pid}/limits`, "utf8");
    t.regex(limits, new RegExp(`Max open files\\s+${FD_LIMIT}\\s+${FD_LIMIT}\\s`));
    // Without the directive the app keeps the inherited limit.
    const rb = await id("b.test");
    t.not(rb.nofile.soft, String(FD_LIMIT));
  });
}
