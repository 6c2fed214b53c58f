/**
 * A private nginx with Ferry's module for development and tests (`ferry
 * nginx start|stop`): its nginx.conf (nginx-conf.ts) in DIR/conf, run as
 * `nginx -p DIR -c DIR/conf/nginx.conf` (daemon off) in its own session,
 * waited for under a deadline; stopped with SIGQUIT (`nginx -s quit`), which
 * makes the module stop the core and the apps.
 */
import { existsSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { processAlive, readPidFile } from "../../os/probes.js";
import { findExecutable, launchPrivateServer, stopPrivateServer, unprivilegedUser } from "../private-server.js";
import { renderNginxDevConfig } from "./nginx-conf.js";

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 60_000;

/** When root, nginx's workers need an unprivileged user. */
export function nginxRunAsLine(): string {
  const u = unprivilegedUser("nginx");
  return u === undefined ? "# not started as root: the workers keep the current user" : `user ${u.user} ${u.group};`;
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
  // nginx in the foreground (daemon off); the master writes its pid file after init_module (so after the module started the core).
  await launchPrivateServer({
    name: "nginx", bin: nginx, args: ["-p", dir, "-c", confPath], pidFile, address, port,
    outLog: path.join(dir, "logs", "nginx.out"), errorLog, stopSignal: "SIGQUIT", timeoutMs: START_TIMEOUT_MS,
  });
  return { errorLog, confPath };
}

/** SIGQUIT the nginx running from `dir` and wait until it is gone; resolves with its pid. */
export async function stopDevNginx(dir: string): Promise<number> {
  return stopPrivateServer("nginx", dir, path.join(dir, "run", "nginx.pid"), "SIGQUIT", STOP_TIMEOUT_MS);
}
