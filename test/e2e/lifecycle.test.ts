/**
 * End-to-end through a real Apache: the core's life as the module manages it.
 * The shared cases (test/e2e/shared/lifecycle-cases.ts; nginx runs them in
 * test/e2e/nginx/lifecycle.test.ts): `apachectl graceful` under load fails no
 * request and serves the new code; `apachectl stop` ends the core and the
 * apps. Apache-only here: config.json as mod_ferry writes it, `apachectl
 * restart` (SIGHUP; nginx has no such signal: its SIGHUP is the graceful
 * reload) and the core's restart after SIGKILL with mod_ferry's log tags
 * (nginx's own are in test/e2e/nginx/daemon.test.ts). Tests run in this order
 * on one Apache.
 */
import test from "ava";
import { readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ApacheServer, isAlive, waitFor } from "../helpers/apache.js";
import { appVersion, lifecycleCases } from "./shared/lifecycle-cases.js";

const { fe, registerReloadCase, registerStopCase } = lifecycleCases(test, "apache");

function srv(): ApacheServer {
  const s = fe().server;
  if (!(s instanceof ApacheServer)) throw new Error("Cannot run: not Apache");
  return s;
}

const version = (): ReturnType<typeof appVersion> => appVersion(fe());

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

registerReloadCase();

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

registerStopCase();
