/**
 * core/src/os/root-safe.ts, run as root on real directories: a path counts as
 * root-controlled only if no other user can change where it leads; an app
 * log file in a tenant-controlled place is opened only as something the
 * tenant's user owns, never created by root.
 */
import test from "ava";
import { chmod, chown, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { openAppLogFile, rootControlled } from "../../../core/src/os/root-safe.js";
import { lookupUser } from "../../helpers/users.js";

const IS_ROOT = process.getuid?.() === 0;
const rootTest = IS_ROOT ? test : test.skip;
let base = "";
let nobody = { uid: 65534, gid: 65534, name: "nobody" };

test.before(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), "ferry-root-safe-"));
  await chmod(base, 0o755);
  const u = lookupUser("nobody");
  if (u !== undefined) nobody = { uid: u.uid, gid: u.gid, name: u.name };
});

test.after.always(async () => {
  if (base !== "") await rm(base, { recursive: true, force: true });
});

async function dir(rel: string, owner?: { uid: number; gid: number }, mode = 0o755): Promise<string> {
  const d = path.join(base, rel);
  await mkdir(d, { recursive: true });
  await chmod(d, mode);
  if (owner !== undefined) await chown(d, owner.uid, owner.gid);
  return d;
}

rootTest("root-owned directories (under sticky /tmp) are root-controlled", async (t) => {
  t.true(await rootControlled(await dir("r1/a/b")));
});

rootTest("a directory owned by another user, or writable by others without the sticky bit, is not", async (t) => {
  t.false(await rootControlled(await dir("t1", nobody)));
  t.false(await rootControlled(path.join(await dir("t2", nobody), "missing")));
  t.false(await rootControlled(await dir("w1", undefined, 0o777)));
  t.false(await rootControlled(await dir("g1", undefined, 0o775)));
  t.true(await rootControlled(await dir("s1", undefined, 0o1777)));
});

rootTest("a symlink planted in a tenant's directory does not make its root-owned target reachable", async (t) => {
  const target = await dir("r2/target");
  const tenant = await dir("t3", nobody);
  await symlink(target, path.join(tenant, "log"));
  t.false(await rootControlled(path.join(tenant, "log")));
  // A root-made symlink in a root-owned directory is followed, and judged by its target.
  const rootDir = await dir("r3");
  await symlink(target, path.join(rootDir, "log"));
  t.true(await rootControlled(path.join(rootDir, "log")));
  await symlink(tenant, path.join(rootDir, "tenantlink"));
  t.false(await rootControlled(path.join(rootDir, "tenantlink")));
  await symlink("../t3", path.join(rootDir, "rel"));
  t.false(await rootControlled(path.join(rootDir, "rel")));
});

rootTest("openAppLogFile(): in a root-controlled directory root creates it (0640)", async (t) => {
  const d = await dir("r4");
  const fh = await openAppLogFile(path.join(d, "app.log"), nobody, () => Promise.reject(new Error("must not be called")));
  await fh.write("line\n");
  await fh.close();
  const st = await stat(path.join(d, "app.log"));
  t.is(st.uid, 0);
  t.is(st.mode & 0o777, 0o640);
});

rootTest("openAppLogFile(): through a tenant's symlink it never creates a file as root", async (t) => {
  const target = await dir("r5/target");
  const tenant = await dir("t5", nobody);
  await symlink(target, path.join(tenant, "log"));
  // The tenant's user cannot create it there: the creation step fails, nothing appears.
  await t.throwsAsync(openAppLogFile(path.join(tenant, "log", "app.log"), nobody, () => Promise.reject(new Error("EACCES as nobody"))));
  t.deepEqual(await readdir(target), []);
  // A root-owned file that exists there is refused as well.
  await writeFile(path.join(target, "app.log"), "");
  await t.throwsAsync(openAppLogFile(path.join(tenant, "log", "app.log"), nobody, () => Promise.resolve()), { message: /not a regular file owned by nobody/ });
});

rootTest("openAppLogFile(): in a tenant's directory, a file created by the tenant's user is used", async (t) => {
  const tenant = await dir("t6", nobody);
  const file = path.join(tenant, "app.log");
  const fh = await openAppLogFile(file, nobody, async (f) => {
    await writeFile(f, "");
    await chown(f, nobody.uid, nobody.gid);
  });
  await fh.write("ok\n");
  await fh.close();
  t.is((await stat(file)).uid, nobody.uid);
  // A symlink as the file itself is not followed.
  await symlink("/etc/hostname", path.join(tenant, "evil.log"));
  await t.throwsAsync(openAppLogFile(path.join(tenant, "evil.log"), nobody, () => Promise.resolve()), { code: "ELOOP" });
});
