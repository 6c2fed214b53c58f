/**
 * A private Apache for end-to-end tests (Passenger's apache2_controller.rb
 * shape): render its httpd.conf (core/src/cli/apache/httpd-conf.ts) into a temp server root
 * (Listen 127.0.0.1:<free port>, event MPM from the system's module dir, our
 * freshly built build/apache/mod_ferry.so, User/Group when root, private
 * PidFile/ErrorLog/instance registry), run `apache2 -f <conf> -DFOREGROUND` as
 * a child, wait for its PidFile and port under a deadline; graceful() = SIGUSR1, stop() =
 * SIGTERM and make sure the core and the apps are gone too.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { apacheModulesDir, renderHttpdConf, renderVhost, runAsLines } from "../../core/src/cli/apache/httpd-conf.js";
import { canConnect } from "../../core/src/os/probes.js";
import { REPO_ROOT, WebServerProcess, ensureDebianPackages, onPath, startOnFreePort, waitFor } from "./web-server.js";

// The probes every e2e test imports from here.
export { REPO_ROOT, freePort, isAlive, processesUnder, waitFor } from "./web-server.js";

export const FERRY_MODULE = path.join(REPO_ROOT, "build/apache/mod_ferry.so");
export const CORE_SCRIPT = path.join(REPO_ROOT, "build/core/src/main.js");
const FIXTURE_APPS = path.join(REPO_ROOT, "test/fixtures/apps");

export interface VHostSpec {
  /** ServerName; tests send it as the Host header. The first vhost is the default. */
  readonly serverName: string;
  readonly documentRoot: string;
  /** Extra directives inside the <VirtualHost>. */
  readonly directives?: readonly string[];
}

export interface ApacheStartOptions {
  /** Temp dir owned by the test file (see makeTempRoot); the server root is made inside it. */
  readonly root: string;
  readonly vhosts: readonly VHostSpec[];
  /** Extra server-wide directives ("{{PORT}}" in them becomes the port Apache listens on). */
  readonly global?: readonly string[];
  /** Apache LogLevel; default "warn ferry:info". */
  readonly logLevel?: string;
  /** Deadline for the port to accept connections; default 30 s. */
  readonly startTimeoutMs?: number;
  /** Extra environment for Apache (and so its children and the core), e.g.
   * FERRY_DATA_PATH. Apache also inherits the test's own environment, so
   * `npm run test:e2e:relay` (FERRY_DATA_PATH=relay) runs every e2e test on
   * the relay path. */
  readonly env?: Readonly<Record<string, string>>;
  /** PassengerRoot (where build/core/src/main.js is); default the repository. */
  readonly passengerRoot?: string;
}

/** A temp dir every user can traverse (Apache's User and the app users need to). */
/** The Apache a test file started in `before`, or a clear failure when it did not start. */
export function started(server: ApacheServer | undefined): ApacheServer {
  if (server === undefined) throw new Error("Cannot run: Apache did not start");
  return server;
}

/** Stop a test file's Apache and remove its temp root. */
export async function stopAndRemove(server: ApacheServer | undefined, root: string): Promise<void> {
  await server?.kill();
  if (root !== "") await rm(root, { recursive: true, force: true });
}

export async function makeTempRoot(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `ferry-${prefix}-`));
  await chmod(dir, 0o755);
  return dir;
}

/**
 * Copy fixture app `fixture` (test/fixtures/apps/<fixture>) to <root>/apps/<name>
 * with a public/ (the DocumentRoot) and tmp/ dir and a node_modules link to
 * the repository's, readable by everyone (a root-owned app runs as nobody).
 * Returns the app root.
 */
export async function prepareApp(root: string, fixture: string, name: string = fixture): Promise<string> {
  const appRoot = path.join(root, "apps", name);
  await mkdir(path.dirname(appRoot), { recursive: true, mode: 0o755 });
  await chmod(path.dirname(appRoot), 0o755);
  await cp(path.join(FIXTURE_APPS, fixture), appRoot, { recursive: true });
  await mkdir(path.join(appRoot, "public"), { recursive: true });
  await mkdir(path.join(appRoot, "tmp"), { recursive: true });
  if (!existsSync(path.join(appRoot, "node_modules"))) {
    await symlink(path.join(REPO_ROOT, "node_modules"), path.join(appRoot, "node_modules"));
  }
  execFileSync("chmod", ["-R", "a+rX", appRoot]);
  return appRoot;
}

/** A missing apache2 is installed (Debian package), never skipped silently. */
function ensureApacheInstalled(): void {
  ensureDebianPackages("Apache", () => onPath("apache2"), ["apache2", "apache2-dev"]);
}

/** The e2e servers' httpd.conf: small and predictable on a 2-core machine. */
function renderConfig(serverRoot: string, port: number, opts: ApacheStartOptions): string {
  return renderHttpdConf({
    title: "Private Apache for ferry's end-to-end tests (test/helpers/apache.ts)",
    serverRoot,
    address: "127.0.0.1",
    port,
    logLevel: opts.logLevel ?? "warn ferry:info",
    modulesDir: apacheModulesDir(),
    modules: ["mpm_event", "authz_core", "mime", "dir", "env", "alias", "reqtimeout"],
    ferryModule: FERRY_MODULE,
    runAs: runAsLines(),
    settings: [
      "Timeout 60",
      "KeepAlive On",
      "TypesConfig /etc/mime.types",
      "StartServers 2",
      "ServerLimit 4",
      "ThreadsPerChild 32",
      "MaxRequestWorkers 128",
      "MinSpareThreads 16",
      "MaxSpareThreads 96",
      "GracefulShutdownTimeout 30",
      `LogFormat "%h %l %u %t \\"%r\\" %>s %b %D" e2e`,
      `CustomLog "${serverRoot}/logs/access_log" e2e`,
    ],
    passenger: { root: opts.passengerRoot ?? REPO_ROOT },
    // "{{PORT}}" in a global directive is this Apache's port (PassengerPreStart URLs).
    global: (opts.global ?? []).map((d) => d.replaceAll("{{PORT}}", String(port))),
    vhosts: opts.vhosts.map((v) => renderVhost({ address: "127.0.0.1", port, ...v })),
  });
}

async function writeConfig(confPath: string, serverRoot: string, port: number, opts: ApacheStartOptions): Promise<void> {
  await writeFile(confPath, renderConfig(serverRoot, port, opts));
}

export class ApacheServer extends WebServerProcess {
  protected readonly stopSignal = "SIGTERM";

  private constructor(
    readonly serverRoot: string,
    port: number,
    child: ChildProcess,
  ) {
    super(serverRoot, port, child, "Apache");
  }

  /** Start a private Apache; retries with another port if the first one was taken meanwhile. */
  static async start(opts: ApacheStartOptions): Promise<ApacheServer> {
    ensureApacheInstalled();
    if (!existsSync(FERRY_MODULE)) {
      throw new Error(`Cannot start Apache: ${FERRY_MODULE} is missing (sh apache-module/build.sh)`);
    }
    if (!existsSync(CORE_SCRIPT)) {
      throw new Error(`Cannot start Apache: ${CORE_SCRIPT} is missing (npx tsc -p tsconfig.json)`);
    }
    return startOnFreePort("Apache", /could not bind|Address already in use/, (port) => ApacheServer.startOnce(opts, port));
  }

  private static async startOnce(opts: ApacheStartOptions, port: number): Promise<ApacheServer> {
    const serverRoot = path.join(opts.root, "apache");
    await rm(serverRoot, { recursive: true, force: true });
    for (const d of ["", "run", "logs", "conf"]) {
      await mkdir(path.join(serverRoot, d), { recursive: true });
      await chmod(path.join(serverRoot, d), 0o755);
    }
    const confPath = path.join(serverRoot, "conf", "httpd.conf");
    await writeConfig(confPath, serverRoot, port, opts);

    // Own process group: httpd signals its whole group on stop/restart
    // (prefork does), which must not reach the test worker.
    const child = spawn("apache2", ["-f", confPath, "-DFOREGROUND"], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...opts.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? "/usr/bin:/bin"}` },
    });
    const server = new ApacheServer(serverRoot, port, child);
    // The PidFile is written after post_config (so after mod_ferry started
    // the core); the port alone accepts connections earlier than that.
    await server.waitUp(path.join(serverRoot, "run", "httpd.pid"), opts.startTimeoutMs ?? 30_000);
    return server;
  }

  get errorLogPath(): string {
    return path.join(this.serverRoot, "logs", "error_log");
  }

  /** The core's instance dir (docs/core-config.md). */
  get instanceDir(): string {
    return path.join(this.serverRoot, "run", `ferry-${this.pid}`);
  }

  /** The pid of the core the module last started (from its FERRY0208 log line). */
  corePid(): number | undefined {
    const all = [...this.errorLog().matchAll(/FERRY0208: Started ferry core \(pid (\d+)/g)];
    const last = all.at(-1);
    return last?.[1] === undefined ? undefined : Number(last[1]);
  }

  /**
   * Rewrite httpd.conf with new vhosts/global directives (same port and
   * server root); takes effect on the next graceful() or restart().
   */
  async reconfigure(opts: Omit<ApacheStartOptions, "root">): Promise<void> {
    await writeConfig(path.join(this.serverRoot, "conf", "httpd.conf"), this.serverRoot, this.port, {
      ...opts,
      root: path.dirname(this.serverRoot),
    });
  }

  /** `apachectl graceful`: SIGUSR1, resolved once Apache says it resumed with the new config. */
  async graceful(timeoutMs = 30_000): Promise<void> {
    await this.signalAndWaitResume("SIGUSR1", timeoutMs);
  }

  /** A reload is `apachectl graceful`. */
  reload(timeoutMs = 30_000): Promise<void> {
    return this.graceful(timeoutMs);
  }

  /** `apachectl restart`: SIGHUP. */
  async restart(timeoutMs = 30_000): Promise<void> {
    await this.signalAndWaitResume("SIGHUP", timeoutMs);
  }

  private async signalAndWaitResume(sig: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const count = (): number => (this.errorLog().match(/AH00489/g) ?? []).length;
    const before = count();
    process.kill(this.pid, sig);
    await waitFor(() => count() > before, { timeoutMs, what: `Apache to resume after ${sig}` });
    await waitFor(() => canConnect("127.0.0.1", this.port), { timeoutMs, what: "Apache's port after a restart" });
  }
}
