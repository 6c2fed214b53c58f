/**
 * Who an app runs as (Passenger's UserSwitchingRules, reference §8.1).
 *
 * `resolveRunAs()` is pure: it applies the rules to facts looked up ahead of
 * time (`UserFacts`). `lookupUserFacts()` gathers those facts from the system
 * user database through `getent` (so NSS sources such as LDAP work), falling
 * back to /etc/passwd and /etc/group when getent is missing.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";

export interface UserEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
}

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
}

/** PassengerGroup value meaning "the group of the startup file". */
export const STARTUP_FILE_GROUP = "!STARTUP_FILE!";

export interface RunAsInput {
  /** The core runs as root (process.getuid() === 0). */
  readonly isRoot: boolean;
  /** The core's own user (used when not root). */
  readonly currentUser: UserEntry;
  readonly userSwitching: boolean;
  /** PassengerUser / PassengerGroup; "" = unset. */
  readonly appUser: string;
  readonly appGroup: string;
  /** PassengerDefaultUser / PassengerDefaultGroup ("" = default user's primary group). */
  readonly defaultUser: string;
  readonly defaultGroup: string;
  /** lstat of the startup file (generic apps: the app root). */
  readonly fileOwner: { readonly uid: number; readonly gid: number };
}

/** Synchronous view of the entries `lookupUserFacts()` fetched. */
export interface UserFacts {
  userByName(nameOrUid: string): UserEntry | undefined;
  userById(uid: number): UserEntry | undefined;
  groupByName(nameOrGid: string): GroupEntry | undefined;
}

export interface RunAs {
  readonly user: UserEntry;
  /** Primary gid the app runs with. */
  readonly gid: number;
  /** True when the spawner must switch to `user`/`gid` (the core is root). */
  readonly switchUser: boolean;
  /** Why a fallback was taken, for the log. */
  readonly notes: readonly string[];
}

/** A rule could not be satisfied (unknown or root default user …). */
export class RunAsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RunAsError";
  }
}

/** Apply the user switching rules. Never returns uid 0 or gid 0 when switching. */
export function resolveRunAs(input: RunAsInput, facts: UserFacts): RunAs {
  if (!input.isRoot) {
    return { user: input.currentUser, gid: input.currentUser.gid, switchUser: false, notes: [] };
  }
  const defUser = facts.userByName(input.defaultUser);
  if (defUser === undefined) {
    throw new RunAsError(`Cannot switch user: PassengerDefaultUser "${input.defaultUser}" does not exist`);
  }
  if (defUser.uid === 0) {
    throw new RunAsError(`Cannot switch user: PassengerDefaultUser "${input.defaultUser}" is root`);
  }
  let defGid = defUser.gid;
  if (input.defaultGroup !== "") {
    const g = facts.groupByName(input.defaultGroup);
    if (g === undefined) {
      throw new RunAsError(`Cannot switch user: PassengerDefaultGroup "${input.defaultGroup}" does not exist`);
    }
    defGid = g.gid;
  }
  if (defGid === 0) {
    throw new RunAsError(`Cannot switch user: the default group of "${defUser.name}" is root's group (gid 0)`);
  }
  if (!input.userSwitching) {
    return { user: defUser, gid: defGid, switchUser: true, notes: ["PassengerUserSwitching is off"] };
  }

  const notes: string[] = [];
  let user: UserEntry | undefined;
  if (input.appUser !== "") {
    user = facts.userByName(input.appUser);
    if (user === undefined) notes.push(`PassengerUser "${input.appUser}" does not exist: using ${defUser.name}`);
  } else {
    user = facts.userById(input.fileOwner.uid);
    if (user === undefined) notes.push(`the startup file's owner (uid ${input.fileOwner.uid}) is unknown: using ${defUser.name}`);
  }
  let usedDefault = false;
  if (user !== undefined && user.uid === 0) {
    notes.push(`apps never run as root: using ${defUser.name}`);
    user = undefined;
  }
  if (user === undefined) {
    user = defUser;
    usedDefault = true;
  }

  let gid: number;
  if (input.appGroup === STARTUP_FILE_GROUP) {
    gid = input.fileOwner.gid;
  } else if (input.appGroup !== "") {
    const g = facts.groupByName(input.appGroup);
    if (g === undefined) notes.push(`PassengerGroup "${input.appGroup}" does not exist: using the default group`);
    gid = g?.gid ?? defGid;
  } else {
    gid = usedDefault ? defGid : user.gid;
  }
  if (gid === 0) {
    notes.push("apps never run with root's group: using the default group");
    gid = defGid;
  }
  return { user, gid, switchUser: true, notes };
}

// ---------------------------------------------------------------------------
// Lookup (I/O)

/** Parse one passwd line `name:pw:uid:gid:gecos:home:shell`. */
export function parsePasswdLine(line: string): UserEntry | undefined {
  const f = line.split(":");
  if (f.length < 7) return undefined;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || f[0] === "" || f[2] === "" || f[3] === "") return undefined;
  return { name: f[0] ?? "", uid, gid, home: f[5] ?? "/", shell: f[6] ?? "/bin/sh" };
}

/** Parse one group line `name:pw:gid:members`. */
export function parseGroupLine(line: string): GroupEntry | undefined {
  const f = line.split(":");
  if (f.length < 3) return undefined;
  const gid = Number(f[2]);
  if (!Number.isInteger(gid) || f[0] === "" || f[2] === "") return undefined;
  return { name: f[0] ?? "", gid };
}

/** Facts over fixed lists of entries. */
export function factsFrom(users: readonly UserEntry[], groups: readonly GroupEntry[]): UserFacts {
  const isNum = (s: string): boolean => /^[0-9]+$/.test(s);
  return {
    userByName: (n) => users.find((u) => (isNum(n) ? u.uid === Number(n) : u.name === n)),
    userById: (uid) => users.find((u) => u.uid === uid),
    groupByName: (n) => groups.find((g) => (isNum(n) ? g.gid === Number(n) : g.name === n)),
  };
}

const GETENT_TIMEOUT_MS = 10_000;

function getent(db: "passwd" | "group", keys: readonly string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile("getent", [db, ...keys], { timeout: GETENT_TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, stdout) => {
      // Exit code 2 = some key not found: the others are still printed.
      if (err !== null && (err as NodeJS.ErrnoException).code === "ENOENT") resolve(undefined);
      else resolve(typeof stdout === "string" ? stdout : "");
    });
  });
}

async function readLines(db: "passwd" | "group", keys: readonly string[]): Promise<string[]> {
  const out = await getent(db, keys);
  if (out !== undefined) return out.split("\n");
  const file = db === "passwd" ? "/etc/passwd" : "/etc/group";
  return (await readFile(file, "utf8")).split("\n");
}

/** Look up exactly the entries `resolveRunAs()` may need for this input. */
export async function lookupUserFacts(input: RunAsInput): Promise<UserFacts> {
  if (!input.isRoot) return factsFrom([input.currentUser], []);
  const userKeys = [input.defaultUser, String(input.fileOwner.uid)];
  if (input.appUser !== "") userKeys.push(input.appUser);
  const groupKeys: string[] = [];
  if (input.defaultGroup !== "") groupKeys.push(input.defaultGroup);
  if (input.appGroup !== "" && input.appGroup !== STARTUP_FILE_GROUP) groupKeys.push(input.appGroup);
  const users = (await readLines("passwd", userKeys)).map(parsePasswdLine).filter((u): u is UserEntry => u !== undefined);
  const groups = groupKeys.length === 0
    ? []
    : (await readLines("group", groupKeys)).map(parseGroupLine).filter((g): g is GroupEntry => g !== undefined);
  return factsFrom(users, groups);
}

/** The gid of a group by name (getent, else /etc/group); undefined when there is none. */
export async function lookupGroupId(name: string): Promise<number | undefined> {
  const groups = (await readLines("group", [name])).map(parseGroupLine).filter((g): g is GroupEntry => g !== undefined);
  return groups.find((g) => g.name === name)?.gid;
}
