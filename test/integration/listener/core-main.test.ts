/**
 * The module-mode core as mod_ferry runs it: `node build/core/src/main.js
 * --config <file>` as a real process, spoken to with the frame client.
 */
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { FrameClient, frameRequest, headerValue, requestHeadMap } from "../../helpers/frame-client.js";
import { startCoreProcess, until, writeCoreConfig, type RunningCore } from "../../helpers/core-process.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const MAIN = path.join(ROOT, "build/core/src/main.js");
const HELLO = path.join(ROOT, "test/fixtures/apps/hello");
const tmp = mkdtempSync(path.join(os.tmpdir(), "ferry-core-main-"));
chmodSync(tmp, 0o755);
const children: ChildProcess[] = [];
const appPids: number[] = [];
let seq = 0;

test.after.always(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const pid of appPids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return true;
  }
}

async function startCore(extra: Readonly<Record<string, unknown>> = {}, stdio: Array<"ignore" | "pipe"> = ["ignore", "pipe", "pipe"]): Promise<RunningCore> {
  const core = await startCoreProcess(path.join(tmp, `inst${seq++}`), extra, stdio);
  children.push(core.child);
  return core;
}

async function hello(sock: string, gen = 1): Promise<{ status: number; pid: number; body: string }> {
  const res = await frameRequest(sock, requestHeadMap({ uri: "/", gen }, { app_root: HELLO }));
  const m = /hello from (\d+)/.exec(res.body.toString());
  const pid = Number(m?.[1] ?? 0);
  if (pid > 0 && !appPids.includes(pid)) appPids.push(pid);
  return { status: res.status, pid, body: res.body.toString() };
}

test.serial("main.js serves module requests end to end, redeploys on SIGHUP and stops cleanly on SIGTERM", async (t) => {
  t.timeout(60_000);
  const core = await startCore();
  t.is(readFileSync(path.join(core.dir, "core.pid"), "utf8").trim(), String(core.child.pid));

  const first = await hello(core.moduleSocket);
  t.is(first.status, 200, core.output());
  t.true(first.pid > 0);
  t.is((await hello(core.moduleSocket)).pid, first.pid);

  // A broken config on SIGHUP is logged and ignored.
  writeFileSync(core.configFile, "{ not json");
  core.child.kill("SIGHUP");
  await until(() => core.output().includes("Cannot reload the configuration"), "the reload error");
  t.is((await hello(core.moduleSocket)).pid, first.pid);

  // A new generation with redeploy_on_graceful=all: rolling restart, new process serves.
  writeCoreConfig(core.configFile, core.dir, { generation: 2 });
  core.child.kill("SIGHUP");
  await until(() => core.output().includes("Configuration reloaded"), "the reload");
  await until(() => readFileSync(path.join(core.dir, "properties.json"), "utf8").includes('"generation": 2'), "properties.json to show generation 2");
  let second = first;
  const deadline = Date.now() + 20_000;
  while (second.pid === first.pid && Date.now() < deadline) {
    second = await hello(core.moduleSocket, 2);
    if (second.pid === first.pid) await new Promise((r) => setTimeout(r, 50));
  }
  t.is(second.status, 200);
  t.not(second.pid, first.pid);
  await until(() => gone(first.pid), "the old process to be retired");

  core.child.kill("SIGTERM");
  t.is(await core.exited, 0, core.output());
  t.false(existsSync(core.moduleSocket));
  t.false(existsSync(path.join(core.dir, "control.sock")));
  t.false(existsSync(path.join(core.dir, "core.pid")));
  await until(() => appPids.every(gone), "the app processes to exit");

});

test.serial("through main.js: an 8 MB body echoes byte-exact and a WebSocket echoes after the 101", async (t) => {
  t.timeout(60_000);
  const core = await startCore();
  try {
    // 8 MB up and down through the echo-body app, with backpressure both ways.
    const total = 8 * 1024 * 1024;
    const payload = Buffer.alloc(total);
    for (let i = 0; i < total; i++) payload[i] = (i * 31 + (i >> 13)) & 0xff;
    const c = await FrameClient.connect(core.moduleSocket);
    c.sendHead(requestHeadMap({ method: "POST", uri: "/echo", has_body: true, headers: ["Host", "x", "Content-Length", String(total)] },
      { app_root: path.join(ROOT, "test/fixtures/apps/echo-body") }));
    const reading = c.readResponse(45_000);
    for (let at = 0; at < total; at += 64 * 1024) {
      if (!c.sendBody(payload.subarray(at, at + 64 * 1024))) await c.drain(30_000);
    }
    c.sendEnd();
    const res = await reading;
    c.destroy();
    t.is(res.status, 200, core.output());
    t.is(res.ending, "end");
    const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
    t.is(sha(res.body), sha(payload));

    // WebSocket: handshake in the head, frames raw after the 101.
    const ws = await FrameClient.connect(core.moduleSocket);
    ws.sendHead(requestHeadMap({
      upgrade: true,
      headers: ["Host", "x", "Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="],
    }, { app_root: path.join(ROOT, "test/fixtures/apps/ws-echo") }));
    ws.sendEnd();
    const head = await ws.readResponse();
    t.is(head.status, 101, core.output());
    t.is(headerValue(head.headers, "sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    const mask = Buffer.from([1, 2, 3, 4]);
    const text = Buffer.from("hello ferry");
    const masked = Buffer.from(text.map((b, i) => b ^ (mask[i % 4] ?? 0)));
    ws.writeRaw(Buffer.concat([Buffer.from([0x81, 0x80 | text.length]), mask, masked]));
    const echo = await ws.readRaw(2 + text.length, 15_000);
    t.deepEqual([...echo.subarray(0, 2)], [0x81, text.length]);
    t.is(echo.subarray(2).toString(), "hello ferry");
    // Close frame; the server answers with its own and closes.
    ws.writeRaw(Buffer.concat([Buffer.from([0x88, 0x80]), mask]));
    const rest = await ws.readRawToEnd(15_000);
    t.is(rest[0], 0x88);
    ws.destroy();
  } finally {
    core.child.kill("SIGTERM");
    await core.exited;
  }
});

test.serial("the core exits when its parent process is gone", async (t) => {
  const parent = spawn("sleep", ["60"], { stdio: "ignore" });
  children.push(parent);
  const core = await startCore({ parent_pid: parent.pid });
  parent.kill("SIGKILL");
  t.is(await core.exited, 0, core.output());
  t.regex(core.output(), /parent process \d+ is gone/);
  t.false(existsSync(core.moduleSocket));
});

test.serial("the core exits when the lifeline fd reaches EOF", async (t) => {
  const core = await startCore({ lifeline_fd: 3, parent_pid: 0 }, ["ignore", "pipe", "pipe", "pipe"]);
  const lifeline = core.child.stdio[3];
  t.truthy(lifeline);
  lifeline?.destroy();
  t.is(await core.exited, 0, core.output());
  t.regex(core.output(), /lifeline fd 3 closed/);
});

test.serial("a bad config makes main.js exit 1 naming the key", async (t) => {
  const file = path.join(tmp, "bad.json");
  writeCoreConfig(file, path.join(tmp, "bad"), { server: { max_pool_size: "many" } });
  const child = spawn(process.execPath, [MAIN, "--config", file], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  t.is(code, 1);
  t.regex(err, /server\.max_pool_size must be an integer 1-10000, got "many"/);
});
