/**
 * `ferry apache start|stop`'s private development Apache: its httpd.conf
 * (one VirtualHost serving the app, rendered by httpd-conf.ts) under DIR,
 * `apache2 -f DIR/conf/httpd.conf -DFOREGROUND` in its own session, up when
 * its pid file names it and its port accepts, under deadlines; stopped by
 * SIGTERM to the pid in its pid file.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { launchPrivateServer, prepareDevServer, stopPrivateServer, type DevServerStart, type DevServerStarted } from "../private-server.js";
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

export type DevStart = DevServerStart;
export type DevStarted = DevServerStarted;

/** Write the config and start Apache; resolves when it serves, throws an Error with the logs' tails otherwise. */
export async function startDevApache(s: DevStart): Promise<DevStarted> {
  const { dir, port, address, appDir, modulePath } = s;
  const pidFile = path.join(dir, "run", "httpd.pid");
  const { program: apache, documentRoot } = await prepareDevServer({
    name: "Apache", command: "apache", dir, appDir, modulePath, moduleHint: 'build it with "npm run build:apache" (needs apache2-dev)',
    programs: ["apache2", "httpd"], pidFile, subdirs: ["run", "logs", "conf"],
  });
  const confPath = path.join(dir, "conf", "httpd.conf");
  await writeFile(confPath, renderDevConfig({
    dir, port, address, appDir, documentRoot, environment: s.environment, modulePath,
    modulesDir: apacheModulesDir(), root: s.root, nodejs: process.execPath, runAs: runAsLines(),
  }));

  const errorLog = path.join(dir, "logs", "error_log");
  await launchPrivateServer({
    name: "Apache", bin: apache, args: ["-f", confPath, "-DFOREGROUND"], pidFile, address, port,
    outLog: path.join(dir, "logs", "apache.out"), errorLog, stopSignal: "SIGTERM", timeoutMs: START_TIMEOUT_MS,
  });
  return { errorLog, confPath };
}

/** SIGTERM the Apache running from `dir` and wait until it is gone; resolves with its pid. */
export async function stopDevApache(dir: string): Promise<number> {
  return stopPrivateServer("Apache", dir, path.join(dir, "run", "httpd.pid"), "SIGTERM", STOP_TIMEOUT_MS);
}
