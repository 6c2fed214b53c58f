/**
 * `ferry apache start|stop`'s private development Apache: its httpd.conf
 * (one VirtualHost serving the app, rendered by httpd-conf.ts) under DIR,
 * `apache2 -f DIR/conf/httpd.conf -DFOREGROUND` in its own session, up when
 * its pid file names it and its port accepts, under deadlines; stopped by
 * SIGTERM to the pid in its pid file.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { canConnect, processAlive, readPidFile } from "../../os/probes.js";
import { connectAddress } from "../args.js";
import { fileTail, findExecutable, pollUntil } from "../private-server.js";
import { apacheModulesDir, hostPart, q, renderHttpdConf, renderVhost, runAsLines } from "./httpd-conf.js";

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 60_000;

export interface DevConfig {
  readonly dir: string;
  readonly port: number;
  readonly address: string;
  readonly appDir: string;
  readonly documentRoot: string;
  readonly environment: string;
  readonly modulePath: string;
  readonly modulesDir: string;
  readonly root: string;
  readonly nodejs: string;
  readonly runAs: string;
}

/** The httpd.conf of a private development instance. */
export function renderDevConfig(c: DevConfig): string {
  return renderHttpdConf({
    title: `Private Apache for "ferry apache start"`,
    serverRoot: c.dir,
    address: c.address,
    port: c.port,
    logLevel: "warn ferry:info",
    modulesDir: c.modulesDir,
    modules: ["mpm_event", "authz_core", "mime", "dir", "env", "alias", "reqtimeout"],
    ferryModule: c.modulePath,
    runAs: c.runAs,
    settings: [
      existsSync("/etc/mime.types") ? `TypesConfig /etc/mime.types` : `# no /etc/mime.types`,
      `LogFormat "%h %l %u %t \\"%r\\" %>s %b %D" ferry`,
      `CustomLog ${q(path.join(c.dir, "logs", "access_log"))} ferry`,
    ],
    passenger: { root: c.root, nodejs: c.nodejs },
    vhosts: [renderVhost({
      address: c.address,
      port: c.port,
      serverName: hostPart(c.address),
      documentRoot: c.documentRoot,
      directoryLines: ["AllowOverride All", "Options -MultiViews"],
      directives: [`PassengerAppRoot ${q(c.appDir)}`, `PassengerAppEnv ${c.environment}`],
    })],
  });
}

export interface DevStart {
  readonly dir: string;
  readonly port: number;
  readonly address: string;
  readonly appDir: string;
  readonly environment: string;
  readonly modulePath: string;
  readonly root: string;
}

export interface DevStarted {
  readonly errorLog: string;
  readonly confPath: string;
}

/** Write the config and start Apache; resolves when it serves, throws an Error with the logs' tails otherwise. */
export async function startDevApache(s: DevStart): Promise<DevStarted> {
  const { dir, port, address, appDir, modulePath } = s;
  if (!existsSync(appDir)) throw new Error(`Cannot start Apache: app dir ${appDir} does not exist`);
  if (!existsSync(modulePath)) {
    throw new Error(`Cannot start Apache: ${modulePath} is missing; build it with "npm run build:apache" (needs apache2-dev)`);
  }
  const apache = findExecutable(["apache2", "httpd"]);
  if (apache === undefined) throw new Error("Cannot start Apache: neither apache2 nor httpd is installed");
  const pidFile = path.join(dir, "run", "httpd.pid");
  const running = readPidFile(pidFile);
  if (running !== undefined && processAlive(running)) {
    throw new Error(`Cannot start Apache: one is already running from ${dir} (pid ${running}); run "ferry apache stop --dir ${dir}"`);
  }

  for (const d of [dir, path.join(dir, "run"), path.join(dir, "logs"), path.join(dir, "conf")]) {
    await mkdir(d, { recursive: true });
    await chmod(d, 0o755);
  }
  let documentRoot = path.join(appDir, "public");
  if (!existsSync(documentRoot)) {
    documentRoot = path.join(dir, "htdocs");
    await mkdir(documentRoot, { recursive: true });
    await chmod(documentRoot, 0o755);
  }
  const confPath = path.join(dir, "conf", "httpd.conf");
  await writeFile(confPath, renderDevConfig({
    dir, port, address, appDir, documentRoot, environment: s.environment, modulePath,
    modulesDir: apacheModulesDir(), root: s.root, nodejs: process.execPath, runAs: runAsLines(),
  }));

  const errorLog = path.join(dir, "logs", "error_log");
  const outLog = path.join(dir, "logs", "apache.out");
  // Foreground httpd in its own session (it outlives this command), so an
  // early exit (bad config, core failing to start) is seen at once.
  const out = openSync(outLog, "a");
  const child = spawn(apache, ["-f", confPath, "-DFOREGROUND"], { detached: true, stdio: ["ignore", out, out] });
  closeSync(out);
  let exitCode: number | null = null;
  child.on("error", () => (exitCode = 127));
  child.on("exit", (c, sig) => (exitCode = c ?? (sig === null ? 1 : 128)));
  // httpd writes its PidFile after the configuration (and mod_ferry's core)
  // is up; its port accepts connections earlier than that.
  const up = await pollUntil(
    async () => exitCode !== null || (readPidFile(pidFile) === child.pid && (await canConnect(connectAddress(address), port))),
    START_TIMEOUT_MS,
  );
  if (exitCode !== null || !up) {
    const why = exitCode !== null ? `${apache} exited with ${exitCode}` : `not listening on ${address}:${port} after ${START_TIMEOUT_MS} ms`;
    if (exitCode === null) child.kill("SIGTERM");
    throw new Error(`Cannot start Apache: ${why}\n--- ${outLog} ---\n${fileTail(outLog, 10)}\n--- ${errorLog} ---\n${fileTail(errorLog, 30)}`);
  }
  child.unref();
  return { errorLog, confPath };
}

/** SIGTERM the Apache running from `dir` and wait until it is gone; resolves with its pid. */
export async function stopDevApache(dir: string): Promise<number> {
  const pidFile = path.join(dir, "run", "httpd.pid");
  const pid = readPidFile(pidFile);
  if (pid === undefined || !processAlive(pid)) {
    throw new Error(`Cannot stop Apache: none is running from ${dir} (no live pid in ${pidFile})`);
  }
  process.kill(pid, "SIGTERM");
  if (!(await pollUntil(() => !processAlive(pid), STOP_TIMEOUT_MS))) {
    throw new Error(`Cannot stop Apache: pid ${pid} still running ${STOP_TIMEOUT_MS} ms after SIGTERM`);
  }
  return pid;
}
