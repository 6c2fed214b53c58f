/**
 * The app's environment and the user it runs as. The core runs as root in CI,
 * so user switching applies: root-owned fixtures run as nobody, an app owned
 * by a test user runs as that user with its groups, PassengerUser overrides.
 */
import test from "ava";
import { execFile as execFileCb, execFileSync } from "node:child_process";
import { chown, cp, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { EXEC_HELPER_PATH } from "../../../core/src/os/native.js";
import { fixtureApp, httpRequest, makeHarness, procIds, type Harness } from "../../helpers/spawn-harness.js";

const execFile = promisify(execFileCb);
const IS_ROOT = process.getuid?.() === 0;
const USER = "ferryh2user";
const EXTRA_GROUP = "ferryh2extra";

interface Dump {
  env: Record<string, string>;
  uid: number;
  gid: number;
  groups: number[];
  pid: number;
  cwd: string;
  argv: string[];
  mainIsModule: boolean;
  remoteAddress: string;
}

let h: Harness;
const created: { user: boolean; group: boolean } = { user: false, group: false };
let ownedApp = "";
let ids = { uid: -1, gid: -1, extraGid: -1 };

function getent(db: string, key: string): string | undefined {
  try {
    return execFileSync("getent", [db, key], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

/** useradd & co. fail while another process holds /etc/passwd's lock: retry with a deadline. */
async function adminCommand(cmd: string, args: string[]): Promise<void> {
  const end = Date.now() + 20_000;
  for (;;) {
    try {
      await execFile(cmd, args, { timeout: 10_000 });
      return;
    } catch (e: unknown) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

test.before(async () => {
  process.env["FERRY_CORE_SECRET"] = "do-not-leak-me";
  h = await makeHarness("spawn-env");
  if (!IS_ROOT) return;
  if (getent("group", EXTRA_GROUP) === undefined) {
    await adminCommand("groupadd", [EXTRA_GROUP]);
    created.group = true;
  }
  if (getent("passwd", USER) === undefined) {
    await adminCommand("useradd", ["--no-create-home", "--user-group", "--groups", EXTRA_GROUP, "--home-dir", `/home/${USER}`, "--shell", "/bin/sh", USER]);
    created.user = true;
  }
  const pw = (getent("passwd", USER) ?? "").split(":");
  ids = { uid: Number(pw[2]), gid: Number(pw[3]), extraGid: Number((getent("group", EXTRA_GROUP) ?? "").split(":")[2]) };
  ownedApp = path.join(h.dir, "owned-app");
  await cp(fixtureApp("env-dump"), ownedApp, { recursive: true });
  await chown(ownedApp, ids.uid, ids.gid);
  for (const f of ["app.js", "package.json"]) await chown(path.join(ownedApp, f), ids.uid, ids.gid);
});

test.after.always(async () => {
  await h.cleanup();
  if (created.user) await adminCommand("userdel", [USER]);
  if (created.group) await adminCommand("groupdel", [EXTRA_GROUP]);
});

async function dump(p: { address: Parameters<typeof httpRequest>[0] }): Promise<Dump> {
  return JSON.parse((await httpRequest(p.address)).body) as Dump;
}

test("spawn() gives the app a clean environment with app env, SetEnv vars and base URI, not the core's", async (t) => {
  const root = fixtureApp("env-dump");
  const p = await h.spawn(h.app(root, { appEnv: "staging", baseURI: "/sub", env: { MY_SETENV: "from-apache", NODE_OPTIONS: "" } }));
  const d = await dump(p);
  t.is(d.env["NODE_ENV"], "staging");
  t.is(d.env["PASSENGER_APP_ENV"], "staging");
  t.is(d.env["RAILS_ENV"], "staging");
  t.is(d.env["MY_SETENV"], "from-apache");
  t.is(d.env["PASSENGER_BASE_URI"], "/sub");
  t.is(d.env["PORT"], "3000");
  t.is(d.env["PATH"], process.env["PATH"]);
  t.is(d.env["FERRY_CORE_SECRET"], undefined);
  t.is(d.env["FERRY_LOADER_OPTIONS"], undefined);
  t.is(d.cwd, root);
  t.deepEqual(d.argv.slice(1), [path.join(root, "app.js")]);
  t.true(d.mainIsModule);
  t.is(d.remoteAddress, "127.0.0.1");
  const allowed = new Set(["PATH", "HOME", "USER", "LOGNAME", "SHELL", "NODE_ENV", "PASSENGER_APP_ENV", "RAILS_ENV", "RACK_ENV",
    "WSGI_ENV", "PYTHONUNBUFFERED", "IN_PASSENGER", "PORT", "PASSENGER_BASE_URI", "RACK_BASE_URI", "RAILS_RELATIVE_URL_ROOT",
    "MY_SETENV", "NODE_OPTIONS", "TZ", "LANG", "LANGUAGE"]);
  t.deepEqual(Object.keys(d.env).filter((k) => !allowed.has(k) && !k.startsWith("LC_")), []);
});

const rootTest = IS_ROOT ? test : test.skip;

rootTest("spawn() as root runs a root-owned app as nobody:nogroup with only that group (needs root)", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("env-dump")));
  const d = await dump(p);
  t.is(d.uid, 65534);
  t.is(d.gid, 65534);
  t.deepEqual(d.groups, [65534]);
  t.is(d.env["USER"], "nobody");
  t.is(d.env["HOME"], "/nonexistent");
  t.deepEqual(await procIds(p.pid), { uid: 65534, gid: 65534, groups: [65534] });
});

rootTest("spawn() as root runs an app as the owner of its startup file, with its groups (needs root)", async (t) => {
  const p = await h.spawn(h.app(ownedApp));
  const d = await dump(p);
  t.is(d.uid, ids.uid);
  t.is(d.gid, ids.gid);
  t.deepEqual([...d.groups].sort((a, b) => a - b), [ids.gid, ids.extraGid].sort((a, b) => a - b));
  t.is(d.env["USER"], USER);
  t.is(d.env["LOGNAME"], USER);
  t.is(d.env["HOME"], `/home/${USER}`);
  t.is(d.env["SHELL"], "/bin/sh");
  // The socket dir is the owner's, 0700: another tenant (nobody) cannot connect.
  if (p.address.kind !== "unix") return t.fail("expected a unix address");
  const st = await stat(path.dirname(p.address.path));
  t.is(st.uid, ids.uid);
  t.is(st.mode & 0o777, 0o700);
  const probe = `require("net").connect(${JSON.stringify(p.address.path)}).on("connect",()=>{console.log("CONNECTED");process.exit(0)}).on("error",(e)=>{console.log(e.code);process.exit(0)})`;
  const out = await execFile(EXEC_HELPER_PATH, ["--user", "nobody", "--", process.execPath, "-e", probe], { timeout: 10_000 });
  t.is(out.stdout.trim(), "EACCES");
});

rootTest("spawn() as root honours PassengerUser and PassengerGroup !STARTUP_FILE! (needs root)", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("env-dump"), { user: USER, appGroupName: "env-dump as user" }));
  const d = await dump(p);
  t.is(d.uid, ids.uid);
  t.is(d.gid, ids.gid);
  const q = await h.spawn(h.app(ownedApp, { user: "nobody", group: "!STARTUP_FILE!", appGroupName: "owned as nobody" }));
  const e = await dump(q);
  t.is(e.uid, 65534);
  t.is(e.gid, ids.gid);
});

rootTest("spawn() as root with user switching off runs every app as the default user (needs root)", async (t) => {
  const p = await h.spawn(h.app(ownedApp, { appGroupName: "no switching" }), { server: { userSwitching: false } });
  const d = await dump(p);
  t.is(d.uid, 65534);
  t.is(d.gid, 65534);
});

rootTest("spawn() applies PassengerAppFileDescriptorUlimit (needs root)", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("env-dump"), { fileDescriptorUlimit: 777, appGroupName: "fd limit" }));
  const limits = await readFile(`/proc/${p.pid}/limits`, "utf8");
  t.regex(limits, /Max open files\s+777\s+777\s+files/);
});
