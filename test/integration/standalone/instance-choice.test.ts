/**
 * `ferry status` / `ferry restart` find mod_ferry's core in Apache's runtime dir
 * (its default instance registry) when no registry dir is given and $TMPDIR holds
 * no instance; an explicit registry dir is never second-guessed.
 */
import test from "ava";
import { promises as fsp } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { InstanceChoiceError, chooseInstance } from "../../../core/src/cli/commands/instance.js";
import type { CliIo } from "../../../core/src/cli/io.js";

const servers: net.Server[] = [];
let root = "";

test.before(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), "ferry-instance-choice-"));
});

test.after.always(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  if (root !== "") await fsp.rm(root, { recursive: true, force: true });
});

/** A fake running instance: `<registry>/ferry-<n>/` with a listening control.sock and properties.json. */
async function fakeInstance(registry: string, name: string): Promise<string> {
  const dir = path.join(registry, name);
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, "properties.json"), JSON.stringify({ pid: process.pid, integration_mode: "apache" }));
  const server = net.createServer((c) => c.destroy());
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path.join(dir, "control.sock"), () => resolve());
  });
  return dir;
}

function io(env: Record<string, string>): CliIo {
  return { stdout: { write: () => true }, stderr: { write: () => true }, env, cwd: root };
}

test("without a registry dir, an instance in Apache's runtime dir is found (once, through a symlinked alias)", async (t) => {
  const tmp = path.join(root, "a-tmp");
  const apacheRun = path.join(root, "a-run-apache2");
  await fsp.mkdir(tmp, { recursive: true });
  const dir = await fakeInstance(apacheRun, "ferry-4242");
  const alias = path.join(root, "a-var-run-apache2");
  await fsp.symlink(apacheRun, alias);
  const inst = await chooseInstance(io({ TMPDIR: tmp }), undefined, undefined, [alias, apacheRun]);
  t.is(inst.dir, path.join(alias, "ferry-4242"));
  t.is(await fsp.realpath(inst.dir), await fsp.realpath(dir));
});

test("an explicit registry dir (flag or PASSENGER_INSTANCE_REGISTRY_DIR) is the only place searched", async (t) => {
  const tmp = path.join(root, "b-tmp");
  const apacheRun = path.join(root, "b-run");
  await fsp.mkdir(tmp, { recursive: true });
  await fakeInstance(apacheRun, "ferry-1");
  await t.throwsAsync(chooseInstance(io({ TMPDIR: tmp }), undefined, tmp, [apacheRun]), {
    instanceOf: InstanceChoiceError, message: /Cannot find a running Ferry instance in .*b-tmp \(/,
  });
  await t.throwsAsync(chooseInstance(io({ TMPDIR: root, PASSENGER_INSTANCE_REGISTRY_DIR: tmp }), undefined, undefined, [apacheRun]), {
    instanceOf: InstanceChoiceError,
  });
});

test("an instance in $TMPDIR wins over Apache's; several in Apache's dirs are listed by full path", async (t) => {
  const tmp = path.join(root, "c-tmp");
  const apacheRun = path.join(root, "c-run");
  const own = await fakeInstance(tmp, "ferry-7");
  await fakeInstance(apacheRun, "ferry-8");
  t.is((await chooseInstance(io({ TMPDIR: tmp }), undefined, undefined, [apacheRun])).dir, own);
  const other = path.join(root, "c-run2");
  await fakeInstance(other, "ferry-9");
  const empty = path.join(root, "c-empty");
  await fsp.mkdir(empty);
  const e = await t.throwsAsync(chooseInstance(io({ TMPDIR: empty }), undefined, undefined, [apacheRun, other]), { instanceOf: InstanceChoiceError });
  t.regex(e?.message ?? "", /2 are running/);
  t.true(e?.message.includes(path.join(apacheRun, "ferry-8")), e?.message);
  t.true(e?.message.includes(path.join(other, "ferry-9")), e?.message);
});
