/**
 * The `ferry` command as a user runs it: `bin/ferry.js start` as a child process
 * with a Passengerfile.json, `ferry status` (text and JSON) and `ferry restart`
 * against it, graceful SIGTERM, and usage errors.
 */
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { copyApp, makeTmp, pidGone, req, waitFor } from "../../helpers/standalone.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../bin/ferry.js");
const children: ChildProcess[] = [];
const tmps: string[] = [];
test.after.always(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(tmps.map((d) => fsp.rm(d, { recursive: true, force: true })));
});

const ENV = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/root" };

interface Result { code: number | null; stdout: string; stderr: string }

function ferry(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [BIN, ...args], { env: { ...ENV, ...env }, stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    c.on("error", reject);
    c.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

interface Started { child: ChildProcess; port: number; out: () => string; exited: Promise<number | null> }

async function ferryStart(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, [BIN, "start", ...args], { env: ENV, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => { out += d.toString(); });
  child.stderr?.on("data", (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const port = await waitFor(`"serving" in ferry start's output (stderr: ${err.slice(-500)})`, () => {
    const m = /serving .* on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
    if (m === null && child.exitCode !== null) throw new Error(`ferry start exited ${child.exitCode}: ${err}`);
    return m === null ? undefined : Number(m[1]);
  }, 30_000);
  return { child, port, out: () => out, exited };
}

async function appWithPassengerfile(extra: Record<string, unknown>): Promise<{ dir: string; reg: string }> {
  const tmp = await makeTmp("ferry-h3-cli");
  tmps.push(tmp);
  const dir = await copyApp("h3-app", tmp);
  const reg = path.join(tmp, "reg");
  await fsp.writeFile(path.join(dir, "Passengerfile.json"), JSON.stringify({
    address: "127.0.0.1", port: 0, environment: "production", instance_registry_dir: reg, log_file: path.join(tmp, "ferry.log"), ...extra,
  }));
  return { dir, reg };
}

test.serial("ferry start serves the app with Passengerfile.json; status, restart; SIGTERM drains and exits 0", async (t) => {
  const { dir, reg } = await appWithPassengerfile({ min_instances: 2 });
  const s = await ferryStart([dir]);
  t.regex(s.out(), /Ferry \d+\.\d+\.\d+ serving .*h3-app \(production\)/);
  const home = await req(s.port, "/");
  t.is(home.status, 200);
  await waitFor("2 processes", async () => {
    const r = await ferry(["status", "--json", "--instance-registry-dir", reg]);
    const st = JSON.parse(r.stdout) as { processCount: number };
    return st.processCount >= 2 ? true : undefined;
  });

  const text = await ferry(["status", "--instance-registry-dir", reg]);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /^Version : \d/m);
  t.regex(text.stdout, /^Max pool size : 6$/m);
  t.regex(text.stdout, /^App groups {4}: 1$/m);
  t.regex(text.stdout, /h3-app \(production\):\n {2}App root: .*h3-app/);
  t.regex(text.stdout, /\* PID: \d+ +Sessions: \d+ +Processed: \d+ +Uptime: \d+/);
  t.regex(text.stdout, /CPU: \d+% +Memory {2}: \d+M +Last used: /);

  const json = await ferry(["status", "--json", "--instance-registry-dir", reg]);
  const st = JSON.parse(json.stdout) as { groups: Array<{ appRoot: string; processes: Array<{ pid: number }> }> };
  t.is(st.groups[0]?.appRoot, dir);
  const oldPids = (st.groups[0]?.processes ?? []).map((p) => p.pid);

  const restart = await ferry(["restart", dir, "--instance-registry-dir", reg]);
  t.is(restart.code, 0, restart.stderr);
  t.regex(restart.stdout, /1 app group \(rolling\)/);
  await waitFor("old pids replaced", () => (oldPids.every(pidGone) ? true : undefined), 40_000);
  t.is((await req(s.port, "/")).status, 200);

  // SIGTERM with a request in flight: it completes, then ferry exits 0 and its app processes are gone.
  const st2 = JSON.parse((await ferry(["status", "--json", "--instance-registry-dir", reg])).stdout) as typeof st;
  const pids = (st2.groups[0]?.processes ?? []).map((p) => p.pid);
  const inflight = req(s.port, "/slow?ms=1500");
  await waitFor("the slow request in flight", async () => {
    const r = JSON.parse((await ferry(["status", "--json", "--instance-registry-dir", reg])).stdout) as { groups: Array<{ processes: Array<{ inFlight: number }> }> };
    return (r.groups[0]?.processes ?? []).some((p) => p.inFlight > 0) ? true : undefined;
  });
  s.child.kill("SIGTERM");
  const answer = await inflight;
  t.is(answer.status, 200);
  t.is(await s.exited, 0);
  t.true(pids.every(pidGone), `app pids still alive: ${pids.join(",")}`);
  t.deepEqual(await fsp.readdir(reg), [], "the instance dir is removed");
  const none = await ferry(["status", "--instance-registry-dir", reg]);
  t.is(none.code, 1);
  t.regex(none.stderr, /Cannot find a running Ferry instance/);
});

test("flags override Passengerfile.json, which overrides defaults", async (t) => {
  const { dir, reg } = await appWithPassengerfile({ environment: "staging", max_pool_size: 3 });
  const s = await ferryStart([dir, "--environment", "production", "--max-pool-size", "2", "--instance-registry-dir", reg]);
  t.regex(s.out(), /\(production\)/);
  const st = JSON.parse((await ferry(["status", "--json", "--instance-registry-dir", reg])).stdout) as { maxPoolSize: number };
  t.is(st.maxPoolSize, 2);
  s.child.kill("SIGINT");
  t.is(await s.exited, 0);
});

test("usage and config errors exit 2 or 1 with a message naming the key", async (t) => {
  const bad = await ferry(["start", "--port", "abc"]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--port.*"port".*integer 0-65535/);
  const unknownFlag = await ferry(["start", "--no-such-flag"]);
  t.is(unknownFlag.code, 2);
  const unknownCmd = await ferry(["fly"]);
  t.is(unknownCmd.code, 2);
  t.regex(unknownCmd.stderr, /unknown command "fly"/);
  const { dir } = await appWithPassengerfile({ max_pool_sise: 3 });
  const typo = await ferry(["start", dir]);
  t.is(typo.code, 1);
  t.regex(typo.stderr, /Passengerfile\.json key "max_pool_sise": unknown option/);
  const version = await ferry(["--version"]);
  t.is(version.code, 0);
  t.regex(version.stdout, /^Ferry \d+\.\d+\.\d+$/m);
  const help = await ferry(["start", "--help"]);
  t.is(help.code, 0);
  t.regex(help.stdout, /--sticky-sessions-cookie-attributes/);
});
