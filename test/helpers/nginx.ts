/**
 * A private nginx for end-to-end tests, shaped like test/helpers/apache.ts:
 * render test/fixtures/nginx/nginx.conf.tmpl into a temp prefix (listen
 * 127.0.0.1:<free port>, our freshly built build/nginx/ngx_http_ferry_module.so,
 * `user www-data` when root, private pid/error log/temp paths), run
 * `nginx -p <prefix> -c <conf>` (daemon off) as a child, wait for its pid
 * file and port under a deadline; reload() = SIGHUP, stop() = SIGQUIT and
 * make sure everything started from the test's root is gone too.
 */
import { spawn, execFileSync, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { REPO_ROOT, freePort, processesUnder, waitFor } from "./apache.js";

export const NGINX_MODULE = path.join(REPO_ROOT, "build/nginx/ngx_http_ferry_module.so");
const TEMPLATE = path.join(REPO_ROOT, "test/fixtures/nginx/nginx.conf.tmpl");

export interface NginxServerSpec {
  /** server_name; tests send it as the Host header. The first server is the default. */
  readonly serverName: string;
  /** root of the server (an app's public/ dir). */
  readonly root: string;
  /** Extra directives inside server{} (each one line, ";" included). */
  readonly directives?: readonly string[];
}

export interface NginxStartOptions {
  /** Temp dir owned by the test file (makeTempRoot); the prefix is made inside it. */
  readonly root: string;
  readonly servers: readonly NginxServerSpec[];
  /** Extra directives in http{}. */
  readonly http?: readonly string[];
  /** Extra directives in the main context. */
  readonly main?: readonly string[];
  /** error_log level; default "notice". */
  readonly logLevel?: string;
  readonly startTimeoutMs?: number;
  readonly env?: Readonly<Record<string, string>>;
  /** passenger_root; default the repository. */
  readonly passengerRoot?: string;
}

function onPath(name: string): boolean {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/bin"]);
  return dirs.some((d) => d !== "" && existsSync(path.join(d, name)));
}

/** A missing nginx is installed (Debian package), never skipped silently. */
export function ensureNginxInstalled(): void {
  if (onPath("nginx") && existsSync("/usr/share/nginx/src/configure")) return;
  if (process.getuid?.() !== 0 || !onPath("apt-get")) {
    throw new Error("Cannot start nginx: nginx is not installed (apt-get install nginx nginx-dev)");
  }
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "nginx", "nginx-dev"], {
    stdio: "ignore",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    timeout: 300_000,
  });
}

function render(tmpl: string, vars: Readonly<Record<string, string>>): string {
  return tmpl.replace(/\{\{([A-Z_]+)\}\}/g, (_m, key: string) => {
    const v = vars[key];
    if (v === undefined) throw new Error(`Cannot render nginx.conf: no value for {{${key}}}`);
    return v;
  });
}

function renderServer(s: NginxServerSpec, port: number, first: boolean): string {
  return [
    `    server {`,
    `        listen 127.0.0.1:${port}${first ? " default_server" : ""};`,
    `        server_name ${s.serverName};`,
    `        root ${s.root};`,
    ...(s.directives ?? []).map((d) => `        ${d}`),
    `    }`,
  ].join("\n");
}

/** The nginx.conf for opts, listening on port, with everything under prefix. */
export async function renderNginxConf(prefix: string, port: number, opts: Omit<NginxStartOptions, "root">): Promise<string> {
  return render(await readFile(TEMPLATE, "utf8"), {
    FERRY_MODULE: NGINX_MODULE,
    USER: process.getuid?.() === 0 ? "user www-data www-data;" : "# not root: workers run as the current user",
    PREFIX: prefix,
    LOG_LEVEL: opts.logLevel ?? "notice",
    MAIN: (opts.main ?? []).join("\n"),
    PASSENGER_ROOT: opts.passengerRoot ?? REPO_ROOT,
    HTTP: (opts.http ?? []).map((d) => `    ${d}`).join("\n"),
    SERVERS: opts.servers.map((s, i) => renderServer(s, port, i === 0)).join("\n\n"),
  });
}

async function makePrefix(root: string): Promise<string> {
  const prefix = path.join(root, "nginx");
  await rm(prefix, { recursive: true, force: true });
  for (const d of ["", "run", "logs", "conf", "tmp"]) {
    await mkdir(path.join(prefix, d), { recursive: true });
    await chmod(path.join(prefix, d), 0o755);
  }
  return prefix;
}

/** `nginx -t` on a rendered config: the exit status and what nginx said. */
export async function nginxConfigTest(opts: NginxStartOptions): Promise<{ ok: boolean; output: string }> {
  ensureNginxInstalled();
  const prefix = await makePrefix(opts.root);
  const conf = path.join(prefix, "conf", "nginx.conf");
  await writeFile(conf, await renderNginxConf(prefix, await freePort(), opts));
  const r = spawnSync("nginx", ["-t", "-q", "-p", prefix, "-c", conf], { encoding: "utf8", timeout: 30_000 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

/** Safety net: never leave an nginx behind if the test worker exits abruptly. */
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

export class NginxServer {
  private exited = false;
  private stderrText = "";

  private constructor(
    readonly prefix: string,
    readonly port: number,
    private readonly child: ChildProcess,
  ) {
    child.on("exit", () => {
      this.exited = true;
      if (child.pid !== undefined) livePids.delete(child.pid);
    });
    child.stderr?.on("data", (d: Buffer) => {
      this.stderrText += d.toString("utf8");
    });
    child.stdout?.resume();
    if (child.pid !== undefined) livePids.add(child.pid);
  }

  /** Start a private nginx; retries with another port if the first one was taken meanwhile. */
  static async start(opts: NginxStartOptions): Promise<NginxServer> {
    ensureNginxInstalled();
    if (!existsSync(NGINX_MODULE)) {
      throw new Error(`Cannot start nginx: ${NGINX_MODULE} is missing (sh nginx-module/build.sh)`);
    }
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await NginxServer.startOnce(opts, await freePort());
      } catch (e: unknown) {
        lastError = e;
        if (!(e instanceof Error) || !/Address already in use/.test(e.message)) throw e;
      }
    }
    throw lastError instanceof Error ? lastError : new Error("Cannot start nginx");
  }

  private static async startOnce(opts: NginxStartOptions, port: number): Promise<NginxServer> {
    const prefix = await makePrefix(opts.root);
    const conf = path.join(prefix, "conf", "nginx.conf");
    await writeFile(conf, await renderNginxConf(prefix, port, opts));
    // Own process group: nothing nginx signals may reach the test worker.
    const child = spawn("nginx", ["-p", prefix, "-c", conf], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...opts.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? "/usr/bin:/bin"}` },
    });
    const server = new NginxServer(prefix, port, child);
    child.on("error", () => {
      server.exited = true;
    });
    try {
      const pidFile = path.join(prefix, "run", "nginx.pid");
      const pidWritten = (): boolean => {
        try {
          return readFileSync(pidFile, "utf8").trim() === String(child.pid);
        } catch {
          return false;
        }
      };
      await waitFor(async () => server.exited || (pidWritten() && (await canConnect(port))), {
        timeoutMs: opts.startTimeoutMs ?? 30_000,
        intervalMs: 100,
        what: `nginx on 127.0.0.1:${port}`,
      });
      if (server.exited) throw new Error("Cannot start nginx: it exited");
    } catch (e: unknown) {
      await server.kill();
      const msg = e instanceof Error ? e.message : String(e);
      throw new Error(`${msg}\n--- error.log ---\n${server.errorLogTail(60)}\n--- stderr ---\n${server.stderrText}`);
    }
    return server;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The nginx master's pid. */
  get pid(): number {
    if (this.child.pid === undefined) throw new Error("Cannot get nginx's pid: not started");
    return this.child.pid;
  }

  get isRunning(): boolean {
    return !this.exited;
  }

  get errorLogPath(): string {
    return path.join(this.prefix, "logs", "error.log");
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

  /** The core's instance dir (docs/core-config.md): next to the pid file. */
  get instanceDir(): string {
    return path.join(this.prefix, "run", `ferry-${this.pid}`);
  }

  /** The pid of the running core (its core.pid), or undefined. */
  corePid(): number | undefined {
    try {
      const pid = Number(readFileSync(path.join(this.instanceDir, "core.pid"), "utf8").trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Rewrite nginx.conf with new servers/directives (same port and prefix);
   * takes effect on the next reload().
   */
  async reconfigure(opts: Omit<NginxStartOptions, "root">): Promise<void> {
    await writeFile(path.join(this.prefix, "conf", "nginx.conf"), await renderNginxConf(this.prefix, this.port, opts));
  }

  /** `nginx -s reload`: SIGHUP, resolved once the master started new workers. */
  async reload(timeoutMs = 30_000): Promise<void> {
    const count = (): number => (this.errorLog().match(/start worker processes/g) ?? []).length;
    const before = count();
    process.kill(this.pid, "SIGHUP");
    await waitFor(() => count() > before, { timeoutMs, what: "nginx to start new workers after SIGHUP" });
  }

  /** `nginx -s quit`: SIGQUIT, wait for the master to exit, then for everything under the test's root. */
  async stop(timeoutMs = 30_000): Promise<void> {
    if (!this.exited && this.child.pid !== undefined) {
      process.kill(this.child.pid, "SIGQUIT");
      await waitFor(() => this.exited, { timeoutMs, what: "nginx to exit after SIGQUIT" });
    }
    const root = path.dirname(this.prefix);
    await waitFor(() => processesUnder(root).length === 0, { timeoutMs, what: "processes under the test root to exit" });
  }

  /** Best-effort teardown for test.after.always: stop, SIGKILL anything left. */
  async kill(): Promise<void> {
    try {
      await this.stop(15_000);
    } catch {
      if (!this.exited && this.child.pid !== undefined) {
        try {
          process.kill(this.child.pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
      for (const pid of processesUnder(path.dirname(this.prefix))) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
    }
  }
}

/** The nginx a test file started in `before`, or a clear failure when it did not start. */
export function nginxStarted(server: NginxServer | undefined): NginxServer {
  if (server === undefined) throw new Error("Cannot run: nginx did not start");
  return server;
}

/** Stop a test file's nginx and remove its temp root. */
export async function stopAndRemoveNginx(server: NginxServer | undefined, root: string): Promise<void> {
  await server?.kill();
  if (root !== "") await rm(root, { recursive: true, force: true });
}
