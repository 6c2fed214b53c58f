// Private Apache instances: a generated config under the run directory, a
// loopback port, its own ServerRoot/PidFile/ErrorLog/runtime dir. The system
// Apache (its config, its service) is never used or touched.
import { mkdirSync, writeFileSync, readFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
// The one httpd.conf renderer (core/src/cli/apache/httpd-conf.ts), as built.
import { renderHttpdConf, runAsLines } from "../../build/core/src/cli/apache/httpd-conf.js";

export const APACHE_BIN = "/usr/sbin/apache2";
export const MODULES = "/usr/lib/apache2/modules";

/** The MPM and keep-alive settings every Apache target runs with (also bench/profile-datapath.sh's). */
export const MPM_SIZING = [
  "StartServers 2", "ServerLimit 16", "ThreadLimit 80", "ThreadsPerChild 80", "MaxRequestWorkers 1280",
  "MinSpareThreads 80", "MaxSpareThreads 480", "MaxConnectionsPerChild 0",
  "KeepAlive On", "KeepAliveTimeout 65", "MaxKeepAliveRequests 0", "Timeout 60", "ListenBacklog 4096",
];

/** Why no private Apache can run here, or null. */
export function apacheMissing() {
  if (!existsSync(APACHE_BIN)) return `not installed: ${APACHE_BIN} (Debian apache2)`;
  if (!existsSync(`${MODULES}/mod_mpm_event.so`)) return `not installed: ${MODULES}/mod_mpm_event.so`;
  return null;
}

/** The same server settings for every Apache target; `body` adds the target's part. */
export function writeApacheConfig(dir, port, body, { mpm = "event" } = {}) {
  mkdirSync(join(dir, "run"), { recursive: true });
  mkdirSync(join(dir, "logs"), { recursive: true });
  const conf = renderHttpdConf({
    title: "Private Apache for one benchmark target (bench/run.mjs)",
    serverRoot: dir,
    address: "127.0.0.1",
    port,
    errorLog: join(dir, "logs/error.log"),
    modulesDir: MODULES,
    modules: [`mpm_${mpm}`, "authz_core"],
    runAs: runAsLines(),
    settings: [
      `Mutex file:${dir}/run default`,
      // One MPM sizing for all Apache targets: room for 1,000 tunnelled WebSockets.
      ...MPM_SIZING,
    ],
    global: [body],
  });
  const file = join(dir, "httpd.conf");
  writeFileSync(file, conf);
  return file;
}

export function apacheArgs(dir, confFile) {
  return ["-d", dir, "-f", confFile, "-DFOREGROUND"];
}

export function errorLogTail(dir, lines = 15) {
  const f = join(dir, "logs/error.log");
  if (!existsSync(f)) return "";
  return readFileSync(f, "utf8").split("\n").filter(Boolean).slice(-lines).join("\n");
}

/** A VirtualHost serving an app the Passenger way (Passenger and mod_ferry share it); `sticky`: sticky sessions on. */
export function appVhost(port, appDir, sticky = false) {
  return `<VirtualHost 127.0.0.1:${port}>
  ServerName 127.0.0.1
  DocumentRoot "${appDir}/public"
  PassengerAppRoot "${appDir}"
  PassengerAppType node
  PassengerStartupFile app.js
  PassengerMinInstances 2${sticky ? "\n  PassengerStickySessions on" : ""}
  <Directory "${appDir}/public">
    Require all granted
  </Directory>
</VirtualHost>`;
}

// `node bench/lib/apache.mjs DIR PORT BODY_FILE`: write DIR/httpd.conf (for bench/profile-datapath.sh).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [dir, port, bodyFile] = process.argv.slice(2);
  if (dir === undefined || port === undefined || bodyFile === undefined) {
    process.stderr.write("usage: node bench/lib/apache.mjs DIR PORT BODY_FILE\n");
    process.exit(2);
  }
  process.stdout.write(`${writeApacheConfig(dir, Number(port), readFileSync(bodyFile, "utf8"))}\n`);
}
