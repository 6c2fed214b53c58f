/**
 * Spawn failures are SpawnErrors that name the failed step and carry the app's
 * output, and leave no process behind.
 */
import test from "ava";
import { cp, chmod } from "node:fs/promises";
import path from "node:path";
import { SpawnError } from "../../../core/src/errors.js";
import { fixtureApp, isGone, makeHarness, waitUntil, type Harness } from "../../helpers/spawn-harness.js";

let h: Harness;
test.before(async () => { h = await makeHarness("spawn-fail"); });
test.after.always(async () => { await h.cleanup(); });

function pidOf(prefix: string): number {
  return h.lines.find((l) => l.line.startsWith(prefix))?.pid ?? -1;
}

test("spawn() rejects an app that throws at startup with its output and step load", async (t) => {
  const err = await t.throwsAsync(h.spawn(h.app(fixtureApp("crash-on-start"))), { instanceOf: SpawnError });
  t.is(err?.code, "FERRY_ERR_SPAWN");
  t.is(err?.step, "load");
  t.regex(err?.message ?? "", /^Cannot spawn app ".*crash-on-start.*": process exited with code 1 while loading the app \(it has not called listen\(\)\): Error: boom at startup$/);
  t.true(err?.output.includes("crash-on-start: loading configuration"));
  t.true(err?.output.includes("crash-on-start: about to fail"));
  t.true(err?.output.includes("Error: boom at startup"));
  t.true(await isGone(pidOf("crash-on-start: loading")));
});

test("spawn() times out an app that never listens within the signal's deadline and kills it", async (t) => {
  const app = h.app(fixtureApp("never-listens"));
  const started = Date.now();
  // 5 s: long enough for node to start and print even on a loaded machine.
  const err = await t.throwsAsync(h.spawn(app, { timeoutMs: 5000 }), { instanceOf: SpawnError });
  const elapsed = Date.now() - started;
  t.is(err?.code, "FERRY_ERR_SPAWN_TIMEOUT");
  t.is(err?.step, "load");
  t.regex(err?.message ?? "", /not ready after \d+ ms while loading the app \(it has not called listen\(\)\)/);
  t.true(err?.output.includes("never-listens: waiting forever"));
  t.true(elapsed >= 4900, `rejected after ${elapsed} ms`);
  // The deadline, plus a bounded SIGKILL-and-reap (5 s) and output drain (2 s).
  t.true(elapsed < 5000 + 7000 + 3000, `rejected after ${elapsed} ms`);
  const pid = pidOf("never-listens:");
  t.true(pid > 0);
  t.true(await isGone(pid), `pid ${pid} still runs`);
});

test("spawn() rejects a missing startup file at step prepare", async (t) => {
  const err = await t.throwsAsync(h.spawn(h.app(fixtureApp("hello"), { startupFile: "nope.js" })), { instanceOf: SpawnError });
  t.is(err?.step, "prepare");
  t.regex(err?.message ?? "", /startup file .*nope\.js does not exist/);
});

test("spawn() rejects a missing interpreter at step exec with the helper's message", async (t) => {
  const err = await t.throwsAsync(h.spawn(h.app(fixtureApp("hello"), { nodejs: "/nonexistent/node" })), { instanceOf: SpawnError });
  t.is(err?.step, "exec");
  t.regex(err?.output ?? "", /Cannot execute \/nonexistent\/node/);
});

test("spawn() rejects a generic app that exits before its port accepts connections", async (t) => {
  const app = h.app(fixtureApp("generic-app"), { appType: "generic", appStartCommand: "echo generic-exit-early; exit 3" });
  const err = await t.throwsAsync(h.spawn(app), { instanceOf: SpawnError });
  t.regex(err?.message ?? "", /exited with code 3/);
  t.true(err?.output.includes("generic-exit-early"));
});

test("spawn() reports an aborted spawn as FERRY_ERR_SPAWN and stops the process", async (t) => {
  const ac = new AbortController();
  const app = h.app(fixtureApp("never-listens"), { appGroupName: "abort-me" });
  const pending = h.spawner.spawn({ app, server: h.server(), signal: ac.signal });
  await waitUntil(() => h.lines.some((l) => l.app === "abort-me"), 10_000, "app output");
  ac.abort();
  const err = await t.throwsAsync(pending, { instanceOf: SpawnError });
  t.is(err?.code, "FERRY_ERR_SPAWN");
  t.regex(err?.message ?? "", /spawn aborted/);
  const pid = h.lines.find((l) => l.app === "abort-me")?.pid ?? -1;
  t.true(await isGone(pid));
});

(process.getuid?.() === 0 ? test : test.skip)("spawn() reports an app root the app's user cannot enter at step exec (needs root)", async (t) => {
  const root = path.join(h.dir, "private-root");
  await cp(fixtureApp("hello"), root, { recursive: true });
  await chmod(root, 0o700); // root-owned: the app runs as nobody, who cannot enter it
  const err = await t.throwsAsync(h.spawn(h.app(root)), { instanceOf: SpawnError });
  t.is(err?.step, "exec");
  t.regex(err?.message ?? "", /exited with code 72 while starting the loader/);
  t.regex(err?.output ?? "", /ferry-exec-helper: Cannot chdir to .*private-root: Permission denied/);
});
