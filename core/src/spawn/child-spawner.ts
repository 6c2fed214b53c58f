/**
 * The real Spawner: starts an app process with child_process, as the right
 * user (through ferry-exec-helper when the core is root), with the app's
 * clean environment, captures its output, and resolves once it listens.
 *
 * Steps (SpawnError.step): "prepare" (startup file, user, socket dir) →
 * "exec" (helper + interpreter start) → "load" (app code runs until it calls
 * listen()) → "listen" (its socket is bound). docs/loader.md is the contract.
 */
import { execFile, spawn as spawnChild, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, existsSync, type WriteStream } from "node:fs";
import { chmod, chown, lstat, mkdir, readdir, stat, unlink } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import type { AppOptions, ServerOptions } from "../config/schema.js";
import { SpawnError } from "../errors.js";
import type { Logger } from "../log.js";
import { LOADER_OPTIONS_ENV, type HandoffSettings, type LoaderOptions, type LoopReport, type SpawnStep } from "../loader/messages.js";
import { EXEC_HELPER_PATH } from "../os/native.js";
import { openAppLogFile } from "../os/root-safe.js";
import { buildAppEnv, DEFAULT_PATH, NOMINAL_NODE_PORT } from "./env.js";
import { OutputCapture, type OutputSink } from "./output.js";
import { LoaderChannel } from "./loader-channel.js";
import { ReadinessFailure, waitForLoader, waitForPort } from "./readiness.js";
import type { AppAddress, ProcessExit, RequestsReport, SpawnedProcess, SpawnRequest, Spawner } from "./spawner.js";
import { sendFd } from "../os/native.js";
import { socketFd } from "../os/socket-fd.js";

/** The one data byte sent with each passed connection. */
const HANDOFF_MARK = Buffer.from("c");
import { lookupUserFacts, resolveRunAs, RunAsError, type RunAs, type RunAsInput, type UserEntry } from "./user.js";

export interface ChildSpawnerOptions {
  readonly log: Logger;
  /** Directory for app sockets; one private subdirectory per app and user is made inside. */
  readonly socketDir: string;
  /** Receives every line of app output (besides the log). */
  readonly outputSink?: OutputSink;
  /** ferry-exec-helper; default the one built in build/Release. */
  readonly execHelper?: string;
  /** The Node loader; default build/core/src/loader/node-loader.js. */
  readonly loaderPath?: string;
  /** Where PATH, LANG, LC_ variables and TZ are taken from; default process.env. */
  readonly coreEnv?: Readonly<Record<string, string | undefined>>;
  /**
   * Connection handoff (ServerOptions.connectionHandoff): what the loader needs
   * to serve handed-off connections as the relay would (front/http/handoff-settings.ts).
   */
  readonly handoffSettings?: (app: AppOptions, server: ServerOptions) => HandoffSettings;
}

/** Longest Unix socket path (sun_path is 108 bytes with the NUL). */
const SOCKET_PATH_MAX = 107;
/** How long to wait for a killed process to be reaped and its output drained. */
const REAP_WAIT_MS = 5_000;
const OUTPUT_DRAIN_MS = 2_000;

const DEFAULT_LOADER = fileURLToPath(new URL("../loader/node-loader.js", import.meta.url));

function errnoCode(e: unknown): string {
  return e instanceof Error && "code" in e && typeof e.code === "string" ? e.code : "";
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    void p.then((v) => { clearTimeout(t); resolve(v); });
  });
}

/** Resolves when the stream has closed (at once if it already has). */
function closed(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.closed) resolve();
    else stream.once("close", () => resolve());
  });
}

/** Send a signal to a process group, falling back to the process. */
function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  const pid = child.pid;
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  }
}

/** A free loopback TCP port for a generic app. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function currentUser(): UserEntry {
  const u = os.userInfo();
  return { name: u.username, uid: u.uid, gid: u.gid, home: u.homedir, shell: u.shell ?? "/bin/sh" };
}

/**
 * One process's PassengerAppLogFile. reopen() opens the path again (as the
 * app's user, like the first time) and swaps the stream: lines written after
 * it go to the new file, the old stream flushes what it had and closes.
 */
class AppLogFile {
  #ws: WriteStream;

  constructor(ws: WriteStream, private readonly open: () => Promise<WriteStream | undefined>) {
    this.#ws = ws;
  }

  write(line: string): void {
    this.#ws.write(line);
  }

  async reopen(): Promise<boolean> {
    const next = await this.open();
    if (next === undefined) return false;
    const old = this.#ws;
    this.#ws = next;
    old.end();
    return true;
  }

  end(): void {
    this.#ws.end();
  }
}

export class ChildSpawner implements Spawner {
  readonly #log: Logger;
  readonly #appLogs = new Set<AppLogFile>();
  readonly #socketDir: string;
  readonly #sink: OutputSink | undefined;
  readonly #helper: string;
  readonly #loader: string;
  readonly #handoffSettings: ((app: AppOptions, server: ServerOptions) => HandoffSettings) | undefined;
  readonly #coreEnv: Readonly<Record<string, string | undefined>>;

  constructor(opts: ChildSpawnerOptions) {
    this.#log = opts.log;
    this.#socketDir = path.resolve(opts.socketDir);
    this.#sink = opts.outputSink;
    this.#helper = opts.execHelper ?? EXEC_HELPER_PATH;
    this.#loader = opts.loaderPath ?? DEFAULT_LOADER;
    this.#handoffSettings = opts.handoffSettings;
    this.#coreEnv = opts.coreEnv ?? process.env;
  }

  async spawn(req: SpawnRequest): Promise<SpawnedProcess> {
    const { app } = req;
    const fail = (step: SpawnStep, why: string, cause?: unknown): SpawnError =>
      new SpawnError(`Cannot spawn app "${app.appGroupName}": ${why}`, { step }, cause === undefined ? undefined : { cause });
    if (req.signal.aborted) throw fail("prepare", "spawn aborted before it started");

    // Step One: prepare — startup file, user, socket, environment, command.
    const generic = app.appType === "generic";
    if (generic && app.appStartCommand.trim() === "") throw fail("prepare", "PassengerAppStartCommand is empty");
    const startupFile = path.resolve(app.appRoot, generic ? "." : app.startupFile);
    let owner: { uid: number; gid: number };
    try {
      owner = await lstat(startupFile);
    } catch (e: unknown) {
      const what = generic ? "app root" : "startup file";
      throw fail("prepare", `${what} ${startupFile} ${errnoCode(e) === "ENOENT" ? "does not exist" : `cannot be read (${errnoCode(e) || message(e)})`}`, e);
    }
    const runAs = await this.#runAs(req, owner).catch((e: unknown) => {
      throw fail("prepare", message(e), e);
    });
    for (const note of runAs.notes) this.#log.warn({ app: app.appGroupName }, `User switching: ${note}`);

    let socketPath = "";
    let appSocketDir = "";
    let port = NOMINAL_NODE_PORT;
    if (generic) {
      port = await freePort();
    } else {
      try {
        appSocketDir = await this.#appSocketDir(app, runAs);
      } catch (e: unknown) {
        throw fail("prepare", `socket directory under ${this.#socketDir} cannot be created (${message(e)})`, e);
      }
      socketPath = path.join(appSocketDir, `${randomBytes(6).toString("hex")}.sock`);
      if (Buffer.byteLength(socketPath) > SOCKET_PATH_MAX) {
        throw fail("prepare", `socket path ${socketPath} is longer than ${SOCKET_PATH_MAX} bytes: use a shorter socket directory`);
      }
    }

    // Connection handoff: a second socket pair (fd HANDOFF_FD in the app) carries accepted connections.
    const handoff = !generic && req.server.connectionHandoff === true;
    const env = buildAppEnv({ app, user: runAs.user, coreEnv: this.#coreEnv, port });
    if (!generic) {
      const settings = handoff ? this.#handoffSettings?.(app, req.server) : undefined;
      const lo: LoaderOptions = {
        socketPath, socketDir: appSocketDir, startupFile, appRoot: path.resolve(app.appRoot),
        ...(settings !== undefined ? { handoff: settings } : {}),
      };
      env[LOADER_OPTIONS_ENV] = JSON.stringify(lo);
    }
    let program = generic ? "/bin/sh" : (app.nodejs !== "" ? app.nodejs : process.execPath);
    let programArgs = generic ? ["-c", app.appStartCommand] : [this.#loader, startupFile];
    // PassengerLoadShellEnvvars: start through the user's login shell so its profile
    // (nvm, PATH additions, exported variables) applies, as Passenger does.
    const loginShell = app.loadShellEnvvars ? loginShellOf(runAs.user.shell) : undefined;
    if (loginShell !== undefined) {
      programArgs = ["-lc", 'exec "$0" "$@"', program, ...programArgs];
      program = loginShell;
    }
    const { file, args } = this.#command(app, runAs, program, programArgs, generic, fail);

    // Step Two: exec.
    const log = this.#log.child({ app: app.appGroupName });
    const appLog = await this.#openAppLog(app, runAs, log);
    let child: ChildProcess;
    try {
      child = spawnChild(file, args, {
        // Through the helper, chdir happens after the privilege drop (as the app's user).
        cwd: file === this.#helper ? "/" : app.appRoot,
        env,
        detached: true,
        stdio: ["ignore", "pipe", "pipe", generic ? "ignore" : "pipe", ...(handoff ? ["pipe" as const] : [])],
      });
    } catch (e: unknown) {
      appLog?.end();
      throw fail("exec", `cannot start ${file} (${message(e)})`, e);
    }
    let spawnError: unknown;
    const exited = new Promise<ProcessExit>((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
      child.on("error", (e: unknown) => {
        spawnError ??= e;
        if (child.pid === undefined) resolve({ code: 127, signal: null });
      });
    });
    const pid = child.pid ?? -1;
    if (appLog !== undefined) this.#appLogs.add(appLog);
    const sink: OutputSink | undefined = appLog === undefined
      ? this.#sink
      : (l) => {
        appLog.write(`[${new Date().toISOString()}] App ${l.pid} ${l.stream}: ${l.line}\n`);
        this.#sink?.(l);
      };
    // PassengerAppLogFile takes the app's output apart from the server's log.
    const output = new OutputCapture({ log, app: app.appGroupName, pid, sink, logLines: appLog === undefined });
    output.attach(child.stdout, "stdout");
    output.attach(child.stderr, "stderr");
    const channel = child.stdio[3] as Duplex | null | undefined;
    const handoffChannel = handoff ? child.stdio[4] as Duplex | null | undefined : undefined;
    // The app may die with passed connections unread on it: the read side then fails with ECONNRESET,
    // which must not become an uncaught exception of the core (the process exit is what matters).
    handoffChannel?.on("error", (e: unknown) => log.debug({ err: e, pid }, "connection handoff channel error"));
    // Read from the first byte on, so no message is lost between readiness and the pool.
    const messages = channel === null || channel === undefined ? undefined : new LoaderChannel(channel);

    let shutdownTimer: NodeJS.Timeout | undefined;
    void exited.then(async (e) => {
      if (shutdownTimer !== undefined) clearTimeout(shutdownTimer);
      signalGroup(child, "SIGKILL"); // stragglers left in the app's process group
      // The loader's last messages (its final report: requests finished, the error pages it answered as
      // it exited) may still be unread when the exit is seen: read the channel to its end (briefly).
      if (channel !== null && channel !== undefined) void within(closed(channel), OUTPUT_DRAIN_MS).then(() => channel.destroy());
      handoffChannel?.destroy();
      log.info({ pid, code: e.code, signal: e.signal }, "App process exited");
      await this.#cleanSockets(appSocketDir, socketPath, pid);
      await within(output.closed(), OUTPUT_DRAIN_MS);
      if (appLog !== undefined) this.#appLogs.delete(appLog);
      appLog?.end();
    });

    // Step Three/Four: load and listen, until ready or failed.
    try {
      if (spawnError !== undefined || child.pid === undefined) {
        await exited;
        throw new ReadinessFailure("exec", `cannot start ${file} (${message(spawnError)})`, false, undefined);
      }
      if (generic) {
        await waitForPort({ host: "127.0.0.1", port, exited, signal: req.signal });
      } else {
        if (messages === undefined) throw new ReadinessFailure("exec", "control channel missing", false, undefined);
        await waitForLoader({ channel: messages, exited, signal: req.signal, socketPath });
      }
    } catch (e: unknown) {
      signalGroup(child, "SIGKILL");
      await within(exited, REAP_WAIT_MS);
      await within(output.closed(), OUTPUT_DRAIN_MS);
      if (e instanceof ReadinessFailure) {
        throw new SpawnError(`Cannot spawn app "${app.appGroupName}": ${e.message}`, { output: output.tail(), step: e.step, timeout: e.timeout }, { cause: e });
      }
      throw new SpawnError(`Cannot spawn app "${app.appGroupName}": ${message(e)}`, { output: output.tail(), step: "load" }, { cause: e });
    }

    const address: AppAddress = generic ? { kind: "tcp", host: "127.0.0.1", port } : { kind: "unix", path: socketPath };
    log.info({ pid, address, uid: runAs.user.uid, gid: runAs.gid }, "App process ready");
    let exitedNow = false;
    void exited.then(() => { exitedNow = true; });
    const shutdownMs = req.server.processShutdownTimeoutMs;
    return {
      pid,
      address,
      exited,
      shutdown: (): void => {
        if (exitedNow || shutdownTimer !== undefined) return;
        if (generic) signalGroup(child, "SIGTERM");
        else if (channel !== null && channel !== undefined && !channel.destroyed) {
          channel.end(`${JSON.stringify({ type: "shutdown" })}\n`);
        } else signalGroup(child, "SIGTERM");
        if (shutdownMs > 0) {
          shutdownTimer = setTimeout(() => {
            log.warn({ pid }, `App process did not exit within ${shutdownMs} ms of shutdown: killing it`);
            signalGroup(child, "SIGKILL");
          }, shutdownMs);
          shutdownTimer.unref();
        }
      },
      kill: (): void => {
        if (!exitedNow) signalGroup(child, "SIGKILL");
      },
      ...(messages === undefined ? {} : {
        onLoopReport: (listener: (r: LoopReport) => void): void => {
          messages.subscribe((m) => {
            if (m.type === "loop") listener({ elu: m.elu, delayMeanMs: m.delayMeanMs, delayP99Ms: m.delayP99Ms, delayMaxMs: m.delayMaxMs, intervalMs: m.intervalMs });
          });
        },
      }),
      ...(messages === undefined || handoffChannel === null || handoffChannel === undefined ? {} : {
        handOff: (fd: number): boolean => {
          const sockFd = socketFd(handoffChannel as net.Socket);
          if (exitedNow || sockFd === undefined) return false;
          try {
            return sendFd(sockFd, HANDOFF_MARK, fd) > 0;
          } catch {
            return false; // EAGAIN (the app is not reading), EPIPE (it is exiting): the caller keeps the connection
          }
        },
      }),
      // The loader reports the requests served without the core: on handed-off connections, and
      // (module mode) those the module sent with a pass (docs/protocol.md "Passes").
      ...(messages === undefined ? {} : {
        onRequests: (listener: (r: RequestsReport) => void): void => {
          messages.subscribe((m) => {
            if (m.type === "reqs") {
              listener({
                inFlight: m.inFlight, upgraded: m.upgraded, connections: m.connections, done: m.done,
                peak: m.peak, adopted: m.adopted, fresh: m.fresh, pages: m.pages,
              });
            }
          });
        },
      }),
    };
  }

  async #runAs(req: SpawnRequest, owner: { uid: number; gid: number }): Promise<RunAs> {
    const input: RunAsInput = {
      isRoot: process.getuid?.() === 0,
      currentUser: currentUser(),
      userSwitching: req.server.userSwitching,
      appUser: req.app.user,
      appGroup: req.app.group,
      defaultUser: req.server.defaultUser,
      defaultGroup: req.server.defaultGroup,
      fileOwner: { uid: owner.uid, gid: owner.gid },
    };
    try {
      return resolveRunAs(input, await lookupUserFacts(input));
    } catch (e: unknown) {
      if (e instanceof RunAsError) throw e;
      throw new RunAsError(`Cannot look up users: ${message(e)}`);
    }
  }

  /** The program and arguments: through the exec helper when switching user or setting limits. */
  #command(
    app: AppOptions, runAs: RunAs, program: string, programArgs: string[], generic: boolean,
    fail: (step: SpawnStep, why: string) => SpawnError,
  ): { file: string; args: string[] } {
    const needHelper = runAs.switchUser || app.fileDescriptorUlimit > 0 || generic;
    if (!needHelper) return { file: program, args: programArgs };
    if (!existsSync(this.#helper)) {
      if (runAs.switchUser) throw fail("prepare", `ferry-exec-helper is missing at ${this.#helper} (run npm install): cannot switch user`);
      if (app.fileDescriptorUlimit > 0) this.#log.warn({ app: app.appGroupName }, `ferry-exec-helper is missing at ${this.#helper}: PassengerAppFileDescriptorUlimit not applied`);
      return { file: program, args: programArgs };
    }
    const args: string[] = [];
    if (runAs.switchUser) args.push("--user", runAs.user.name, "--gid", String(runAs.gid));
    if (app.fileDescriptorUlimit > 0) args.push("--nofile", String(app.fileDescriptorUlimit));
    // Generic apps have no loader watching the control channel: the kernel tells them when the core dies.
    if (generic) args.push("--pdeathsig", "TERM");
    args.push("--chdir", app.appRoot, "--", program, ...programArgs);
    return { file: this.#helper, args };
  }

  /**
   * `<socketDir>/<hash of app group + uid>`, mode 0700, owned by the app's
   * user: only that user and root (the core) can reach the sockets inside.
   * socketDir itself is 0711 when root (traversable, not listable).
   */
  async #appSocketDir(app: AppOptions, runAs: RunAs): Promise<string> {
    await mkdir(this.#socketDir, { recursive: true, mode: 0o711 });
    if (runAs.switchUser) {
      const st = await stat(this.#socketDir);
      if ((st.mode & 0o111) !== 0o111) await chmod(this.#socketDir, (st.mode & 0o7777) | 0o711);
    }
    const name = createHash("sha256").update(`${app.appGroupName}\0${runAs.user.uid}`).digest("hex").slice(0, 12);
    const dir = path.join(this.#socketDir, name);
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (e: unknown) {
      if (errnoCode(e) !== "EEXIST") throw e;
    }
    const st = await lstat(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
    if (runAs.switchUser && (st.uid !== runAs.user.uid || st.gid !== runAs.gid)) await chown(dir, runAs.user.uid, runAs.gid);
    if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
    return dir;
  }

  /** Remove the process's sockets once it has exited (the main one and throw-away ones). */
  async #cleanSockets(dir: string, socketPath: string, pid: number): Promise<void> {
    if (dir === "") return;
    const victims = [socketPath];
    try {
      for (const f of await readdir(dir)) if (f.startsWith(`x${pid}-`)) victims.push(path.join(dir, f));
    } catch {
      return;
    }
    for (const v of victims) await unlink(v).catch(() => undefined);
  }

  /**
   * PassengerAppLogFile. When switching users, a path through a directory the
   * tenant controls (its app root, a symlink it planted) is never created or
   * opened with root's rights: os/root-safe.ts creates it as the app's user
   * and keeps it only if that user owns it (issue 4, docs/security.md). On
   * failure the app's output still goes to the core's log.
   */
  /** Reopen every open PassengerAppLogFile (log rotation). */
  async reopenLogs(): Promise<number> {
    const done = await Promise.all([...this.#appLogs].map((l) => l.reopen().catch((e: unknown) => {
      this.#log.error({ err: e }, "Cannot reopen an app log file");
      return false;
    })));
    return done.filter(Boolean).length;
  }

  async #openAppLog(app: AppOptions, runAs: RunAs, log: Logger): Promise<AppLogFile | undefined> {
    const ws = await this.#openAppLogStream(app, runAs, log);
    return ws === undefined ? undefined : new AppLogFile(ws, () => this.#openAppLogStream(app, runAs, log));
  }

  async #openAppLogStream(app: AppOptions, runAs: RunAs, log: Logger): Promise<WriteStream | undefined> {
    if (app.appLogFile === "") return undefined;
    const file = path.resolve(app.appRoot, app.appLogFile);
    let ws: WriteStream;
    if (!runAs.switchUser) {
      ws = createWriteStream(file, { flags: "a" });
    } else {
      try {
        const owner = { uid: runAs.user.uid, name: runAs.user.name };
        const fh = await openAppLogFile(file, owner, (f) => this.#createAsAppUser(runAs, f));
        ws = createWriteStream(file, { fd: fh, flags: "a" });
      } catch (e: unknown) {
        log.error({ err: e }, `Cannot open app log file ${file} for ${runAs.user.name}: ${message(e)}; the app's output goes to the core's log only`);
        return undefined;
      }
    }
    ws.on("error", (e: unknown) => log.error({ err: e }, `Cannot write app log file ${file}`));
    return ws;
  }

  /** Create `file` if missing (mode 0640) as the app's user: the kernel decides whether that user may. */
  #createAsAppUser(runAs: RunAs, file: string): Promise<void> {
    const args = ["--user", runAs.user.name, "--gid", String(runAs.gid), "--", "/bin/sh", "-c", 'umask 027; : >> "$1"', "sh", file];
    return new Promise((resolve, reject) => {
      execFile(this.#helper, args, { timeout: 10_000, env: { PATH: DEFAULT_PATH } }, (err, _stdout, stderr) => {
        if (err === null) resolve();
        else reject(new Error(String(stderr).trim() || err.message));
      });
    });
  }
}

/** Shells whose `-lc 'exec "$0" "$@"'` form we know; others (nologin, false, fish …) are skipped. */
const LOGIN_SHELLS = new Set(["bash", "zsh", "sh", "dash", "ksh", "mksh"]);

/** The shell to start an app through for PassengerLoadShellEnvvars, or undefined to start it directly. */
export function loginShellOf(shell: string): string | undefined {
  if (!path.isAbsolute(shell)) return undefined;
  return LOGIN_SHELLS.has(path.basename(shell)) ? shell : undefined;
}
