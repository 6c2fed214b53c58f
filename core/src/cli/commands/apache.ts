/**
 * `ferry apache start|stop|install`: a private Apache with mod_ferry for
 * development and tests, and the Debian a2enmod snippets for a real server.
 *
 *   ferry apache start [--port 8080] [--address 127.0.0.1] [--dir DIR]
 *                      [--environment development] [APP_DIR]
 *   ferry apache stop [--dir DIR | --port N]
 *   ferry apache install [--dest /etc/apache2/mods-available]
 *
 * `start` renders an httpd.conf into DIR (default $TMPDIR/ferry-apache-<port>),
 * runs `apache2 -f DIR/conf/httpd.conf -DFOREGROUND` in its own session, waits for
 * the port under a deadline and prints the URL and the log path. `install`
 * only writes files and says what to run next: it never enables, reloads or
 * restarts the system's Apache.
 */
import { execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CliIo } from "../io.js";
import { checkApache, passengerEnabled } from "../apache-check.js";

type CommandIO = Pick<CliIo, "stdout" | "stderr"> & Partial<Pick<CliIo, "cwd" | "env">>;

const USAGE = `Usage:
  ferry apache start [--port 8080] [--address 127.0.0.1] [--dir DIR]
                     [--environment development] [--module PATH] [APP_DIR]
  ferry apache stop [--dir DIR | --port N]
  ferry apache install [--dest /etc/apache2/mods-available]
  ferry apache check [--confdir /etc/apache2]

start    run a private Apache with mod_ferry serving APP_DIR (default: .)
stop     stop the private Apache started from DIR
install  write ferry.load and ferry.conf for Debian's a2enmod (prints next steps)
check    Apache's configtest, then every app: app root, owner, startup file,
         user, Node.js; Passenger's module enabled too. One line per problem,
         exit status 1 when any (run it before a graceful)
`;

const DEFAULT_PORT = 8080;
const DEFAULT_ADDRESS = "127.0.0.1";
const DEFAULT_INSTALL_DEST = "/etc/apache2/mods-available";
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 60_000;

/** The ferry package root (this file runs from build/core/src/cli/commands/). */
export function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../..");
}

class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

function say(io: CommandIO, text: string): void {
  io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

function fail(io: CommandIO, text: string): void {
  io.stderr.write(`ferry apache: ${text}\n`);
}

export async function run(args: readonly string[], io: CommandIO): Promise<number> {
  const [sub, ...rest] = args;
  try {
    switch (sub) {
      case "start":
        return await start(rest, io);
      case "stop":
        return await stop(rest, io);
      case "install":
        return await install(rest, io);
      case "check":
        return await check(rest, io);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        (sub === undefined ? io.stderr : io.stdout).write(USAGE);
        return sub === undefined ? EXIT_USAGE : EXIT_OK;
      default:
        throw new UsageError(`unknown subcommand "${sub}"`);
    }
  } catch (e: unknown) {
    if (e instanceof UsageError || (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS"))) {
      fail(io, e.message);
      io.stderr.write(USAGE);
      return EXIT_USAGE;
    }
    fail(io, e instanceof Error ? e.message : String(e));
    return EXIT_FAILURE;
  }
}

// ---------------------------------------------------------------------------
// Option parsing

function parsePort(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new UsageError(`--port must be an integer 1-65535, got "${value}"`);
  }
  return Number(value);
}

function parseAddress(value: string | undefined): string {
  if (value === undefined) return DEFAULT_ADDRESS;
  if (net.isIP(value) === 0 && !/^[A-Za-z0-9.-]+$/.test(value)) {
    throw new UsageError(`--address must be an IP address or host name, got "${value}"`);
  }
  return value;
}

function defaultDir(port: number): string {
  return path.join(os.tmpdir(), `ferry-apache-${port}`);
}

// ---------------------------------------------------------------------------
// System facts

function findExecutable(names: readonly string[]): string | undefined {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"]);
  for (const name of names) {
    for (const dir of dirs) {
      if (dir === "") continue;
      const candidate = path.join(dir, name);
      if (existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

function apacheModulesDir(): string {
  try {
    const dir = execFileSync("apxs", ["-q", "LIBEXECDIR"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    if (dir !== "" && existsSync(path.join(dir, "mod_mpm_event.so"))) return dir;
  } catch {
    /* no apxs: try the usual places */
  }
  for (const dir of ["/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules", "/usr/libexec/apache2"]) {
    if (existsSync(path.join(dir, "mod_mpm_event.so"))) return dir;
  }
  throw new Error("Cannot find Apache's modules (mod_mpm_event.so): install apache2 (Debian) or httpd, or apxs");
}

/** When root, Apache's children need an unprivileged User/Group. */
function runAsLines(): string {
  if (process.getuid?.() !== 0) return "# not started as root: Apache's children keep the current user";
  const passwd = readFileSync("/etc/passwd", "utf8");
  const user = /^www-data:/m.test(passwd) ? "www-data" : /^apache:/m.test(passwd) ? "apache" : "nobody";
  const groups = readFileSync("/etc/group", "utf8");
  const group = new RegExp(`^${user}:`, "m").test(groups) ? user : /^nogroup:/m.test(groups) ? "nogroup" : "nobody";
  return `User ${user}\nGroup ${group}`;
}

function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e: unknown) {
      return e instanceof Error && "code" in e && e.code === "EPERM";
    }
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no error log)";
  }
}

const q = (s: string): string => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

// ---------------------------------------------------------------------------
// start

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
  const mods = ["mpm_event", "authz_core", "mime", "dir", "env", "alias", "reqtimeout"];
  const listenHost = net.isIPv6(c.address) ? `[${c.address}]` : c.address;
  return [
    `# Private Apache for "ferry apache start" (generated; edits are overwritten).`,
    `ServerRoot ${q(c.dir)}`,
    `DefaultRuntimeDir ${q(path.join(c.dir, "run"))}`,
    `PidFile ${q(path.join(c.dir, "run", "httpd.pid"))}`,
    `ErrorLog ${q(path.join(c.dir, "logs", "error_log"))}`,
    `LogLevel warn ferry:info`,
    `Listen ${listenHost}:${c.port}`,
    `ServerName ${listenHost}`,
    ...mods.map((m) => `LoadModule ${m}_module ${q(path.join(c.modulesDir, `mod_${m}.so`))}`),
    `LoadModule ferry_module ${q(c.modulePath)}`,
    existsSync("/etc/mime.types") ? `TypesConfig /etc/mime.types` : `# no /etc/mime.types`,
    c.runAs,
    `LogFormat "%h %l %u %t \\"%r\\" %>s %b %D" ferry`,
    `CustomLog ${q(path.join(c.dir, "logs", "access_log"))} ferry`,
    ``,
    `PassengerRoot ${q(c.root)}`,
    `PassengerNodejs ${q(c.nodejs)}`,
    `PassengerInstanceRegistryDir ${q(path.join(c.dir, "run"))}`,
    ``,
    `<Directory />`,
    `    AllowOverride None`,
    `    Require all denied`,
    `</Directory>`,
    ``,
    `<VirtualHost ${listenHost}:${c.port}>`,
    `    ServerName ${listenHost}`,
    `    DocumentRoot ${q(c.documentRoot)}`,
    `    PassengerAppRoot ${q(c.appDir)}`,
    `    PassengerAppEnv ${c.environment}`,
    `    <Directory ${q(c.documentRoot)}>`,
    `        AllowOverride All`,
    `        Options -MultiViews`,
    `        Require all granted`,
    `    </Directory>`,
    `</VirtualHost>`,
    ``,
  ].join("\n");
}

async function start(args: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      port: { type: "string" },
      address: { type: "string" },
      dir: { type: "string" },
      environment: { type: "string", short: "e" },
      module: { type: "string" },
    },
  });
  if (positionals.length > 1) throw new UsageError("start takes at most one APP_DIR");
  const port = parsePort(values.port, DEFAULT_PORT);
  const address = parseAddress(values.address);
  const environment = values.environment ?? "development";
  if (!/^[A-Za-z0-9_.-]+$/.test(environment)) throw new UsageError(`--environment must be a word, got "${environment}"`);
  const appDir = path.resolve(io.cwd ?? process.cwd(), positionals[0] ?? ".");
  const dir = path.resolve(values.dir ?? defaultDir(port));
  const root = packageRoot();
  const modulePath = path.resolve(values.module ?? path.join(root, "build", "apache", "mod_ferry.so"));

  if (!existsSync(appDir)) throw new Error(`Cannot start Apache: app dir ${appDir} does not exist`);
  if (!existsSync(modulePath)) {
    throw new Error(`Cannot start Apache: ${modulePath} is missing; build it with "npm run build:apache" (needs apache2-dev)`);
  }
  const apache = findExecutable(["apache2", "httpd"]);
  if (apache === undefined) throw new Error("Cannot start Apache: neither apache2 nor httpd is installed");
  const pidFile = path.join(dir, "run", "httpd.pid");
  const running = readPid(pidFile);
  if (running !== undefined && pidAlive(running)) {
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
  await writeFile(
    confPath,
    renderDevConfig({
      dir,
      port,
      address,
      appDir,
      documentRoot,
      environment,
      modulePath,
      modulesDir: apacheModulesDir(),
      root,
      nodejs: process.execPath,
      runAs: runAsLines(),
    }),
  );

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
  const connectHost = address === "0.0.0.0" ? "127.0.0.1" : address === "::" ? "::1" : address;
  // httpd writes its PidFile after the configuration (and mod_ferry's core)
  // is up; its port accepts connections earlier than that.
  const up = await until(
    async () => exitCode !== null || (readPid(pidFile) === child.pid && (await canConnect(connectHost, port))),
    START_TIMEOUT_MS,
  );
  if (exitCode !== null || !up) {
    const why = exitCode !== null ? `${apache} exited with ${exitCode}` : `not listening on ${address}:${port} after ${START_TIMEOUT_MS} ms`;
    if (exitCode === null) child.kill("SIGTERM");
    fail(io, `Cannot start Apache: ${why}`);
    io.stderr.write(`--- ${outLog} ---\n${tail(outLog, 10)}\n--- ${errorLog} ---\n${tail(errorLog, 30)}\n`);
    return EXIT_FAILURE;
  }
  child.unref();
  const host = net.isIPv6(address) ? `[${address}]` : address;
  say(io, `Apache with mod_ferry is serving ${appDir} (${environment})`);
  say(io, `  URL:        http://${host}:${port}/`);
  say(io, `  error log:  ${errorLog}`);
  say(io, `  config:     ${confPath}`);
  say(io, `  stop with:  ferry apache stop --dir ${dir}`);
  return EXIT_OK;
}

// ---------------------------------------------------------------------------
// stop

async function stop(args: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { dir: { type: "string" }, port: { type: "string" } },
  });
  if (positionals.length > 0) throw new UsageError("stop takes no positional arguments");
  const dir = path.resolve(values.dir ?? defaultDir(parsePort(values.port, DEFAULT_PORT)));
  const pidFile = path.join(dir, "run", "httpd.pid");
  const pid = readPid(pidFile);
  if (pid === undefined || !pidAlive(pid)) {
    fail(io, `Cannot stop Apache: none is running from ${dir} (no live pid in ${pidFile})`);
    return EXIT_FAILURE;
  }
  process.kill(pid, "SIGTERM");
  const gone = await until(() => !pidAlive(pid), STOP_TIMEOUT_MS);
  if (!gone) {
    fail(io, `Cannot stop Apache: pid ${pid} still running ${STOP_TIMEOUT_MS} ms after SIGTERM`);
    return EXIT_FAILURE;
  }
  say(io, `Stopped Apache (pid ${pid}) from ${dir}; mod_ferry stopped the core and its apps`);
  return EXIT_OK;
}

// ---------------------------------------------------------------------------
// install

/** ferry.load for a2enmod: LoadModule pointing at this install. */
export function renderLoadFile(root: string, template?: string): string {
  const line = `LoadModule ferry_module ${path.join(root, "build", "apache", "mod_ferry.so")}`;
  if (template !== undefined && /^\s*LoadModule\s+ferry_module\b/m.test(template)) {
    return template.replace(/^\s*LoadModule\s+ferry_module\b.*$/m, line);
  }
  return `# Written by "ferry apache install". Enable with: a2enmod ferry\n${line}\n`;
}

/** ferry.conf for a2enmod: server-wide settings with PassengerRoot (and node) of this install. */
export function renderConfFile(root: string, nodejs: string, template?: string): string {
  const rootLine = `PassengerRoot ${q(root)}`;
  const nodeLine = `PassengerNodejs ${q(nodejs)}`;
  if (template !== undefined && /^\s*#?\s*PassengerRoot\b/m.test(template)) {
    let out = template.replace(/^(\s*)#?\s*PassengerRoot\b.*$/m, `$1${rootLine}`);
    out = /^\s*#?\s*PassengerNodejs\b/m.test(out)
      ? out.replace(/^(\s*)#?\s*PassengerNodejs\b.*$/m, `$1${nodeLine}`)
      : out.replace(rootLine, `${rootLine}\n    ${nodeLine}`);
    return out;
  }
  return [
    `# Written by "ferry apache install": mod_ferry's server-wide settings.`,
    `# Per-app settings belong in your <VirtualHost> (see docs/apache.md).`,
    `<IfModule ferry_module>`,
    `    ${rootLine}`,
    `    ${nodeLine}`,
    `    # PassengerDefaultUser nobody`,
    `    # PassengerMaxPoolSize 6`,
    `    # PassengerPoolIdleTime 300`,
    `    # What "apachectl graceful" redeploys: all | changed | off`,
    `    # PassengerRedeployOnGraceful all`,
    `</IfModule>`,
    ``,
  ].join("\n");
}

async function install(args: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { dest: { type: "string" } },
  });
  if (positionals.length > 0) throw new UsageError("install takes no positional arguments");
  const root = packageRoot();
  const dest = path.resolve(values.dest ?? DEFAULT_INSTALL_DEST);
  const modulePath = path.join(root, "build", "apache", "mod_ferry.so");
  if (!existsSync(dest)) {
    throw new Error(`Cannot install: ${dest} does not exist (is Apache installed? use --dest DIR)`);
  }
  const readTemplate = async (name: string): Promise<string | undefined> => {
    const file = path.join(root, "conf", name);
    return existsSync(file) ? readFile(file, "utf8") : undefined;
  };
  const files: Array<[string, string]> = [
    ["ferry.load", renderLoadFile(root, await readTemplate("ferry.load"))],
    ["ferry.conf", renderConfFile(root, process.execPath, await readTemplate("ferry.conf"))],
  ];
  for (const [name, text] of files) {
    const file = path.join(dest, name);
    const verb = existsSync(file) ? "Updated" : "Wrote";
    await writeFile(file, text, { mode: 0o644 });
    say(io, `${verb} ${file}`);
  }
  say(io, `PassengerRoot is ${root}`);
  if (!existsSync(modulePath)) {
    say(io, `Warning: ${modulePath} does not exist yet; build it with "npm run build:apache" first`);
  }
  const confdir = path.dirname(dest);
  if (passengerEnabled(confdir)) {
    say(io, "");
    say(io, `Warning: Passenger's module is enabled (${path.join(confdir, "mods-enabled", "passenger.load")}).`);
    say(io, "  Both modules claim the Passenger* directives and Passenger's PassengerRoot wins: Apache would");
    say(io, "  refuse to start Ferry's core. Disable it first, keeping your VirtualHosts as they are:");
    say(io, "    a2dismod passenger");
    say(io, "");
  }
  say(io, "Nothing was enabled or restarted. Next steps:");
  say(io, "  a2enmod ferry");
  say(io, "  ferry apache check           # Apache's configtest, then every app");
  say(io, "  systemctl reload apache2     # or: apachectl graceful");
  say(io, "Then add PassengerAppRoot/PassengerEnabled to a VirtualHost (docs/apache.md).");
  return EXIT_OK;
}

// ---------------------------------------------------------------------------
// check

async function check(args: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { confdir: { type: "string" } },
  });
  if (positionals.length > 0) throw new UsageError("check takes no positional arguments");
  const env = io.env ?? {};
  const confdir = path.resolve(io.cwd ?? "/", values.confdir ?? env["APACHE_CONFDIR"] ?? "/etc/apache2");
  const r = await checkApache({ confdir, env });
  for (const p of r.problems) io.stdout.write(`${p.where}: ${p.what}\n`);
  if (r.problems.length > 0) {
    io.stdout.write(`${r.problems.length} problem${r.problems.length === 1 ? "" : "s"} found (${r.apps.length} app${r.apps.length === 1 ? "" : "s"} checked in ${confdir})\n`);
    return EXIT_FAILURE;
  }
  io.stdout.write(`OK: configtest passed, ${r.apps.length} app${r.apps.length === 1 ? "" : "s"} checked in ${confdir}, no problems\n`);
  return EXIT_OK;
}
