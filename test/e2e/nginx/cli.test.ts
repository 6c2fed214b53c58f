/**
 * End-to-end: `ferry nginx start` / `ferry nginx stop` run a real private
 * nginx with Ferry's module that serves an app, and stop it with its core and
 * apps; `ferry nginx install --prefix` writes Debian's snippets into a temp
 * root (never /etc) that `nginx -t` accepts once the site is enabled.
 */
import test from "ava";
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT, freePort, makeTempRoot, prepareApp, processesUnder, waitFor } from "../../helpers/apache.js";
import { request } from "../../helpers/e2e-http.js";
import { ensureNginxInstalled } from "../../helpers/nginx.js";

const run = promisify(execFile);
const FERRY = path.join(REPO_ROOT, "bin", "ferry.js");
let root = "";
let dir = "";

test.before(async () => {
  ensureNginxInstalled();
  root = await makeTempRoot("e2e-cli-nginx");
  dir = path.join(root, "instance");
});

test.after.always(async () => {
  if (root === "") return;
  try {
    await run(process.execPath, [FERRY, "nginx", "stop", "--dir", dir], { timeout: 70_000 });
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

function failure(e: unknown): { code: number; stderr: string } {
  return {
    code: typeof e === "object" && e !== null ? Number(Reflect.get(e, "code")) : -1,
    stderr: String(typeof e === "object" && e !== null ? Reflect.get(e, "stderr") : ""),
  };
}

test.serial("ferry nginx start serves the app and ferry nginx stop ends nginx, the core and the app", async (t) => {
  const app = await prepareApp(root, "e2e-app", "cliapp");
  const port = await freePort();
  const started = await run(process.execPath, [FERRY, "nginx", "start", "--port", String(port), "--dir", dir, app], { timeout: 60_000 });
  t.regex(started.stdout, new RegExp(`URL: +http://127\\.0\\.0\\.1:${port}/`));
  t.regex(started.stdout, new RegExp(`error log: +${dir}/logs/error\\.log`));
  const res = await request(port, { path: "/env", timeoutMs: 30_000 });
  t.is(res.status, 200, res.text.slice(0, 300));
  t.is((JSON.parse(res.text) as { env: Record<string, string> }).env.NODE_ENV, "development");
  t.true(processesUnder(app).length >= 1);

  const again = await run(process.execPath, [FERRY, "nginx", "start", "--port", String(port), "--dir", dir, app], { timeout: 60_000 }).then(
    () => ({ code: 0, stderr: "" }),
    failure,
  );
  t.is(again.code, 1);
  t.regex(again.stderr, /already running/);

  const stopped = await run(process.execPath, [FERRY, "nginx", "stop", "--dir", dir], { timeout: 70_000 });
  t.regex(stopped.stdout, /Stopped nginx \(pid \d+\)/);
  await waitFor(() => processesUnder(root).length === 0, { timeoutMs: 20_000, what: "nginx, the core and the app to exit" });
  t.deepEqual(processesUnder(root), []);
});

test.serial("ferry nginx install --prefix writes Debian's snippets, which nginx -t accepts with the site enabled", async (t) => {
  const prefix = path.join(root, "debian");
  const etc = path.join(prefix, "etc", "nginx");
  for (const d of ["modules-enabled", "conf.d", "sites-available", "sites-enabled"]) await mkdir(path.join(etc, d), { recursive: true });
  const app = await prepareApp(root, "e2e-app", "siteapp");
  const out = await run(process.execPath, [FERRY, "nginx", "install", "--prefix", prefix, "--app", app, "--server-name", "site.test"], { timeout: 30_000 });
  t.regex(out.stdout, /Wrote .*modules-enabled\/50-mod-http-ferry\.conf/);
  t.regex(out.stdout, /Nothing was reloaded or restarted/);
  t.true((await readFile(path.join(etc, "conf.d", "ferry.conf"), "utf8")).includes(`passenger_root ${REPO_ROOT};`));
  // Debian's nginx.conf shape, with the prefix's paths and private runtime files.
  await symlink("../sites-available/ferry", path.join(etc, "sites-enabled", "ferry"));
  const conf = path.join(etc, "nginx.conf");
  await writeFile(
    conf,
    [
      `pid ${prefix}/nginx.pid;`,
      `error_log ${prefix}/error.log;`,
      `include ${etc}/modules-enabled/*.conf;`,
      `events { worker_connections 64; }`,
      `http {`,
      `    access_log off;`,
      `    include ${etc}/conf.d/*.conf;`,
      `    include ${etc}/sites-enabled/*;`,
      `}`,
      ``,
    ].join("\n"),
  );
  const check = await run("nginx", ["-t", "-p", prefix, "-c", conf], { timeout: 30_000 }).then(
    (r) => ({ code: 0, output: r.stdout + r.stderr }),
    (e: unknown) => ({ code: failure(e).code, output: failure(e).stderr }),
  );
  t.is(check.code, 0, check.output);
  t.regex(check.output, /syntax is ok/);
});
