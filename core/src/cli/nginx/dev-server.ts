/**
 * A private nginx with Ferry's module for development and tests (`ferry
 * nginx start|stop`): its nginx.conf (nginx-conf.ts) in DIR/conf, run as
 * `nginx -p DIR -c DIR/conf/nginx.conf` (daemon off) in its own session,
 * waited for under a deadline; stopped with SIGQUIT (`nginx -s quit`), which
 * makes the module stop the core and the apps.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { launchPrivateServer, prepareDevServer, stopPrivateServer, type DevServerStart, type DevServerStarted, unprivilegedUser } from "../private-server.js";
import { renderNginxDevConfig } from "./nginx-conf.js";

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 60_000;

/** When root, nginx's workers need an unprivileged user. */
export function nginxRunAsLine(): string {
  const u = unprivilegedUser("nginx");
  return u === undefined ? "# not started as root: the workers keep the current user" : `user ${u.user} ${u.group};`;
}

export type NginxDevStart = DevServerStart;
export type NginxDevStarted = DevServerStarted;

/** Write the config and start nginx; resolves when it serves, throws an Error with the logs' tails otherwise. */
export async function startDevNginx(s: NginxDevStart): Promise<NginxDevStarted> {
  const { dir, port, address, appDir, modulePath } = s;
  const pidFile = path.join(dir, "run", "nginx.pid");
  const { program: nginx, documentRoot } = await prepareDevServer({
    name: "nginx", command: "nginx", dir, appDir, modulePath, moduleHint: 'build it with "npm run build:nginx" (needs nginx-dev)',
    programs: ["nginx"], pidFile, subdirs: ["run", "logs", "conf", "tmp"],
  });
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
