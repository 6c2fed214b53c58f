/**
 * PassengerLoadShellEnvvars: the app starts through its user's login shell, so
 * variables its profile exports reach the app; off, they do not. Also the pure
 * loginShellOf() choice. The spawn tests need root (user switching).
 */
import test from "ava";
import { execFile as execFileCb, execFileSync } from "node:child_process";
import { chown, cp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { loginShellOf } from "../../../core/src/spawn/child-spawner.js";
import { fixtureApp, httpRequest, makeHarness, type Harness } from "../../helpers/spawn-harness.js";

const execFile = promisify(execFileCb);
const IS_ROOT = process.getuid?.() === 0;
const USER = "ferryshelluser";

let h: Harness;
let home = "";
let appDir = "";
let createdUser = false;

function getent(key: string): string | undefined {
  try {
    return execFileSync("getent", ["passwd", key], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

async function admin(cmd: string, args: string[]): Promise<void> {
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

test("loginShellOf() takes known absolute shells and skips nologin, false and relative paths", (t) => {
  t.is(loginShellOf("/bin/bash"), "/bin/bash");
  t.is(loginShellOf("/usr/bin/zsh"), "/usr/bin/zsh");
  t.is(loginShellOf("/bin/sh"), "/bin/sh");
  t.is(loginShellOf("/usr/sbin/nologin"), undefined);
  t.is(loginShellOf("/bin/false"), undefined);
  t.is(loginShellOf("bash"), undefined);
});

const rootTest = IS_ROOT ? test.serial : test.skip;

test.before(async () => {
  h = await makeHarness("spawn-shell");
  if (!IS_ROOT) return;
  home = path.join(os.tmpdir(), `ferry-shell-home-${process.pid}`);
  await mkdir(home, { recursive: true });
  if (getent(USER) === undefined) {
    await admin("useradd", ["--system", "--no-create-home", "--user-group", "--home-dir", home, "--shell", "/bin/bash", USER]);
    createdUser = true;
  } else {
    await admin("usermod", ["--home", home, "--shell", "/bin/bash", USER]);
  }
  const pw = (getent(USER) ?? "").split(":");
  const uid = Number(pw[2]);
  const gid = Number(pw[3]);
  await writeFile(path.join(home, ".profile"), "export FERRY_PROFILE_VAR=from-login-shell\n");
  await chown(home, uid, gid);
  await chown(path.join(home, ".profile"), uid, gid);
  appDir = path.join(h.dir, "shell-app");
  await cp(fixtureApp("env-dump"), appDir, { recursive: true });
  for (const f of ["", "app.js", "package.json"]) await chown(path.join(appDir, f), uid, gid);
});

test.after.always(async () => {
  await h.cleanup();
  if (createdUser) await admin("userdel", [USER]).catch(() => undefined);
  if (home !== "") await rm(home, { recursive: true, force: true });
});

async function profileVar(loadShellEnvvars: boolean): Promise<string | undefined> {
  const p = await h.spawn(h.app(appDir, { loadShellEnvvars }));
  const d = JSON.parse((await httpRequest(p.address)).body) as { env: Record<string, string>; uid: number };
  return d.env["FERRY_PROFILE_VAR"];
}

rootTest("spawn() with loadShellEnvvars starts the app through the user's login shell: its profile's exports arrive", async (t) => {
  t.is(await profileVar(true), "from-login-shell");
});

rootTest("spawn() without loadShellEnvvars does not read the user's profile", async (t) => {
  t.is(await profileVar(false), undefined);
});
