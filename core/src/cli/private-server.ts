/**
 * What the commands that run a private web server (`ferry apache start|stop`,
 * `ferry nginx start|stop`) share: the package root, a program on PATH, a
 * wait under a deadline, a log's tail, and starting and stopping the server
 * itself (its own session, pid file and port probed with os/probes.ts).
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { canConnect, processAlive, readPidFile } from "../os/probes.js";
import { connectAddress } from "./args.js";

/** The ferry package root (this file runs from build/core/src/cli/). */
export function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
}

/** The first of `names` on PATH or in the sbin dirs, or undefined. */
export function findExecutable(names: readonly string[]): string | undefined {
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

/** Poll `cond` every 100 ms until it holds (true) or `timeoutMs` passed (false). */
export async function pollUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The last `lines` lines of a file, or a note that there is none. */
export function fileTail(file: string, lines: number, missing = "(no error log)"): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return missing;
  }
}

/** A private web server to start in its own session (it outlives the command). */
export interface PrivateServerLaunch {
  /** "Apache", "nginx": for messages. */
  readonly name: string;
  readonly bin: string;
  readonly args: readonly string[];
  /** Written by the server once it is configured (and its module started the core). */
  readonly pidFile: string;
  readonly address: string;
  readonly port: number;
  /** Where its stdout/stderr go. */
  readonly outLog: string;
  readonly errorLog: string;
  /** Sent when it does not come up in time. */
  readonly stopSignal: NodeJS.Signals;
  readonly timeoutMs: number;
}

/**
 * Start the server in the foreground of its own session, so an early exit
 * (bad config, the core failing) is seen at once; resolves when its pid file
 * names it and its port accepts, else throws with the tails of its logs.
 */
export async function launchPrivateServer(l: PrivateServerLaunch): Promise<void> {
  const out = openSync(l.outLog, "a");
  const child = spawn(l.bin, [...l.args], { detached: true, stdio: ["ignore", out, out] });
  closeSync(out);
  let exitCode: number | null = null;
  child.on("error", () => (exitCode = 127));
  child.on("exit", (c, sig) => (exitCode = c ?? (sig === null ? 1 : 128)));
  // The pid file comes after the configuration (and the module's core) is up; the port accepts earlier.
  const up = await pollUntil(
    async () => exitCode !== null || (readPidFile(l.pidFile) === child.pid && (await canConnect(connectAddress(l.address), l.port))),
    l.timeoutMs,
  );
  if (exitCode !== null || !up) {
    const why = exitCode !== null ? `${l.bin} exited with ${exitCode}` : `not listening on ${l.address}:${l.port} after ${l.timeoutMs} ms`;
    if (exitCode === null) child.kill(l.stopSignal);
    throw new Error(`Cannot start ${l.name}: ${why}\n--- ${l.outLog} ---\n${fileTail(l.outLog, 10)}\n--- ${l.errorLog} ---\n${fileTail(l.errorLog, 30)}`);
  }
  child.unref();
}

/** Signal the server whose pid file is `pidFile` and wait until it is gone; resolves with its pid. */
export async function stopPrivateServer(name: string, dir: string, pidFile: string, signal: NodeJS.Signals, timeoutMs: number): Promise<number> {
  const pid = readPidFile(pidFile);
  if (pid === undefined || !processAlive(pid)) {
    throw new Error(`Cannot stop ${name}: none is running from ${dir} (no live pid in ${pidFile})`);
  }
  process.kill(pid, signal);
  if (!(await pollUntil(() => !processAlive(pid), timeoutMs))) {
    throw new Error(`Cannot stop ${name}: pid ${pid} still running ${timeoutMs} ms after ${signal}`);
  }
  return pid;
}

/**
 * Who a private server's workers run as when it is started as root: www-data
 * (Debian), else the server's own user (`apache`, `nginx`) when it exists,
 * else nobody; the group of that name, else nogroup/nobody. Undefined when
 * not root (the workers keep the current user).
 */
export function unprivilegedUser(serverUser: string): { readonly user: string; readonly group: string } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = readFileSync("/etc/passwd", "utf8");
  const user = /^www-data:/m.test(passwd) ? "www-data" : new RegExp(`^${serverUser}:`, "m").test(passwd) ? serverUser : "nobody";
  const groups = readFileSync("/etc/group", "utf8");
  const group = new RegExp(`^${user}:`, "m").test(groups) ? user : /^nogroup:/m.test(groups) ? "nogroup" : "nobody";
  return { user, group };
}

export interface DevServerDir {
  /** "Apache", "nginx": for messages. */
  readonly name: string;
  /** The ferry command that stops it ("apache", "nginx"). */
  readonly command: string;
  readonly dir: string;
  readonly appDir: string;
  readonly modulePath: string;
  /** How to build a missing module. */
  readonly moduleHint: string;
  /** The server's program, by its possible names. */
  readonly programs: readonly string[];
  readonly pidFile: string;
  /** Subdirectories of dir to create (0755). */
  readonly subdirs: readonly string[];
}

/**
 * Before a private development server starts: the app dir and the module
 * exist, the server is installed, none runs from `dir` yet; `dir` and its
 * subdirectories are made (0755). Resolves with the program and the
 * DocumentRoot (APP_DIR/public, else an empty DIR/htdocs).
 */
export async function prepareDevServer(p: DevServerDir): Promise<{ readonly program: string; readonly documentRoot: string }> {
  if (!existsSync(p.appDir)) throw new Error(`Cannot start ${p.name}: app dir ${p.appDir} does not exist`);
  if (!existsSync(p.modulePath)) throw new Error(`Cannot start ${p.name}: ${p.modulePath} is missing; ${p.moduleHint}`);
  const program = findExecutable(p.programs);
  if (program === undefined) {
    throw new Error(`Cannot start ${p.name}: ${p.programs.length > 1 ? `neither ${p.programs.join(" nor ")} is` : `${p.programs[0] ?? p.name} is not`} installed`);
  }
  const running = readPidFile(p.pidFile);
  if (running !== undefined && processAlive(running)) {
    throw new Error(`Cannot start ${p.name}: one is already running from ${p.dir} (pid ${running}); run "ferry ${p.command} stop --dir ${p.dir}"`);
  }
  for (const d of ["", ...p.subdirs]) {
    await mkdir(path.join(p.dir, d), { recursive: true });
    await chmod(path.join(p.dir, d), 0o755);
  }
  let documentRoot = path.join(p.appDir, "public");
  if (!existsSync(documentRoot)) {
    documentRoot = path.join(p.dir, "htdocs");
    await mkdir(documentRoot, { recursive: true });
    await chmod(documentRoot, 0o755);
  }
  return { program, documentRoot };
}

/** What starting a private development server takes. */
export interface DevServerStart {
  readonly dir: string;
  readonly port: number;
  readonly address: string;
  readonly appDir: string;
  readonly environment: string;
  readonly modulePath: string;
  /** The ferry package root (PassengerRoot). */
  readonly root: string;
}

/** Where a started development server logs and what config it runs. */
export interface DevServerStarted {
  readonly errorLog: string;
  readonly confPath: string;
}

/** What `ferry <command> start` prints once the server serves. */
export function startedText(what: string, command: string, s: DevServerStart, started: DevServerStarted): string {
  const host = s.address.includes(":") ? `[${s.address}]` : s.address;
  return [
    `${what} is serving ${s.appDir} (${s.environment})`,
    `  URL:        http://${host}:${s.port}/`,
    `  error log:  ${started.errorLog}`,
    `  config:     ${started.confPath}`,
    `  stop with:  ferry ${command} stop --dir ${s.dir}`,
    ``,
  ].join("\n");
}
