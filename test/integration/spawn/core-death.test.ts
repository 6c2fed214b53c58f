/**
 * A separate stand-in core process (test/helpers/spawn-core-main.ts) spawns
 * apps: as a non-root user it spawns them as itself; when it dies, its apps do
 * not linger (Node apps see EOF on their control channel and shut down, generic
 * apps get SIGTERM via the parent-death signal).
 */
import test from "ava";
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { once } from "node:events";
import { chown, mkdir } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { EXEC_HELPER_PATH } from "../../../core/src/os/native.js";
import { fixtureApp, isGone, makeHarness, procIds, waitUntil, type Harness } from "../../helpers/spawn-harness.js";

let h: Harness;
test.before(async () => { h = await makeHarness("spawn-death"); });
test.after.always(async () => { await h.cleanup(); });

const CORE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../helpers/spawn-core-main.js");
const IS_ROOT = process.getuid?.() === 0;

interface CoreReport { pids: number[]; bodies: string[]; uid: number }

async function startCore(t: { teardown(fn: () => void): void }, socketDir: string, asNobody: boolean): Promise<{ core: ChildProcessByStdio<null, Readable, null>; report: CoreReport }> {
  const args = [CORE, socketDir, fixtureApp("hello"), `${fixtureApp("generic-app")}|exec node server.js`];
  const core = asNobody
    ? spawn(EXEC_HELPER_PATH, ["--user", "nobody", "--", process.execPath, ...args], { stdio: ["ignore", "pipe", "inherit"] })
    : spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  t.teardown(() => { core.kill("SIGKILL"); });
  let out = "";
  core.stdout.setEncoding("utf8");
  core.stdout.on("data", (c: string) => { out += c; });
  await waitUntil(() => out.includes("\n") || core.exitCode !== null, 30_000, "the stand-in core to report");
  return { core, report: JSON.parse(out) as CoreReport };
}

test("apps exit when the core that spawned them is SIGKILLed", async (t) => {
  const { core, report } = await startCore(t, path.join(h.dir, "apps.s"), false);
  t.is(report.pids.length, 2);
  for (const pid of report.pids) t.false(await isGone(pid));
  core.kill("SIGKILL");
  await once(core, "exit");
  for (const pid of report.pids) await waitUntil(() => isGone(pid), 15_000, `app pid ${pid} to exit`);
  t.pass();
});

(IS_ROOT ? test : test.skip)("a non-root core spawns apps as its own user (needs root to become nobody)", async (t) => {
  const socketDir = path.join(h.dir, "nobody-sockets");
  await mkdir(socketDir, { mode: 0o700 });
  await chown(socketDir, 65534, 65534);
  const { core, report } = await startCore(t, socketDir, true);
  t.is(report.uid, 65534);
  t.is(report.bodies[0], `hello from ${report.pids[0]} main=true\n`);
  t.regex(report.bodies[1] ?? "", /^generic on \d+ pid \d+\n$/);
  for (const pid of report.pids) t.is((await procIds(pid)).uid, 65534);
  core.kill("SIGKILL");
  await once(core, "exit");
  for (const pid of report.pids) await waitUntil(() => isGone(pid), 15_000, `app pid ${pid} to exit`);
});
