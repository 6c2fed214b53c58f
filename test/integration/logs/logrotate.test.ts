/**
 * conf/logrotate.d/ferry as shipped, run by the real logrotate against a
 * `ferry start` instance under load (only /var/log/ferry is pointed at a temp
 * dir): the log and the app log are rotated, the postrotate's `ferry
 * reopen-logs --all` makes the instance write to the new files, and no app
 * line is lost.
 */
import test from "ava";
import { execFile as execFileCb, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT } from "../../helpers/apache.js";
import { copyApp, makeTmp, req, waitFor } from "../../helpers/standalone.js";

const execFile = promisify(execFileCb);

let tmp = "";
let child: ChildProcess | undefined;

test.after.always(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  }
  if (tmp !== "") await rm(tmp, { recursive: true, force: true });
});

const lines = async (file: string): Promise<string[]> => (await readFile(file, "utf8").catch(() => "")).split("\n").filter((l) => l !== "");

test("logrotate with conf/logrotate.d/ferry rotates a running instance's logs; no line is lost", async (t) => {
  if (!existsSync("/usr/sbin/logrotate")) throw new Error("Cannot run: logrotate is not installed (sh scripts/install-deps.sh)");
  tmp = await makeTmp("ferry-logrotate");
  const app = await copyApp("e2e-app", tmp);
  const logDir = path.join(tmp, "log");
  const reg = path.join(tmp, "reg");
  const bin = path.join(tmp, "bin");
  for (const d of [logDir, reg, bin]) await mkdir(d, { recursive: true, mode: 0o755 });
  await writeFile(path.join(bin, "ferry"), `#!/bin/sh\nexec "${process.execPath}" "${path.join(REPO_ROOT, "bin/ferry.js")}" "$@"\n`);
  await chmod(path.join(bin, "ferry"), 0o755);
  const shipped = await readFile(path.join(REPO_ROOT, "conf/logrotate.d/ferry"), "utf8");
  const conf = path.join(tmp, "logrotate.conf");
  await writeFile(conf, shipped.replaceAll("/var/log/ferry/", `${logDir}/`), { mode: 0o644 });
  const env = { ...process.env, PATH: `${bin}:${process.env["PATH"] ?? ""}`, PASSENGER_INSTANCE_REGISTRY_DIR: reg };

  child = spawn(process.execPath, [path.join(REPO_ROOT, "bin/ferry.js"), "start", app, "--port", "0", "--instance-registry-dir", reg,
    "--log-file", path.join(logDir, "ferry.log"), "--app-log-file", path.join(logDir, "app.log"), "--environment", "production"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const port = await waitFor("ferry start to listen", () => {
    const m = / on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
    return m?.[1] === undefined ? undefined : Number(m[1]);
  }, 30_000);

  let seq = 0;
  let stop = false;
  const sent: number[] = [];
  const client = async (): Promise<void> => {
    while (!stop) {
      const n = seq++;
      const r = await req(port, `/say?line=line-${n}`);
      if (r.status !== 200) throw new Error(`request ${n}: ${r.status}`);
      sent.push(n);
    }
  };
  const clients = Array.from({ length: 3 }, () => client());
  try {
    await waitFor("50 lines", () => (seq > 50 ? true : undefined), 30_000, 10);
    const r = await execFile("/usr/sbin/logrotate", ["-f", "-s", path.join(tmp, "logrotate.state"), conf], { env, timeout: 60_000 });
    t.is(r.stderr.trim(), "");
    const after = seq;
    await waitFor("the instance to reopen its logs", async () => ((await lines(path.join(logDir, "ferry.log"))).some((l) => l.includes("Log files reopened")) ? true : undefined), 15_000);
    await waitFor("50 more lines", () => (seq > after + 50 ? true : undefined), 30_000, 10);
  } finally {
    stop = true;
    await Promise.allSettled(clients);
  }
  t.true(existsSync(path.join(logDir, "app.log.1")), "the app log was rotated (delaycompress keeps .1 plain)");
  t.true(existsSync(path.join(logDir, "ferry.log.1")), "the instance log was rotated");
  const said = (l: string): string => l.replace(/^.*stdout: /, "");
  const want = new Set(sent.map((x) => `line-${x}`));
  await waitFor("every line in the app logs", async () => {
    const all = [...await lines(path.join(logDir, "app.log.1")), ...await lines(path.join(logDir, "app.log"))].map(said);
    return all.filter((l) => want.has(l)).length >= want.size ? true : undefined;
  }, 15_000);
  const all = [...await lines(path.join(logDir, "app.log.1")), ...await lines(path.join(logDir, "app.log"))].map(said).filter((l) => l.startsWith("line-"));
  t.is(all.length, want.size, "each line exactly once");
  t.true((await lines(path.join(logDir, "app.log"))).length > 0, "the new app log gets the later lines");
});
