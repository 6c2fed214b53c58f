/**
 * The nginx master starts and supervises the core (nginx-module/
 * ngx_http_ferry_daemon.c), as mod_ferry does under Apache: one core per
 * nginx, config.json with the same fields (docs/core-config.md), restarted
 * when it dies, new generation on reload, stopped with nginx.
 */
import test from "ava";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT, isAlive, makeTempRoot, waitFor } from "../../helpers/apache.js";
import { NginxServer, nginxStarted, stopAndRemoveNginx } from "../../helpers/nginx.js";

let root = "";
let nginx: NginxServer | undefined;

interface CoreConfig {
  readonly version: number;
  readonly generation: number;
  readonly instance_dir: string;
  readonly module_socket: string;
  readonly apache_uid: number;
  readonly lifeline_fd: number;
  readonly redeploy_on_graceful: string;
  readonly integration_mode: string;
  readonly server: Readonly<Record<string, unknown>>;
}

function coreConfig(n: NginxServer): CoreConfig {
  return JSON.parse(readFileSync(path.join(n.instanceDir, "config.json"), "utf8")) as CoreConfig;
}

test.before(async () => {
  root = await makeTempRoot("nginx-daemon");
  const site = path.join(root, "site");
  await mkdir(site, { recursive: true });
  nginx = await NginxServer.start({
    root,
    http: ["passenger_max_pool_size 3;", "passenger_pool_idle_time 2m;", "passenger_user_switching off;",
      "passenger_redeploy_on_graceful changed;"],
    servers: [{ serverName: "site.test", root: site }],
  });
});

test.after.always(async () => {
  await stopAndRemoveNginx(nginx, root);
});

test.serial("nginx starts one core with config.json in <pid dir>/ferry-<master pid>", async (t) => {
  const n = nginxStarted(nginx);
  const cfg = coreConfig(n);
  t.is(cfg.version, 1);
  t.is(cfg.generation, 1);
  t.is(cfg.instance_dir, n.instanceDir);
  t.is(cfg.module_socket, path.join(n.instanceDir, "module.sock"));
  t.is(cfg.lifeline_fd, 3);
  t.is(cfg.redeploy_on_graceful, "changed");
  t.is(cfg.integration_mode, "nginx");
  t.like(cfg.server, { max_pool_size: 3, pool_idle_time: 120, user_switching: false });
  t.is(cfg.server.error_log, n.errorLogPath);
  if (process.getuid?.() === 0) t.is(cfg.apache_uid, Number(readFileSync("/etc/passwd", "utf8").match(/^www-data:x:(\d+):/m)?.[1]));
  const pid = await waitFor(() => n.corePid(), { timeoutMs: 20_000, what: "core.pid" });
  t.true(isAlive(pid));
  t.true(statSync(cfg.module_socket).isSocket());
  t.regex(readFileSync(`/proc/${pid}/cmdline`, "utf8"), new RegExp(`${REPO_ROOT}/build/core/src/main.js`));
  t.regex(n.errorLog(), /FERRY0417: Started ferry core/);
  // The instance says it runs under nginx (ferry status shows it).
  const props = await waitFor(() => {
    try {
      return JSON.parse(readFileSync(path.join(n.instanceDir, "properties.json"), "utf8")) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }, { timeoutMs: 20_000, what: "properties.json" });
  t.is(props["integration_mode"], "nginx");
});

test.serial("a core killed with SIGKILL is restarted", async (t) => {
  const n = nginxStarted(nginx);
  const before = await waitFor(() => n.corePid(), { timeoutMs: 20_000, what: "core.pid" });
  process.kill(before, "SIGKILL");
  const after = await waitFor(() => {
    const p = n.corePid();
    return p !== undefined && p !== before && isAlive(p) && existsSync(path.join(n.instanceDir, "module.sock")) ? p : undefined;
  }, { timeoutMs: 30_000, what: "a new core" });
  t.not(after, before);
  t.regex(n.errorLog(), new RegExp(`FERRY0419: The ferry core \\(pid ${before}\\) died with signal 9; restarting it`));
});

test.serial("a reload hands the running core generation 2 (SIGHUP), without a new core", async (t) => {
  const n = nginxStarted(nginx);
  const pid = await waitFor(() => n.corePid(), { timeoutMs: 20_000, what: "core.pid" });
  await n.reload();
  await waitFor(() => /Configuration reloaded \(generation=2/.test(n.errorLog()), { timeoutMs: 20_000, what: "the core to reload" });
  t.is(coreConfig(n).generation, 2);
  t.is(n.corePid(), pid);
  t.regex(n.errorLog(), /FERRY0421: Sent generation 2 to the ferry core/);
});

test.serial("stopping nginx stops the core and removes its instance dir", async (t) => {
  const n = nginxStarted(nginx);
  const pid = await waitFor(() => n.corePid(), { timeoutMs: 20_000, what: "core.pid" });
  const dir = n.instanceDir;
  await n.stop();
  t.false(isAlive(pid));
  await waitFor(() => !existsSync(dir), { timeoutMs: 10_000, what: "the instance dir to go" });
  t.pass();
});

test("nginx refuses to start when passenger_root has no core (FERRY0402)", async (t) => {
  const bad = path.join(root, "bad");
  await mkdir(bad, { recursive: true });
  const err = await t.throwsAsync(NginxServer.start({ root: bad, passengerRoot: bad, servers: [{ serverName: "x.test", root: bad }] }));
  t.regex(err?.message ?? "", /FERRY0402: Cannot start the ferry core: .*build\/core\/src\/main\.js is missing/);
});
