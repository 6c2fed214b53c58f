/**
 * What a private web server for end-to-end tests shares, whichever it is
 * (test/helpers/apache.ts, test/helpers/nginx.ts): Debian packages installed
 * when missing, a config template rendered into a temp root, the server run
 * in the foreground as a child in its own process group, a free loopback port
 * (another one if it was taken meanwhile), the wait for its pid file and port
 * under a deadline (error log tail on failure), and a teardown that leaves
 * nothing running under the test's root. The probes every e2e test uses
 * (waitFor, processesUnder, isAlive, freePort) live here too.
 */
import { type ChildProcess, execFileSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { canConnect as canConnectTo, processAlive } from "../../core/src/os/probes.js";

/** The repository root (this file runs from build/test/helpers/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** Poll `cond` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  opts: { readonly timeoutMs: number; readonly intervalMs?: number; readonly what: string },
): Promise<NonNullable<T>> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v !== undefined && v !== null && v !== false) return v as NonNullable<T>;
    } catch (e: unknown) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`Cannot wait for ${opts.what}: not true after ${opts.timeoutMs} ms${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/** A free loopback port (bound to port 0, then released). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const addr = srv.address();
  srv.close();
  await once(srv, "close");
  if (addr === null || typeof addr === "string") throw new Error("Cannot pick a free port: no address");
  return addr.port;
}

/** Does something accept TCP connections on 127.0.0.1:port? */
export function canConnect(port: number): Promise<boolean> {
  return canConnectTo("127.0.0.1", port);
}

/** Alive = exists and is not a zombie (PID 1 here does not reap orphans). */
export function isAlive(pid: number): boolean {
  return processAlive(pid);
}

/** Pids of live processes whose command line or cwd is inside `dir`. */
export function processesUnder(dir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || !isAlive(pid)) continue;
    let hit = false;
    try {
      hit = readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir);
    } catch {
      continue;
    }
    if (!hit) {
      try {
        const cwd = readlinkSync(`/proc/${pid}/cwd`);
        hit = cwd === dir || cwd.startsWith(dir + "/");
      } catch {
        /* gone or not ours to read */
      }
    }
    if (hit) out.push(pid);
  }
  return out;
}

/** Pids of the live children of `parent` (nginx workers name neither the test root nor run in it). */
export function childrenOf(parent: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent && isAlive(Number(entry))) out.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return out;
}

export function safeCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "?";
  }
}

export function onPath(name: string): boolean {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/bin"]);
  return dirs.some((d) => d !== "" && existsSync(path.join(d, name)));
}

/**
 * A missing server is installed from Debian packages (as root), never
 * skipped silently. `present` says whether everything needed is there.
 */
export function ensureDebianPackages(what: string, present: () => boolean, packages: readonly string[]): void {
  if (present()) return;
  if (process.getuid?.() !== 0 || !onPath("apt-get")) {
    throw new Error(`Cannot start ${what}: it is not installed (apt-get install ${packages.join(" ")})`);
  }
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", ...packages], {
    stdio: "ignore",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    timeout: 300_000,
  });
}


/** Fill `{{NAME}}` placeholders; a missing value is an error naming `what`. */
export function renderTemplate(tmpl: string, vars: Readonly<Record<string, string>>, what: string): string {
  return tmpl.replace(/\{\{([A-Z_]+)\}\}/g, (_m, key: string) => {
    const v = vars[key];
    if (v === undefined) throw new Error(`Cannot render ${what}: no value for {{${key}}}`);
    return v;
  });
}

/** Safety net: never leave a server behind if the test worker exits abruptly. */
const livePids = new Set<number>();
process.once("exit", () => {
  for (const pid of livePids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
});

/**
 * Start a server on a free port; when the port was taken meanwhile (`busy`
 * matches the error), try twice more with another one.
 */
export async function startOnFreePort<T>(what: string, busy: RegExp, attempt: (port: number) => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let i = 0; i < 3; i++) {
    try {
      return await attempt(await freePort());
    } catch (e: unknown) {
      lastError = e;
      if (!(e instanceof Error) || !busy.test(e.message)) throw e;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(`Cannot start ${what}`);
}

/**
 * One private server process (the master/parent), run in the foreground as
 * the test's child: its output, its pid, its error log, its teardown.
 */
export abstract class WebServerProcess {
  protected exited = false;
  protected stderrText = "";

  protected constructor(
    /** The temp dir holding the server's conf/, logs/, run/ (inside the test's root). */
    readonly dir: string,
    readonly port: number,
    protected readonly child: ChildProcess,
    /** "Apache" or "nginx", for messages. */
    readonly what: string,
  ) {
    child.on("exit", () => {
      this.exited = true;
      if (child.pid !== undefined) livePids.delete(child.pid);
    });
    child.on("error", () => {
      this.exited = true;
    });
    child.stderr?.on("data", (d: Buffer) => {
      this.stderrText += d.toString("utf8");
    });
    child.stdout?.resume();
    if (child.pid !== undefined) livePids.add(child.pid);
  }

  abstract get errorLogPath(): string;
  /** The core's instance dir (docs/core-config.md). */
  abstract get instanceDir(): string;
  /** The pid of the running core, or undefined. */
  abstract corePid(): number | undefined;
  /** Reload the configuration (apachectl graceful / nginx -s reload), resolved once it took effect. */
  abstract reload(timeoutMs?: number): Promise<void>;
  /** The signal that stops the server (apachectl stop / nginx -s quit). */
  protected abstract readonly stopSignal: NodeJS.Signals;

  /**
   * Wait until the server wrote `pidFile` with its own pid and accepts
   * connections; on failure kill it and throw with the error log's tail.
   */
  protected async waitUp(pidFile: string, timeoutMs: number): Promise<void> {
    try {
      const pidWritten = (): boolean => {
        try {
          return readFileSync(pidFile, "utf8").trim() === String(this.child.pid);
        } catch {
          return false;
        }
      };
      await waitFor(async () => this.exited || (pidWritten() && (await canConnect(this.port))), {
        timeoutMs,
        intervalMs: 100,
        what: `${this.what} on 127.0.0.1:${this.port}`,
      });
      if (this.exited) throw new Error(`Cannot start ${this.what}: it exited`);
    } catch (e: unknown) {
      await this.kill();
      const msg = e instanceof Error ? e.message : String(e);
      throw new Error(`${msg}\n--- ${path.basename(this.errorLogPath)} ---\n${this.errorLogTail(60)}\n--- stderr ---\n${this.stderrText}`);
    }
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The master's (parent's) pid. */
  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`Cannot get ${this.what}'s pid: not started`);
    return this.child.pid;
  }

  get isRunning(): boolean {
    return !this.exited;
  }

  errorLog(): string {
    try {
      return readFileSync(this.errorLogPath, "utf8");
    } catch {
      return "";
    }
  }

  errorLogTail(lines = 80): string {
    return this.errorLog().split("\n").slice(-lines).join("\n");
  }

  /**
   * Stop: the stop signal, wait for the master to exit, then for the core
   * and the apps (every process running from the test's root) to be gone.
   * Throws (after SIGKILLing them) if any survived.
   */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (!this.exited && this.child.pid !== undefined) {
      process.kill(this.child.pid, this.stopSignal);
      await waitFor(() => this.exited, { timeoutMs, what: `${this.what} to exit after ${this.stopSignal}` });
    }
    const root = path.dirname(this.dir);
    try {
      await waitFor(() => processesUnder(root).length === 0, { timeoutMs, what: "the core and apps to exit" });
    } catch (e: unknown) {
      const left = processesUnder(root);
      for (const pid of left) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
      const desc = left.map((p) => `${p}: ${safeCmdline(p)}`).join("\n");
      throw new Error(`${e instanceof Error ? e.message : String(e)}; left running:\n${desc}`);
    }
  }

  /** Best-effort teardown for test.after.always: stop, SIGKILL anything left. */
  async kill(): Promise<void> {
    try {
      await this.stop(15_000);
    } catch {
      if (!this.exited && this.child.pid !== undefined) {
        // The master's children first: a SIGKILLed nginx master leaves its workers running, holding ports.
        for (const pid of [...childrenOf(this.child.pid), this.child.pid]) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            /* gone */
          }
        }
      }
      for (const pid of processesUnder(path.dirname(this.dir))) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
    }
  }
}
