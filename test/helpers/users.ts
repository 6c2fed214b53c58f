/**
 * Test users and groups for the shared-hosting tests (issue 4): system users
 * `ferrytest-*` made with `useradd --system --no-create-home`, each with its
 * own primary group. Creating is idempotent (an existing user is reused, a
 * leftover of a crashed run included). Several test processes may use the
 * same names at once (ava runs files in parallel; a whole suite may run
 * beside a single file): each use leaves a marker
 * `/tmp/ferrytest-users/<name>/<pid>`, and removal deletes the user only when
 * no live process still marks it (and userdel itself refuses while a process
 * runs as the user: then the user is left for the next run to reuse).
 * Marking and creating, unmarking and deleting run under one lock
 * (`/tmp/ferrytest-users/.lock`, a directory holding its owner's pid), so a
 * file cannot delete a user another file has just found and is about to use.
 * useradd & co. fail while another process holds the passwd lock: they are
 * retried under a deadline. A file that runs through one front end names its
 * users with `testUserName(kind, …)`, so its twin running through the other
 * front end (ava runs them in parallel) uses users of its own.
 */
import { execFile as execFileCb, execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { chmod, chown, cp, mkdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { processAlive } from "../../core/src/os/probes.js";

const execFile = promisify(execFileCb);

export interface TestUser {
  readonly name: string;
  readonly uid: number;
  /** Primary gid (the user's own group). */
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
}

export interface TestGroup {
  readonly name: string;
  readonly gid: number;
}

const LOCK_RETRY_MS = 30_000;

/** Run an account-admin command, retrying (under a deadline) while it fails with one of `retryCodes`. */
export async function admin(cmd: string, args: readonly string[], retryCodes?: readonly number[]): Promise<void> {
  const end = Date.now() + LOCK_RETRY_MS;
  let delay = 50;
  for (;;) {
    try {
      await execFile(cmd, [...args], { timeout: 15_000 });
      return;
    } catch (e: unknown) {
      const code: unknown = typeof e === "object" && e !== null ? Reflect.get(e, "code") : undefined;
      const retryable = retryCodes === undefined || (typeof code === "number" && retryCodes.includes(code));
      if (!retryable || Date.now() > end) {
        const msg = e instanceof Error ? e.message : String(e);
        throw new Error(`Cannot run ${cmd} ${args.join(" ")}: ${msg}`, { cause: e });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 500);
    }
  }
}

const MARKERS = "/tmp/ferrytest-users";
const LOCK = path.join(MARKERS, ".lock");

/**
 * The system name of test user (or group) `base` for a file running through
 * front end `kind`: `ferrytest-<base>` through Apache, `ferrytest-ngx-<base>`
 * through nginx (at most 32 characters, as useradd wants).
 */
export function testUserName(kind: "apache" | "nginx", base: string): string {
  const name = kind === "apache" ? `ferrytest-${base}` : `ferrytest-ngx-${base}`;
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(name)) throw new Error(`Cannot name test user ${name}: not a valid user name`);
  return name;
}

/** The lock's owner, when it is a live process. */
function lockOwnerAlive(): boolean {
  try {
    const pid = Number(readFileSync(path.join(LOCK, "pid"), "utf8"));
    return Number.isInteger(pid) && pid > 0 && processAlive(pid);
  } catch {
    // No pid yet: being created right now, unless its creator died in between.
    try {
      return Date.now() - statSync(LOCK).mtimeMs < 5_000;
    } catch {
      return true; // just removed
    }
  }
}

/** Run `fn` holding the test users' lock (waits under a deadline; a dead owner's lock is taken over). */
async function withUsersLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(MARKERS, { recursive: true, mode: 0o700 });
  const end = Date.now() + 2 * LOCK_RETRY_MS;
  let staleSince: number | undefined;
  for (;;) {
    try {
      mkdirSync(LOCK, { mode: 0o700 });
      writeFileSync(path.join(LOCK, "pid"), String(process.pid));
      break;
    } catch (e: unknown) {
      if (!(e instanceof Error) || Reflect.get(e, "code") !== "EEXIST") throw e;
      if (!lockOwnerAlive()) {
        staleSince ??= Date.now();
        // Dead owner (or no pid file for a while): take it over.
        if (Date.now() - staleSince > 200) rmSync(LOCK, { recursive: true, force: true });
      } else {
        staleSince = undefined;
      }
      if (Date.now() > end) throw new Error(`Cannot lock the test users: ${LOCK} is held`, { cause: e });
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

function markUse(name: string): void {
  const dir = path.join(MARKERS, name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(path.join(dir, String(process.pid)), "");
}

/** Drop this process's marker; true when no other live process marks the user. */
function unmarkUse(name: string): boolean {
  const dir = path.join(MARKERS, name);
  rmSync(path.join(dir, String(process.pid)), { force: true });
  let others = false;
  try {
    for (const f of readdirSync(dir)) {
      if (/^\d+$/.test(f) && processAlive(Number(f))) others = true;
      else rmSync(path.join(dir, f), { force: true });
    }
  } catch {
    return true;
  }
  return !others;
}

function getent(db: "passwd" | "group", key: string): string[] | undefined {
  try {
    return execFileSync("getent", [db, key], { encoding: "utf8" }).trim().split(":");
  } catch {
    return undefined;
  }
}

/** The passwd entry of `name`, or undefined. */
export function lookupUser(name: string): TestUser | undefined {
  const f = getent("passwd", name);
  if (f === undefined || f.length < 7) return undefined;
  return { name: f[0] ?? name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "", shell: f[6] ?? "" };
}

/** The group entry of `name`, or undefined. */
export function lookupGroup(name: string): TestGroup | undefined {
  const f = getent("group", name);
  if (f === undefined || f.length < 3) return undefined;
  return { name: f[0] ?? name, gid: Number(f[2]) };
}

/** Make sure group `name` exists. */
export async function ensureGroup(name: string): Promise<TestGroup> {
  await withUsersLock(async () => {
    markUse(`group-${name}`);
    if (lookupGroup(name) === undefined) await admin("groupadd", ["--system", name]);
  });
  const g = lookupGroup(name);
  if (g === undefined) throw new Error(`Cannot create group ${name}: not found after groupadd`);
  return g;
}

/**
 * Make sure system user `name` exists, with its own primary group and (at
 * least) the given supplementary groups, which must exist.
 */
export async function ensureUser(name: string, opts: { readonly groups?: readonly string[] } = {}): Promise<TestUser> {
  if (process.getuid?.() !== 0) throw new Error(`Cannot create user ${name}: the tests must run as root`);
  const groups = opts.groups ?? [];
  await withUsersLock(async () => {
    markUse(name);
    if (lookupUser(name) === undefined) {
      const args = ["--system", "--no-create-home", "--user-group", "--home-dir", `/home/${name}`, "--shell", "/bin/sh"];
      if (groups.length > 0) args.push("--groups", groups.join(","));
      await admin("useradd", [...args, name]);
    } else if (groups.length > 0) {
      await admin("usermod", ["--append", "--groups", groups.join(","), name]);
    }
  });
  const u = lookupUser(name);
  if (u === undefined) throw new Error(`Cannot create user ${name}: not found after useradd`);
  return u;
}

/** Create several users, one after the other (useradd holds a global lock anyway). */
export async function ensureUsers(names: readonly string[]): Promise<TestUser[]> {
  const out: TestUser[] = [];
  for (const n of names) out.push(await ensureUser(n));
  return out;
}

/**
 * Delete a test user and its own group, unless another live test process
 * still uses it or a process runs as it (userdel exit 8): then it stays for
 * reuse. Only lock contention is retried, so this never hangs a teardown.
 */
export async function removeUser(name: string): Promise<void> {
  await withUsersLock(async () => {
    if (!unmarkUse(name)) return;
    if (lookupUser(name) !== undefined) {
      try {
        await admin("userdel", [name], [1, 10]);
      } catch {
        return; // in use: left for the next run
      }
    }
    if (lookupGroup(name) !== undefined) await admin("groupdel", [name], [10]).catch(() => undefined);
  });
}

/** Delete a group unless another live test process uses it; no error if already gone. */
export async function removeGroup(name: string): Promise<void> {
  await withUsersLock(async () => {
    if (!unmarkUse(`group-${name}`)) return;
    if (lookupGroup(name) !== undefined) await admin("groupdel", [name], [10]).catch(() => undefined);
  });
}

/** Ids of a live process from /proc/<pid>/status (real uid/gid, supplementary groups, capabilities). */
export interface ProcIdentity {
  readonly uid: number;
  readonly euid: number;
  readonly gid: number;
  readonly egid: number;
  readonly groups: readonly number[];
  readonly capEff: string;
  readonly capPrm: string;
  readonly capAmb: string;
}

export function procIdentity(statusText: string): ProcIdentity {
  const field = (name: string): string =>
    statusText.split("\n").find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1).trim() ?? "";
  const ids = (name: string): number[] => field(name).split(/\s+/).filter((s) => s !== "").map(Number);
  const uids = ids("Uid");
  const gids = ids("Gid");
  return {
    uid: uids[0] ?? -1,
    euid: uids[1] ?? -1,
    gid: gids[0] ?? -1,
    egid: gids[1] ?? -1,
    groups: ids("Groups"),
    capEff: field("CapEff"),
    capPrm: field("CapPrm"),
    capAmb: field("CapAmb"),
  };
}

/**
 * Copy fixture app `fixture` (test/fixtures/apps/<fixture>) to
 * `<root>/apps/<name>` with public/ (the DocumentRoot) and tmp/, owned by
 * `owner` (undefined: left to root), readable by everyone so Apache can map
 * the DocumentRoot. Returns the app root.
 */
export async function prepareTenantApp(
  root: string, fixtureDir: string, name: string, owner: Pick<TestUser, "uid" | "gid"> | undefined,
): Promise<string> {
  const appRoot = path.join(root, "apps", name);
  await mkdir(path.dirname(appRoot), { recursive: true, mode: 0o755 });
  await chmod(path.dirname(appRoot), 0o755);
  await cp(fixtureDir, appRoot, { recursive: true });
  await mkdir(path.join(appRoot, "public"), { recursive: true });
  await mkdir(path.join(appRoot, "tmp"), { recursive: true });
  execFileSync("chmod", ["-R", "a+rX", appRoot]);
  if (owner !== undefined) {
    execFileSync("chown", ["-R", `${owner.uid}:${owner.gid}`, appRoot]);
    await chown(appRoot, owner.uid, owner.gid);
  }
  return appRoot;
}
