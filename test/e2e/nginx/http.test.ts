/**
 * End-to-end through a real nginx + ngx_http_ferry_module + the core: the
 * shared front-end cases (test/e2e/shared/http-cases.ts, run through Apache
 * by test/e2e/http.test.ts) and nginx's own: static files, server blocks,
 * passenger_env_var. One nginx for the whole file.
 */
import test from "ava";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { isAlive, makeTempRoot, prepareApp, waitFor } from "../../helpers/apache.js";
import { getJson, request } from "../../helpers/e2e-http.js";
import { NginxServer, nginxStarted, stopAndRemoveNginx } from "../../helpers/nginx.js";
import { sharedHttpCases } from "../shared/http-cases.js";

let nginx: NginxServer | undefined;
let root = "";
const apps = { main: "", alpha: "", beta: "", env: "", owned: "" };

const srv = (): NginxServer => nginxStarted(nginx);

/** Does connecting to the Unix socket at p fail with ECONNREFUSED (or ENOENT)? */
function connectRefused(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(p);
    sock.once("connect", () => {
      sock.destroy();
      resolve(false);
    });
    sock.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED" || e.code === "ENOENT"));
  });
}

test.before(async () => {
  root = await makeTempRoot("e2e-nginx-http");
  apps.main = await prepareApp(root, "e2e-app", "main");
  apps.alpha = await prepareApp(root, "e2e-app", "alpha");
  apps.beta = await prepareApp(root, "e2e-app", "beta");
  apps.env = await prepareApp(root, "e2e-app", "envapp");
  apps.owned = await prepareApp(root, "e2e-app", "owned");
  if (process.getuid?.() === 0) execFileSync("chown", ["-R", "daemon:daemon", apps.owned]);
  await writeFile(path.join(apps.main, "public", "static.txt"), "served by nginx\n");
  execFileSync("chmod", ["a+r", path.join(apps.main, "public", "static.txt")]);
  const app = (name: string, dir: string, extra: readonly string[] = []): { serverName: string; root: string; directives: readonly string[] } => ({
    serverName: name,
    root: path.join(dir, "public"),
    directives: ["passenger_enabled on;", "client_max_body_size 0;", ...extra],
  });
  nginx = await NginxServer.start({
    root,
    servers: [
      app("main.test", apps.main),
      app("alpha.test", apps.alpha),
      app("beta.test", apps.beta),
      app("env.test", apps.env, ["passenger_env_var E2E_ENV_VAR hello-from-nginx;", "passenger_app_env staging;"]),
      app("owned.test", apps.owned),
    ],
  });
});

test.after.always(async () => {
  await stopAndRemoveNginx(nginx, root);
});

test.afterEach.always((t) => {
  if (!t.passed && nginx !== undefined) t.log(nginx.errorLogTail(60));
});

sharedHttpCases(test, () => ({ port: srv().port, host: "main.test" }));

test.serial("a static file under the server's root is served by nginx, not the app", async (t) => {
  const res = await request(srv().port, { path: "/static.txt", host: "main.test" });
  t.is(res.status, 200);
  t.is(res.text, "served by nginx\n");
  t.is(res.headers["x-powered-by"], undefined);
});

test.serial("passenger_env_var and passenger_app_env reach the app's environment", async (t) => {
  const body = (await getJson(srv().port, "/env", "env.test")) as { env: Record<string, string> };
  t.is(body.env.E2E_ENV_VAR, "hello-from-nginx");
  t.is(body.env.NODE_ENV, "staging");
  t.is(body.env.PASSENGER_APP_ENV, "staging");
});

test.serial("apps run as the owner of their startup file, nobody when that is root", async (t) => {
  const me = process.getuid?.() ?? -1;
  const isRoot = me === 0;
  const main = (await getJson(srv().port, "/env", "main.test")) as { uid: number };
  const owned = (await getJson(srv().port, "/env", "owned.test")) as { uid: number };
  t.is(main.uid, isRoot ? 65534 : me);
  t.is(owned.uid, isRoot ? 1 : me); // uid 1 = daemon
});

test.serial("two server blocks serve two different apps, each from the parent of its root", async (t) => {
  const a = (await getJson(srv().port, "/pid", "alpha.test")) as { pid: number; cwd: string };
  const b = (await getJson(srv().port, "/pid", "beta.test")) as { pid: number; cwd: string };
  t.is(a.cwd, apps.alpha);
  t.is(b.cwd, apps.beta);
  t.not(a.pid, b.pid);
});

test.serial("a request while the core is down gets 503 (FERRY0430); once restarted the core serves again", async (t) => {
  const core = await waitFor(() => srv().corePid(), { timeoutMs: 20_000, what: "core.pid" });
  const stat = readFileSync(`/proc/${core}/stat`, "utf8");
  const supervisor = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  // Hold the supervisor so the killed core is not restarted before the request.
  process.kill(supervisor, "SIGSTOP");
  try {
    process.kill(core, "SIGKILL");
    // The thread-group leader shows as a zombie before its last thread has
    // closed the listening socket: wait until connecting is refused.
    await waitFor(() => !isAlive(core) && connectRefused(path.join(srv().instanceDir, "module.sock")), {
      timeoutMs: 10_000,
      what: "the core to die and its socket to refuse connections",
    });
    const res = await request(srv().port, { path: "/", host: "main.test" });
    t.is(res.status, 503);
    t.regex(srv().errorLog(), /FERRY0430: Cannot connect to the ferry core at /);
  } finally {
    process.kill(supervisor, "SIGCONT");
  }
  await waitFor(async () => (await request(srv().port, { path: "/", host: "main.test" })).status === 200, {
    timeoutMs: 30_000,
    what: "the restarted core to serve",
  });
  t.pass();
});
