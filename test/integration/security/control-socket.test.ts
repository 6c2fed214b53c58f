/**
 * The admin socket (issue 13): only root, the core's user and the
 * administrators' group (PassengerAdminGroup / --admin-group) may connect;
 * `ferry status` works for a member of that group, primary or supplementary;
 * the registry files (properties.json, core.pid) are not readable by others.
 * Runs as root: the other users are real test users (test/helpers/users.ts)
 * and the clients run as them through setpriv.
 */
import test from "ava";
import { execFile as execFileCb } from "node:child_process";
import { mkdtemp, rm, stat, chmod } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { pino } from "pino";
import { ControlServer } from "../../../core/src/control/admin-api.js";
import type { PoolStatus } from "../../../core/src/control/status.js";
import { REPO_ROOT } from "../../helpers/apache.js";
import { ensureGroup, ensureUser, removeGroup, removeUser, type TestUser } from "../../helpers/users.js";

const execFile = promisify(execFileCb);
const ADMINS = "ferrytest-admins";
const USERS = ["ferrytest-adm", "ferrytest-out"] as const;
const isRoot = process.getuid?.() === 0;
const rootTest = isRoot ? test.serial : test.serial.skip;

let adm: TestUser;
let out: TestUser;
let adminGid = 0;
const dirs: string[] = [];
const servers: ControlServer[] = [];

const status: PoolStatus = { version: "0.1.0", maxPoolSize: 6, processCount: 0, groups: [] };
const pool = { status: () => status, restartApp: async () => 0 };

test.before(async () => {
  if (!isRoot) return;
  adminGid = (await ensureGroup(ADMINS)).gid;
  adm = await ensureUser(USERS[0], { groups: [ADMINS] });
  out = await ensureUser(USERS[1]);
});

test.after.always(async () => {
  await Promise.all(servers.map((s) => s.close().catch(() => undefined)));
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  if (!isRoot) return;
  for (const u of USERS) await removeUser(u).catch(() => undefined);
  await removeGroup(ADMINS).catch(() => undefined);
});

async function startControl(adminGroup: string): Promise<{ dir: string; server: ControlServer }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "ferry-ctl-"));
  await chmod(dir, 0o711);
  dirs.push(dir);
  const server = new ControlServer({ instanceDir: dir, pool, log: pino({ level: "silent" }), properties: { integration_mode: "apache" }, adminGroup });
  servers.push(server);
  await server.start();
  await server.writeRegistryFile("properties.json", JSON.stringify({ pid: process.pid, integration_mode: "apache" }) + "\n");
  await server.writeRegistryFile("core.pid", `${process.pid}\n`);
  return { dir, server };
}

/** Run `node -e probe` as `user` with exactly `groups` as supplementary groups. */
async function runAs(user: TestUser, groups: readonly number[], args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const priv = [`--reuid=${user.uid}`, `--regid=${user.gid}`, groups.length === 0 ? "--clear-groups" : `--groups=${groups.join(",")}`, "--", process.execPath, ...args];
  try {
    const r = await execFile("setpriv", priv, { timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e: unknown) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: err.stderr ?? "" };
  }
}

const connectProbe = (sock: string): string[] => ["-e", `
  const s = require("net").connect(${JSON.stringify(sock)});
  s.on("connect", () => { console.log("connected"); s.destroy(); });
  s.on("error", (e) => console.log(e.code));`];

const readProbe = (file: string): string[] => ["-e", `
  try { require("fs").readFileSync(${JSON.stringify(file)}); console.log("read"); } catch (e) { console.log(e.code); }`];

const ferryStatus = (dir: string): string[] => [path.join(REPO_ROOT, "bin/ferry.js"), "status", "--instance", dir, "--json"];

rootTest("without an administrators' group the admin socket and registry files are the core user's only (0600)", async (t) => {
  const { dir } = await startControl("");
  const sock = await stat(path.join(dir, "control.sock"));
  t.is(sock.mode & 0o777, 0o600);
  for (const f of ["properties.json", "core.pid"]) t.is((await stat(path.join(dir, f))).mode & 0o777, 0o600, f);
  t.is((await runAs(out, [out.gid], connectProbe(path.join(dir, "control.sock")))).stdout.trim(), "EACCES");
  t.is((await runAs(adm, [adm.gid, adminGid], connectProbe(path.join(dir, "control.sock")))).stdout.trim(), "EACCES");
  t.is((await runAs(out, [out.gid], readProbe(path.join(dir, "properties.json")))).stdout.trim(), "EACCES");
  // Root (the core's user here) still reads status.
  const st = await execFile(process.execPath, ferryStatus(dir), { timeout: 30_000 });
  t.is(JSON.parse(st.stdout).maxPoolSize, 6);
});

rootTest("with PassengerAdminGroup a member runs ferry status; others cannot connect or read the registry files", async (t) => {
  const { dir, server } = await startControl(ADMINS);
  t.is(server.adminGid, adminGid);
  const sock = await stat(path.join(dir, "control.sock"));
  t.is(sock.mode & 0o777, 0o660);
  t.is(sock.gid, adminGid);
  for (const f of ["properties.json", "core.pid"]) {
    const st = await stat(path.join(dir, f));
    t.is(st.mode & 0o777, 0o640, f);
    t.is(st.gid, adminGid, f);
  }
  // A member through a supplementary group (peer credentials carry only the primary one).
  const asMember = await runAs(adm, [adm.gid, adminGid], ferryStatus(dir));
  t.is(asMember.code, 0, asMember.stderr);
  t.is(JSON.parse(asMember.stdout).maxPoolSize, 6);
  t.is((await runAs(adm, [adm.gid, adminGid], readProbe(path.join(dir, "properties.json")))).stdout.trim(), "read");
  // Not a member: no connection, no registry file, and ferry status fails.
  t.is((await runAs(out, [out.gid], connectProbe(path.join(dir, "control.sock")))).stdout.trim(), "EACCES");
  t.is((await runAs(out, [out.gid], readProbe(path.join(dir, "properties.json")))).stdout.trim(), "EACCES");
  t.not((await runAs(out, [out.gid], ferryStatus(dir))).code, 0);
  // The admin action still needs the admin token, even for a member.
  const restart = await runAs(adm, [adm.gid, adminGid], [path.join(REPO_ROOT, "bin/ferry.js"), "restart", "/srv/x", "--instance", dir]);
  t.not(restart.code, 0);
});

test("an unknown administrators' group stops the admin API from starting, naming it", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "ferry-ctl-"));
  dirs.push(dir);
  const server = new ControlServer({ instanceDir: dir, pool, log: pino({ level: "silent" }), adminGroup: "no-such-group-x", lookupGroup: async () => undefined });
  await t.throwsAsync(server.start(), { message: /Cannot use administrators' group "no-such-group-x": no such group/ });
});
