/**
 * A private nginx for end-to-end tests, shaped like test/helpers/apache.ts:
 * render test/fixtures/nginx/nginx.conf.tmpl into a temp prefix (listen
 * 127.0.0.1:<free port>, our freshly built build/nginx/ngx_http_ferry_module.so,
 * `user www-data` when root, private pid/error log/temp paths), run
 * `nginx -p <prefix> -c <conf>` (daemon off) as a child, wait for its pid
 * file and port under a deadline; reload() = SIGHUP, reopenLogs() =
 * SIGUSR1 (`nginx -s reopen`), stop() = SIGQUIT and
 * make sure everything started from the test's root is gone too.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  REPO_ROOT,
  WebServerProcess,
  ensureDebianPackages,
  freePort,
  onPath,
  renderTemplate,
  startOnFreePort,
  waitFor,
} from "./web-server.js";

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
  /** The `user` directive's value when root (default "www-data www-data"); "" writes none (nginx's default, nobody). */
  readonly user?: string;
}

/** A missing nginx is installed (Debian packages), never skipped silently. */
export function ensureNginxInstalled(): void {
  ensureDebianPackages("nginx", () => onPath("nginx") && existsSync("/usr/share/nginx/src/configure"), ["nginx", "nginx-dev"]);
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
  return renderTemplate(await readFile(TEMPLATE, "utf8"), {
    FERRY_MODULE: NGINX_MODULE,
    USER: process.getuid?.() !== 0
      ? "# not root: workers run as the current user"
      : opts.user === "" ? "# no user directive: nginx's default (nobody)" : `user ${opts.user ?? "www-data www-data"};`,
    PREFIX: prefix,
    LOG_LEVEL: opts.logLevel ?? "notice",
    MAIN: (opts.main ?? []).join("\n"),
    PASSENGER_ROOT: opts.passengerRoot ?? REPO_ROOT,
    HTTP: (opts.http ?? []).map((d) => `    ${d}`).join("\n"),
    SERVERS: opts.servers.map((s, i) => renderServer(s, port, i === 0)).join("\n\n"),
  }, "nginx.conf");
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

export class NginxServer extends WebServerProcess {
  protected readonly stopSignal = "SIGQUIT";

  private constructor(
    readonly prefix: string,
    port: number,
    child: ChildProcess,
  ) {
    super(prefix, port, child, "nginx");
  }

  /** Start a private nginx; retries with another port if the first one was taken meanwhile. */
  static async start(opts: NginxStartOptions): Promise<NginxServer> {
    ensureNginxInstalled();
    if (!existsSync(NGINX_MODULE)) {
      throw new Error(`Cannot start nginx: ${NGINX_MODULE} is missing (sh nginx-module/build.sh)`);
    }
    return startOnFreePort("nginx", /Address already in use/, (port) => NginxServer.startOnce(opts, port));
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
    await server.waitUp(path.join(prefix, "run", "nginx.pid"), opts.startTimeoutMs ?? 30_000);
    return server;
  }

  get errorLogPath(): string {
    return path.join(this.prefix, "logs", "error.log");
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

  /** The master's worker processes that still take new connections. */
  private acceptingWorkers(): number[] {
    const out: number[] = [];
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (ppid !== this.pid) continue;
        const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
        if (cmd.startsWith("nginx: worker process") && !cmd.includes("is shutting down")) out.push(Number(entry));
      } catch {
        /* gone */
      }
    }
    return out;
  }

  /**
   * `nginx -s reopen`: SIGUSR1 to the master, resolved once nginx's own
   * error log file exists again (the master reopened it).
   */
  async reopenLogs(timeoutMs = 30_000): Promise<void> {
    process.kill(this.pid, "SIGUSR1");
    await waitFor(() => existsSync(this.errorLogPath), { timeoutMs, what: "nginx to reopen its error log after SIGUSR1" });
  }

  /**
   * `nginx -s reload`: SIGHUP, resolved once the master started new workers
   * and every old worker stopped taking connections (it closes its listening
   * sockets before it calls itself "shutting down"), so the next request is
   * served with the new configuration.
   */
  async reload(timeoutMs = 30_000): Promise<void> {
    const count = (): number => (this.errorLog().match(/start worker processes/g) ?? []).length;
    const before = count();
    const oldWorkers = this.acceptingWorkers();
    process.kill(this.pid, "SIGHUP");
    await waitFor(() => count() > before, { timeoutMs, what: "nginx to start new workers after SIGHUP" });
    await waitFor(() => !this.acceptingWorkers().some((p) => oldWorkers.includes(p)), {
      timeoutMs,
      what: "nginx's old workers to stop taking connections after SIGHUP",
    });
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
