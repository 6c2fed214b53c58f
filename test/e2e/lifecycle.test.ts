/**
 * End-to-end through a real Apache: the core's life as the module manages it.
 * `apachectl graceful` under load fails no request and serves the new code;
 * `apachectl restart` keeps the core; a killed core is restarted; `apachectl
 * stop` ends the core and the apps. Tests run in this order on one Apache.
 */
import test from "ava";
import { existsSync, readFileSync, statSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { ApacheServer, isAlive, makeTempRoot, prepareApp, processesUnder, waitFor, started, stopAndRemove } from "../helpers/apache.js";
import { request } from "../helpers/e2e-http.js";

let server: ApacheServer | undefined;
let root = "";
let app = "";

const srv = (): ApacheServer => started(server);

test.before(async () => {
  root = await makeTempRoot("e2e-life");
  app = await prepareApp(root, "e2e-app", "grace");
  server = await ApacheServer.start({
    root,
    vhosts: [{ serverName: "grace.test", documentRoot: path.join(app, "public"), directives: ["PassengerMinInstances 2"] }],
  });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(80));
});

async function version(): Promise<{ status: number; version?: string; error?: string }> {
  try {
    const r = await request(srv().port, { path: "/version", host: "grace.test", timeoutMs: 30_000 });
    if (r.status !== 200) return { status: r.status, error: r.text.slice(0, 200) };
    return { status: 200, version: (JSON.parse(r.text) as { version: string }).version };
  } catch (e: unknown) {
    return { status: 0, error: e instanceof Error ? e.message : String(e) };
  }
}

interface CoreConfig {
  generation: number;
  instance_dir: string;
  module_socket: string;
  control_socket: string;
  apache_uid: number;
  apache_gid: number;
  parent_pid: number;
  redeploy_on_graceful: string;
  server: Record<string, unknown>;
}

async function coreConfig(): Promise<CoreConfig> {
  return JSON.parse(await readFile(path.join(srv().instanceDir, "config.json"), "utf8")) as CoreConfig;
}

test.serial("the module gives the core its instance dir and config.json (docs/core-config.md)", async (t) => {
  t.is((await version()).status, 200);
  const dir = srv().instanceDir;
  const isRoot = process.getuid?.() === 0;
  t.is(statSync(dir).mode & 0o777, isRoot ? 0o711 : 0o700);
  t.is(statSync(path.join(dir, "config.json")).mode & 0o777, 0o600);
  const cfg = await coreConfig();
  t.is(cfg.generation, 1);
  t.is(cfg.instance_dir, dir);
  t.is(cfg.module_socket, path.join(dir, "module.sock"));
  t.is(cfg.control_socket, path.join(dir, "control.sock"));
  t.is(cfg.parent_pid, srv().pid);
  t.is(cfg.redeploy_on_graceful, "all");
  const wwwData = 33;
  t.is(cfg.apache_uid, isRoot ? wwwData : (process.getuid?.() ?? -1));
  t.is(typeof cfg.server, "object");
  t.true(statSync(cfg.module_socket).isSocket());
  const core = srv().corePid();
  if (core === undefined) return t.fail("no core pid in the error log");
  t.true(isAlive(core));
  // The core runs in its own session, out of reach of Apache's process-group signals.
  const stat = readFileSync(`/proc/${core}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  t.is(Number(fields[3]), core); // session id == its own pid
});

test.serial("apachectl graceful under a load loop fails no request and then serves the new code", async (t) => {
  t.is((await version()).version, "v1");
  const failures: string[] = [];
  const seen = { v1: 0, v2: 0, other: 0 };
  let stopLoad = false;
  let firstV2At = 0;
  const slowStatuses: Array<number | string> = [];
  const worker = async (): Promise<void> => {
    while (!stopLoad) {
      const r = await version();
      if (r.status !== 200) failures.push(`${r.status} ${r.error ?? ""}`);
      else if (r.version === "v1") seen.v1++;
      else if (r.version === "v2") {
        seen.v2++;
        if (firstV2At === 0) firstV2At = Date.now();
      } else seen.other++;
    }
  };
  const workers = Array.from({ length: 4 }, () => worker());
  try {
    await waitFor(() => seen.v1 >= 20, { timeoutMs: 20_000, what: "load on v1" });
    // Deploy new code, then graceful (what a deploy script does), with slow
    // requests in flight across the graceful: they must complete too.
    const file = path.join(app, "app.js");
    await writeFile(file, (await readFile(file, "utf8")).replace('const VERSION = "v1";', 'const VERSION = "v2";'));
    let sent = 0;
    const inFlight = Array.from({ length: 4 }, () =>
      request(srv().port, { path: "/slow?ms=1500", host: "grace.test", timeoutMs: 60_000, onSent: () => sent++ }).then(
        (r) => r.status,
        (e: unknown) => `error ${e instanceof Error ? e.message : String(e)}`,
      ),
    );
    await waitFor(() => sent === 4, { timeoutMs: 10_000, what: "the slow requests to be sent" });
    await srv().graceful();
    slowStatuses.push(...(await Promise.all(inFlight)));
    await waitFor(() => firstV2At !== 0 && Date.now() - firstV2At > 2000 && seen.v2 >= 20, {
      timeoutMs: 60_000,
      what: "v2 served steadily after the graceful",
    });
  } finally {
    stopLoad = true;
    await Promise.all(workers);
  }
  t.deepEqual(failures, []);
  t.deepEqual(slowStatuses, [200, 200, 200, 200]);
  t.true(seen.v1 >= 20 && seen.v2 >= 20, JSON.stringify(seen));
  // Once v2 is out, v1 is gone for good.
  const after = await Promise.all(Array.from({ length: 10 }, () => version()));
  t.deepEqual(after.map((r) => r.version), Array.from({ length: 10 }, () => "v2"));
});

test.serial("apachectl restart (SIGHUP) keeps the same core and keeps serving", async (t) => {
  const core = srv().corePid();
  t.truthy(core);
  await srv().restart();
  t.is(srv().corePid(), core);
  t.true(core !== undefined && isAlive(core));
  t.regex(srv().errorLog(), /FERRY0217: Sent generation 3 to the ferry core/);
  t.is((await coreConfig()).generation, 3);
  t.is((await version()).status, 200);
});

test.serial("a core killed with SIGKILL is restarted by the module and service resumes", async (t) => {
  const core = srv().corePid();
  if (core === undefined) return t.fail("no core pid in the error log");
  process.kill(core, "SIGKILL");
  await waitFor(() => !isAlive(core), { timeoutMs: 10_000, what: "the core to die" });
  const fresh = await waitFor(
    () => {
      const p = srv().corePid();
      return p !== undefined && p !== core ? p : undefined;
    },
    { timeoutMs: 30_000, what: "a new core" },
  );
  t.regex(srv().errorLog(), /FERRY0213: The ferry core \(pid \d+\) died with status 9 \(its exit code or the signal that ended it\); restarting it/);
  await waitFor(async () => (await version()).status === 200, { timeoutMs: 30_000, intervalMs: 200, what: "service to resume" });
  t.true(isAlive(fresh));
});

test.serial("apachectl stop (SIGTERM) stops the core and the apps", async (t) => {
  t.is((await version()).status, 200);
  const core = srv().corePid();
  const appPids = processesUnder(app);
  const instanceDir = srv().instanceDir;
  t.true(core !== undefined && isAlive(core));
  t.true(appPids.length >= 1);
  await srv().stop();
  t.false(srv().isRunning);
  t.false(core !== undefined && isAlive(core));
  t.deepEqual(appPids.filter((p) => isAlive(p)), []);
  t.false(existsSync(instanceDir), `${instanceDir} still exists`);
  t.regex(srv().errorLog(), /FERRY0212: Stopped ferry core/);
});
