/**
 * Shutdown and kill of spawned processes: graceful shutdown lets in-flight
 * requests finish, the app's own shutdown hook is honoured, kill() is immediate.
 */
import test from "ava";
import http from "node:http";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fixtureApp, httpRequest, isGone, makeHarness, waitForLine, waitUntil, type Harness } from "../../helpers/spawn-harness.js";

let h: Harness;
test.before(async () => { h = await makeHarness("spawn-life"); });
test.after.always(async () => { await h.cleanup(); });

test("shutdown() stops accepting, lets an in-flight slow request finish, then the process exits 0", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("slow-stream")));
  if (p.address.kind !== "unix") return t.fail("expected a unix address");
  const socketPath = p.address.path;
  let firstChunk: () => void = () => undefined;
  const gotFirst = new Promise<void>((r) => { firstChunk = r; });
  const body = new Promise<string>((resolve, reject) => {
    const req = http.get({ socketPath, path: "/slow?ms=1500", agent: false, signal: AbortSignal.timeout(20_000) }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { text += c; firstChunk(); });
      res.on("end", () => resolve(text));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
  await gotFirst;
  let exitedEarly = false;
  void p.exited.then(() => { exitedEarly = true; });
  p.shutdown();
  // New connections are refused once the server closed.
  await waitUntil(async () => {
    try {
      await httpRequest(p.address, { timeoutMs: 2000 });
      return false;
    } catch {
      return true;
    }
  }, 10_000, "new connections to be refused");
  t.false(exitedEarly, "exited before the in-flight request finished");
  t.is(await body, "start\nend\n");
  const exit = await p.exited;
  t.deepEqual(exit, { code: 0, signal: null });
  t.true(await isGone(p.pid));
});

test("shutdown() emits process 'message' 'shutdown' to an app that listens for it", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("graceful-hook")));
  t.is((await httpRequest(p.address)).body, "graceful-hook\n");
  p.shutdown();
  await waitForLine(h, p.pid, "graceful-hook: got shutdown message");
  t.deepEqual(await p.exited, { code: 0, signal: null });
});

test("shutdown() emits PhusionPassenger 'exit' to an app that listens for it", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("passenger-exit-hook")));
  t.is((await httpRequest(p.address)).body, "exit-hook\n");
  p.shutdown();
  await waitForLine(h, p.pid, "passenger-exit-hook: exit event");
  t.deepEqual(await p.exited, { code: 0, signal: null });
});

test("kill() SIGKILLs the process at once", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("hello")));
  p.kill();
  t.deepEqual(await p.exited, { code: null, signal: "SIGKILL" });
  t.true(await isGone(p.pid));
});

test("shutdown() of a generic app sends SIGTERM", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("generic-app"), { appType: "generic", appStartCommand: "exec node server.js" }));
  t.regex((await httpRequest(p.address)).body, /^generic on \d+/);
  p.shutdown();
  t.deepEqual(await p.exited, { code: null, signal: "SIGTERM" });
});

test("shutdown() SIGKILLs a process that ignores it after processShutdownTimeoutMs", async (t) => {
  const app = h.app(fixtureApp("ignores-shutdown"));
  const p = await h.spawner.spawn({ app, server: h.server({ processShutdownTimeoutMs: 1000 }), signal: AbortSignal.timeout(30_000) });
  h.procs.push(p);
  t.is((await httpRequest(p.address)).body, "still here\n");
  p.shutdown();
  t.deepEqual(await p.exited, { code: null, signal: "SIGKILL" });
});

test("spawn() appends app output to PassengerAppLogFile with the pid", async (t) => {
  const logFile = path.join(h.dir, "app-output.log");
  const p = await h.spawn(h.app(fixtureApp("hello"), { appLogFile: logFile, appGroupName: "with log file" }));
  const expected = `App ${p.pid} stdout: hello listening, pid ${p.pid}`;
  await waitUntil(async () => (await readFile(logFile, "utf8").catch(() => "")).includes(expected), 10_000, "the log file line");
  t.regex(await readFile(logFile, "utf8"), /^\[\d{4}-\d\d-\d\dT[^\]]+\] App \d+ stdout: hello listening/m);
});
