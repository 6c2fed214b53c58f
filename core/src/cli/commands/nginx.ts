/**
 * `ferry nginx start|stop|install`: a private nginx with Ferry's module for
 * development and tests, and the snippets of Debian's nginx layout for a
 * real server.
 *
 *   ferry nginx start [--port 8080] [--address 127.0.0.1] [--dir DIR]
 *                     [--environment development] [--module PATH] [APP_DIR]
 *   ferry nginx stop [--dir DIR | --port N]
 *   ferry nginx install [--prefix /] [--dry-run] [--app DIR] [--server-name NAME]
 *
 * `start` renders nginx.conf into DIR (default $TMPDIR/ferry-nginx-<port>),
 * runs `nginx -p DIR -c DIR/conf/nginx.conf` (daemon off) in its own session,
 * waits for the pid file and the port under a deadline, and prints the URL
 * and the log path. `install` only writes files (or, with --dry-run, prints
 * them) and says what to run next: it never reloads or restarts the
 * system's nginx. The text of every file comes from ../nginx-config.ts.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CliIo } from "../io.js";
import {
  nginxModulePath,
  renderNginxDevConfig,
  renderNginxHttpSnippet,
  renderNginxLoadSnippet,
  renderNginxSiteSnippet,
} from "../nginx-config.js";

type CommandIO = Pick<CliIo, "stdout" | "stderr"> & Partial<Pick<CliIo, "cwd" | "env">>;

const USAGE = `Usage:
  ferry nginx start [--port 8080] [--address 127.0.0.1] [--dir DIR]
                    [--environment development] [--module PATH] [APP_DIR]
  ferry nginx stop [--dir DIR | --port N]
  ferry nginx install [--prefix /] [--dry-run] [--app DIR] [--server-name NAME]

start    run a private nginx with Ferry's module serving APP_DIR (default: .)
stop     stop the private nginx started from DIR
install  write the load_module line (etc/nginx/modules-enabled), the server-wide
         settings (etc/nginx/conf.d) and an example site (etc/nginx/sites-available)
         under PREFIX for Debian's nginx; --dry-run prints them instead (and the
         next steps). Nothing is reloaded or restarted
`;

const DEFAULT_PORT = 8080;
const DEFAULT_ADDRESS = "127.0.0.1";
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 60_000;

/** The ferry package root (this file runs from build/core/src/cli/commands/). */
function packageRoot(): string {
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
  io.stderr.write(`ferry nginx: ${text}\n`);
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
  return path.join(os.tmpdir(), `ferry-nginx-${port}`);
}

// ---------------------------------------------------------------------------
// System facts

function findNginx(): string | undefined {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"]);
  for (const dir of dirs) {
    if (dir === "") continue;
    const candidate = path.join(dir, "nginx");
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** When root, nginx's workers need an unprivileged user. */
function runAsLine(): string {
  if (process.getuid?.() !== 0) return "# not started as root: the workers keep the current user";
  const passwd = readFileSync("/etc/passwd", "utf8");
  const user = /^www-data:/m.test(passwd) ? "www-data" : /^nginx:/m.test(passwd) ? "nginx" : "nobody";
  const groups = readFileSync("/etc/group", "utf8");
  const group = new RegExp(`^${user}:`, "m").test(groups) ? user : /^nogroup:/m.test(groups) ? "nogroup" : "nobody";
  return `user ${user} ${group};`;
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

// ---------------------------------------------------------------------------
// start

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
  const modulePath = path.resolve(values.module ?? nginxModulePath(root));

  if (!existsSync(appDir)) throw new Error(`Cannot start nginx: app dir ${appDir} does not exist`);
  if (!existsSync(modulePath)) {
    throw new Error(`Cannot start nginx: ${modulePath} is missing; build it with "npm run build:nginx" (needs nginx-dev)`);
  }
  const nginx = findNginx();
  if (nginx === undefined) throw new Error("Cannot start nginx: nginx is not installed");
  const pidFile = path.join(dir, "run", "nginx.pid");
  const running = readPid(pidFile);
  if (running !== undefined && pidAlive(running)) {
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
  await writeFile(
    confPath,
    renderNginxDevConfig({
      dir,
      port,
      address,
      appDir,
      documentRoot,
      environment,
      modulePath,
      root,
      nodejs: process.execPath,
      runAs: runAsLine(),
      mimeTypes: existsSync("/etc/nginx/mime.types") ? "/etc/nginx/mime.types" : undefined,
    }),
  );

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
  const connectHost = address === "0.0.0.0" ? "127.0.0.1" : address === "::" ? "::1" : address;
  // The master writes its pid file after init_module (so after the module
  // started the core).
  const up = await until(
    async () => exitCode !== null || (readPid(pidFile) === child.pid && (await canConnect(connectHost, port))),
    START_TIMEOUT_MS,
  );
  if (exitCode !== null || !up) {
    const why = exitCode !== null ? `${nginx} exited with ${exitCode}` : `not listening on ${address}:${port} after ${START_TIMEOUT_MS} ms`;
    if (exitCode === null) child.kill("SIGQUIT");
    fail(io, `Cannot start nginx: ${why}`);
    io.stderr.write(`--- ${outLog} ---\n${tail(outLog, 10)}\n--- ${errorLog} ---\n${tail(errorLog, 30)}\n`);
    return EXIT_FAILURE;
  }
  child.unref();
  const host = net.isIPv6(address) ? `[${address}]` : address;
  say(io, `nginx with Ferry's module is serving ${appDir} (${environment})`);
  say(io, `  URL:        http://${host}:${port}/`);
  say(io, `  error log:  ${errorLog}`);
  say(io, `  config:     ${confPath}`);
  say(io, `  stop with:  ferry nginx stop --dir ${dir}`);
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
  const pidFile = path.join(dir, "run", "nginx.pid");
  const pid = readPid(pidFile);
  if (pid === undefined || !pidAlive(pid)) {
    fail(io, `Cannot stop nginx: none is running from ${dir} (no live pid in ${pidFile})`);
    return EXIT_FAILURE;
  }
  // SIGQUIT: nginx's graceful shutdown (`nginx -s quit`); the module stops the core.
  process.kill(pid, "SIGQUIT");
  const gone = await until(() => !pidAlive(pid), STOP_TIMEOUT_MS);
  if (!gone) {
    fail(io, `Cannot stop nginx: pid ${pid} still running ${STOP_TIMEOUT_MS} ms after SIGQUIT`);
    return EXIT_FAILURE;
  }
  say(io, `Stopped nginx (pid ${pid}) from ${dir}; the module stopped the core and its apps`);
  return EXIT_OK;
}

// ---------------------------------------------------------------------------
// install

async function install(args: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      prefix: { type: "string" },
      "dry-run": { type: "boolean" },
      app: { type: "string" },
      "server-name": { type: "string" },
    },
  });
  if (positionals.length > 0) throw new UsageError("install takes no positional arguments");
  const cwd = io.cwd ?? process.cwd();
  const prefix = path.resolve(cwd, values.prefix ?? "/");
  const dryRun = values["dry-run"] === true;
  const appDir = path.resolve(cwd, values.app ?? "/srv/app");
  const serverName = values["server-name"] ?? "app.example.com";
  if (!/^[A-Za-z0-9*_.-]+$/.test(serverName)) throw new UsageError(`--server-name must be a host name, got "${serverName}"`);
  const root = packageRoot();
  const etc = path.join(prefix, "etc", "nginx");
  if (!existsSync(etc)) {
    throw new Error(`Cannot install: ${etc} does not exist (is nginx installed? use --prefix DIR)`);
  }
  const files: Array<[string, string]> = [
    [path.join(etc, "modules-enabled", "50-mod-http-ferry.conf"), renderNginxLoadSnippet(root)],
    [path.join(etc, "conf.d", "ferry.conf"), renderNginxHttpSnippet(root, process.execPath)],
    [path.join(etc, "sites-available", "ferry"), renderNginxSiteSnippet({ serverName, appDir, port: 80 })],
  ];
  for (const [file, text] of files) {
    if (dryRun) {
      say(io, `--- would write ${file} ---`);
      io.stdout.write(text);
      continue;
    }
    await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
    const verb = existsSync(file) ? "Updated" : "Wrote";
    await writeFile(file, text, { mode: 0o644 });
    say(io, `${verb} ${file}`);
  }
  say(io, `passenger_root is ${root}`);
  const modulePath = nginxModulePath(root);
  if (!existsSync(modulePath)) {
    say(io, `Warning: ${modulePath} does not exist yet; build it with "npm run build:nginx" first (needs nginx-dev)`);
  }
  say(io, dryRun ? "Dry run: nothing was written." : "Nothing was reloaded or restarted. Next steps:");
  if (dryRun) say(io, "Next steps after a real install:");
  say(io, "  ln -s ../sites-available/ferry /etc/nginx/sites-enabled/ferry   # after editing it");
  say(io, "  nginx -t");
  say(io, "  systemctl reload nginx       # or: nginx -s reload (starts Ferry's core)");
  say(io, "See docs/nginx.md for every directive.");
  return EXIT_OK;
}
