/**
 * End-to-end: `ferry apache start` / `ferry apache stop` run a real private
 * Apache with mod_ferry that serves an app, and stop it with its core and apps.
 */
import test from "ava";
import { execFile, execFileSync } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT, freePort, makeTempRoot, prepareApp, processesUnder, waitFor } from "../helpers/apache.js";
import { request } from "../helpers/e2e-http.js";

const run = promisify(execFile);
const FERRY = path.join(REPO_ROOT, "bin", "ferry.js");
let root = "";
let dir = "";

test.before(async () => {
  root = await makeTempRoot("e2e-cli");
  dir = path.join(root, "instance");
});

test.after.always(async () => {
  if (root === "") return;
  try {
    await run(process.execPath, [FERRY, "apache", "stop", "--dir", dir], { timeout: 70_000 });
  } catch {
    /* not running */
  }
  for (const pid of processesUnder(root)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  await rm(root, { recursive: true, force: true });
});

test.serial("ferry apache start serves the app and ferry apache stop ends Apache, the core and the app", async (t) => {
  const app = await prepareApp(root, "e2e-app", "cliapp");
  const port = await freePort();
  const started = await run(process.execPath, [FERRY, "apache", "start", "--port", String(port), "--dir", dir, app], { timeout: 60_000 });
  t.regex(started.stdout, new RegExp(`URL: +http://127\\.0\\.0\\.1:${port}/`));
  t.regex(started.stdout, new RegExp(`error log: +${dir}/logs/error_log`));
  const res = await request(port, { path: "/env", timeoutMs: 30_000 });
  t.is(res.status, 200, res.text.slice(0, 300));
  t.is((JSON.parse(res.text) as { env: Record<string, string> }).env.NODE_ENV, "development");
  t.true(processesUnder(app).length >= 1);

  const again = await run(process.execPath, [FERRY, "apache", "start", "--port", String(port), "--dir", dir, app], { timeout: 60_000 }).then(
    () => ({ code: 0, stderr: "" }),
    (e: unknown) => ({ code: typeof e === "object" && e !== null ? Number(Reflect.get(e, "code")) : -1, stderr: String(typeof e === "object" && e !== null ? Reflect.get(e, "stderr") : "") }),
  );
  t.is(again.code, 1);
  t.regex(again.stderr, /already running/);

  const stopped = await run(process.execPath, [FERRY, "apache", "stop", "--dir", dir], { timeout: 70_000 });
  t.regex(stopped.stdout, /Stopped Apache \(pid \d+\)/);
  await waitFor(() => processesUnder(root).length === 0, { timeoutMs: 20_000, what: "Apache, the core and the app to exit" });
  t.deepEqual(processesUnder(root), []);
});

test.serial("ferry apache install writes ferry.load and ferry.conf that apache2 -t accepts", async (t) => {
  const dest = path.join(root, "mods-available");
  await mkdir(dest, { recursive: true });
  const out = await run(process.execPath, [FERRY, "apache", "install", "--dest", dest], { timeout: 30_000 });
  t.regex(out.stdout, /Wrote .*ferry\.load/);
  t.regex(out.stdout, /Nothing was enabled or restarted/);
  const modules = execFileSync("apxs", ["-q", "LIBEXECDIR"], { encoding: "utf8" }).trim();
  const conf = path.join(root, "check.conf");
  await writeFile(
    conf,
    [
      `ServerRoot "${root}"`,
      `ServerName 127.0.0.1`,
      `PidFile "${root}/check.pid"`,
      `ErrorLog "${root}/check.log"`,
      `Listen 127.0.0.1:${await freePort()}`,
      `LoadModule mpm_event_module "${modules}/mod_mpm_event.so"`,
      `LoadModule authz_core_module "${modules}/mod_authz_core.so"`,
      `Include "${dest}/ferry.load"`,
      `Include "${dest}/ferry.conf"`,
      "",
    ].join("\n"),
  );
  const check = await run("apache2", ["-t", "-f", conf], { timeout: 30_000 });
  t.regex(check.stdout + check.stderr, /Syntax OK/);
  t.true((await readFile(path.join(dest, "ferry.conf"), "utf8")).includes(`PassengerRoot "${REPO_ROOT}"`));
});
