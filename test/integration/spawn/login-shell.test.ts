/**
 * PassengerLoadShellEnvvars: the app starts through its user's login shell, so
 * variables its profile exports reach the app; off, they do not. Also the pure
 * loginShellOf() choice. The spawn tests need root (user switching).
 */
import test from "ava";
import { chown, cp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loginShellOf } from "../../../core/src/spawn/child-spawner.js";
import { fixtureApp, httpRequest, makeHarness, type Harness } from "../../helpers/spawn-harness.js";
import { admin, ensureUser, removeUser } from "../../helpers/users.js";

const IS_ROOT = process.getuid?.() === 0;
const USER = "ferryshelluser";

let h: Harness;
let home = "";
let appDir = "";

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
  const u = await ensureUser(USER);
  await admin("usermod", ["--home", home, "--shell", "/bin/bash", USER]);
  const { uid, gid } = u;
  await writeFile(path.join(home, ".profile"), "export FERRY_PROFILE_VAR=from-login-shell\n");
  await chown(home, uid, gid);
  await chown(path.join(home, ".profile"), uid, gid);
  appDir = path.join(h.dir, "shell-app");
  await cp(fixtureApp("env-dump"), appDir, { recursive: true });
  for (const f of ["", "app.js", "package.json"]) await chown(path.join(appDir, f), uid, gid);
});

test.after.always(async () => {
  await h.cleanup();
  if (IS_ROOT) await removeUser(USER);
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
