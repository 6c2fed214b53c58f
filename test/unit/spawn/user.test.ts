import test from "ava";
import { factsFrom, parseGroupLine, parsePasswdLine, resolveRunAs, RunAsError, type RunAsInput, type UserEntry } from "../../../core/src/spawn/user.js";

const root: UserEntry = { name: "root", uid: 0, gid: 0, home: "/root", shell: "/bin/bash" };
const nobody: UserEntry = { name: "nobody", uid: 65534, gid: 65534, home: "/nonexistent", shell: "/usr/sbin/nologin" };
const alice: UserEntry = { name: "alice", uid: 1001, gid: 1001, home: "/home/alice", shell: "/bin/bash" };
const bob: UserEntry = { name: "bob", uid: 1002, gid: 0, home: "/home/bob", shell: "/bin/sh" };
const facts = factsFrom([root, nobody, alice, bob], [{ name: "nogroup", gid: 65534 }, { name: "www", gid: 33 }, { name: "alice", gid: 1001 }]);

const base: RunAsInput = {
  isRoot: true, currentUser: root, userSwitching: true, appUser: "", appGroup: "",
  defaultUser: "nobody", defaultGroup: "", fileOwner: { uid: 1001, gid: 1001 },
};

const cases: { title: string; input: Partial<RunAsInput>; uid: number; gid: number; switchUser?: boolean }[] = [
  { title: "the startup file's owner and primary group", input: {}, uid: 1001, gid: 1001 },
  { title: "the default user when the owner is root", input: { fileOwner: { uid: 0, gid: 0 } }, uid: 65534, gid: 65534 },
  { title: "the default user when the owner is unknown", input: { fileOwner: { uid: 4242, gid: 4242 } }, uid: 65534, gid: 65534 },
  { title: "PassengerUser over the owner", input: { appUser: "nobody" }, uid: 65534, gid: 65534 },
  { title: "the default user when PassengerUser is root", input: { appUser: "root" }, uid: 65534, gid: 65534 },
  { title: "the default user when PassengerUser is unknown", input: { appUser: "mallory" }, uid: 65534, gid: 65534 },
  { title: "PassengerGroup by name", input: { appGroup: "www" }, uid: 1001, gid: 33 },
  { title: "PassengerGroup !STARTUP_FILE!", input: { appUser: "nobody", appGroup: "!STARTUP_FILE!", fileOwner: { uid: 1001, gid: 33 } }, uid: 65534, gid: 33 },
  { title: "the default group when the user's primary group is 0", input: { appUser: "bob" }, uid: 1002, gid: 65534 },
  { title: "the default group when !STARTUP_FILE! is gid 0", input: { appGroup: "!STARTUP_FILE!", fileOwner: { uid: 1001, gid: 0 } }, uid: 1001, gid: 65534 },
  { title: "PassengerDefaultGroup for the default user", input: { fileOwner: { uid: 0, gid: 0 }, defaultGroup: "www" }, uid: 65534, gid: 33 },
  { title: "the default user for every app when switching is off", input: { userSwitching: false }, uid: 65534, gid: 65534 },
  { title: "the core's own user when not root", input: { isRoot: false, currentUser: alice }, uid: 1001, gid: 1001, switchUser: false },
];

for (const c of cases) {
  test(`resolveRunAs() picks ${c.title}`, (t) => {
    const r = resolveRunAs({ ...base, ...c.input }, facts);
    t.is(r.user.uid, c.uid);
    t.is(r.gid, c.gid);
    t.is(r.switchUser, c.switchUser ?? true);
  });
}

test("resolveRunAs() refuses a default user that is root or missing", (t) => {
  t.throws(() => resolveRunAs({ ...base, defaultUser: "root" }, facts), { instanceOf: RunAsError, message: /is root/ });
  t.throws(() => resolveRunAs({ ...base, defaultUser: "ghost" }, facts), { instanceOf: RunAsError, message: /does not exist/ });
  t.throws(() => resolveRunAs({ ...base, defaultGroup: "ghosts" }, facts), { instanceOf: RunAsError, message: /does not exist/ });
});

test("resolveRunAs() never returns uid 0 or gid 0 when switching", (t) => {
  for (const appUser of ["", "root", "bob", "0"]) {
    for (const appGroup of ["", "!STARTUP_FILE!", "0"]) {
      const r = resolveRunAs({ ...base, appUser, appGroup, fileOwner: { uid: 0, gid: 0 } }, factsFrom([root, nobody, bob], [{ name: "root", gid: 0 }]));
      t.not(r.user.uid, 0);
      t.not(r.gid, 0);
    }
  }
});

test("parsePasswdLine() and parseGroupLine() read getent lines and reject junk", (t) => {
  t.deepEqual(parsePasswdLine("alice:x:1001:1002:Alice:/home/alice:/bin/bash"), { name: "alice", uid: 1001, gid: 1002, home: "/home/alice", shell: "/bin/bash" });
  t.is(parsePasswdLine("broken:x:abc:1::/:/bin/sh"), undefined);
  t.is(parsePasswdLine(""), undefined);
  t.deepEqual(parseGroupLine("www-data:x:33:"), { name: "www-data", gid: 33 });
  t.is(parseGroupLine("nogid:x::"), undefined);
});
