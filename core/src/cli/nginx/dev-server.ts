/**
 * A private nginx with Ferry's module for development and tests (`ferry
 * nginx start|stop`): its nginx.conf (nginx-conf.ts) in DIR/conf, run as
 * `nginx -p DIR -c DIR/conf/nginx.conf` (daemon off) in its own session,
 * waited for under a deadline; stopped with SIGQUIT (`nginx -s quit`), which
 * makes the module stop the core and the apps.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { canConnect, processAlive, readPidFile } from "../../os/probes.js";
import { connectAddress } from "../args.js";
import { fileTail, findExecutable, pollUntil } from "../private-server.js";
import { renderNginxDevConfig } from "./nginx-conf.js";

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 60_000;

/** When root, nginx's workers need an unprivileged user. */
export function nginxRunAsLine(): string {
  if (process.getuid?.() !== 0) return "# not started as root: the workers keep the current user";
  const passwd = readFileSync("/etc/passwd", "utf8");
  const user = /^www-data:/m.test(passwd) ? "www-data" : /^nginx:/m.test(passwd) ? "nginx" : "nobody";
  const groups = readFileSync("/etc/group", "utf8");
  const group = new RegExp(`^${user}:`, "m").test(groups) ? user : /^nogroup:/m.test(groups) ? "nogroup" : "nobody";
  return `user ${user} ${group};`;
}

export interface NginxDevStart {
  readonly dir: string;
  readonly port: number;
  readonly address: string;
  readonly appDir: string;
  readonly environment: string;
  readonly modulePath: string;
  readonly root: string;
}

export interface NginxDevStarted {
  readonly errorLog: string;
  readonly confPath: string;
}

/** Write the config and start nginx; resolves when it serves, throws an Error with the logs' tails otherwise. */
export async function startDevNginx(s: NginxDevStart): Promise<NginxDevStarted> {
  const { dir, port, address, appDir, modulePath } = s;
  if (!existsSync(appDir)) throw new Error(`Cannot start nginx: app dir ${appDir} does not exist`);
  if (!existsSync(modulePath)) {
    throw new Error(`Cannot start nginx: ${modulePath} is missing; build it with "npm run build:nginx" (needs nginx-dev)`);
  }
  const nginx = findExecutable(["nginx"]);
  if (nginx === undefined) throw new Error("Cannot start nginx: nginx is not installed");
  const pidFile = path.join(dir, "run", "nginx.pid");
  const running = readPidFile(pidFile);
  if (running !== undefined && processAlive(running)) {
    throw new Error(`Cannot start nginx: one is already running from ${dir} (pid ${running}); run "ferry nginx stop --dir ${dir}"`);
  }

  for (const d of ["", "run", "logs", "conf", "tmp"]) {
    await mkdir(path.join(dir, d), { recursive: true });
    await chmod(path.join(dir, d), 0o755);
  }
  let documentRoot = path.join(appDir, "public");
  if (!existsSync(documentRoot)) {
    documentRoot = path.join(dir, "htdocs");
    await mkdir(documentRoot, { recursive: true });
    await chmod(documentRoot, 0o755);
  }
  const confPath = path.join(dir, "conf", "nginx.conf");
  await writeFile(confPath, renderNginxDevConfig({
    dir, port, address, appDir, documentRoot, environment: s.environment, modulePath, root: s.root,
    nodejs: process.execPath, runAs: nginxRunAsLine(),
    mimeTypes: existsSync("/etc/nginx/mime.types") ? "/etc/nginx/mime.types" : undefined,
  }));

  const errorLog = path.join(dir, "logs", "error.log");
  const outLog = path.join(dir, "logs", "nginx.out");
  // nginx in the foreground (daemon off) in its own session: it outlives this
  // command, and an early exit (bad config, the core failing) is seen at once.
  const out = openSync(outLog, "a");
  const child = spawn(nginx, ["-p", dir, "-c", confPath], { detached: true, stdio: ["ignore", out, out] });
  closeSync(out);
  let exitCode: number | null = null;
  child.on("error", () => (exitCode = 127));
  child.on("exit", (c, sig) => (exitCode = c ?? (sig === null ? 1 : 128)));
  // The master writes its pid file after init_module (so after the module
  // started the core).
  const up = await pollUntil(
    async () => exitCode !== null || (readPidFile(pidFile) === child.pid && (await canConnect(connectAddress(address), port))),
    START_TIMEOUT_MS,
  );
  if (exitCode !== null || !up) {
    const why = exitCode !== null ? `${nginx} exited with ${exitCode}` : `not listening on ${address}:${port} after ${START_TIMEOUT_MS} ms`;
    if (exitCode === null) child.kill("SIGQUIT");
    throw new Error(`Cannot start nginx: ${why}\n--- ${outLog} ---\n${fileTail(outLog, 10)}\n--- ${errorLog} ---\n${fileTail(errorLog, 30)}`);
  }
  child.unref();
  return { errorLog, confPath };
}

/** SIGQUIT the nginx running from `dir` and wait until it is gone; resolves with its pid. */
export async function stopDevNginx(dir: string): Promise<number> {
  const pidFile = path.join(dir, "run", "nginx.pid");
  const pid = readPidFile(pidFile);
  if (pid === undefined || !processAlive(pid)) {
    throw new Error(`Cannot stop nginx: none is running from ${dir} (no live pid in ${pidFile})`);
  }
  process.kill(pid, "SIGQUIT");
  if (!(await pollUntil(() => !processAlive(pid), STOP_TIMEOUT_MS))) {
    throw new Error(`Cannot stop nginx: pid ${pid} still running ${STOP_TIMEOUT_MS} ms after SIGQUIT`);
  }
  return pid;
}
