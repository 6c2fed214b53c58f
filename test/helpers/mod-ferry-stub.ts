/**
 * mod_ferry's configuration and mapping code (mod_ferry.c, ferry_config.c,
 * ferry_map.c, ferry_detect.c) built with apxs together with apache-module/test/map_stub.c,
 * which stands in for the daemon and the data path: its handler answers
 * with the msgpack [app, env] the real module would send to the core. Lets
 * the directive and mapping tests run a real Apache without a core.
 *
 * Also: `apache2 -t` on a config text, and a private foreground Apache with
 * a port wait and a clean stop.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmod, copyFile, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

/** The repository root (this file runs from build/test/helpers/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const MODULE_DIR = path.join(REPO_ROOT, "apache-module");
const SOURCES = ["mod_ferry.c", "ferry_config.c", "ferry_map.c", "ferry_detect.c", "ferry_proto.c"];
const HEADERS = ["ferry_config.h", "ferry_map.h", "ferry_detect.h", "ferry_log.h", "ferry_handler.h", "ferry_daemon.h", "ferry_proto.h"];

/** Apache's binary and module dir (Debian layout first, then PATH/apxs). */
export async function apacheLayout(): Promise<{ readonly httpd: string; readonly modules: string }> {
  const { stdout } = await execFileP("apxs", ["-q", "LIBEXECDIR"]);
  const modules = stdout.trim();
  const sbin = (await execFileP("apxs", ["-q", "SBINDIR"])).stdout.trim();
  const name = (await execFileP("apxs", ["-q", "progname"]).catch(() => ({ stdout: "apache2" }))).stdout.trim() || "apache2";
  return { httpd: path.join(sbin, name), modules };
}

/** A temp dir every user can traverse (Apache's children run as nobody when we are root). */
export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `ferry-${prefix}-`));
  await chmod(dir, 0o755);
  return dir;
}

/** Build the stub module into `dir`; returns the path of the .so. */
export async function buildStubModule(dir: string): Promise<string> {
  const work = path.join(dir, "modbuild");
  await mkdir(work, { recursive: true });
  for (const f of [...SOURCES, ...HEADERS]) {
    await copyFile(path.join(MODULE_DIR, f), path.join(work, f));
  }
  await copyFile(path.join(MODULE_DIR, "test/map_stub.c"), path.join(work, "map_stub.c"));
  try {
    await execFileP(
      "apxs",
      ["-c", "-o", "mod_ferry.so", "-Wc,-std=c99", "-Wc,-Wall", "-Wc,-Wextra", "-Wc,-Werror",
        "-Wc,-D_GNU_SOURCE", ...SOURCES, "map_stub.c", "-lmsgpackc"],
      { cwd: work, timeout: 120_000 },
    );
  } catch (e: unknown) {
    const err = e as { stdout?: string; stderr?: string };
    throw new Error(`Cannot build the stub module: apxs failed\n${err.stdout ?? ""}${err.stderr ?? ""}`, { cause: e });
  }
  return path.join(work, ".libs", "mod_ferry.so");
}

/** The LoadModule lines and server basics every test config starts with. */
export function baseConfig(opts: {
  readonly serverRoot: string;
  readonly modules: string;
  readonly ferrySo: string;
  readonly port?: number;
  readonly documentRoot?: string;
}): string {
  const m = opts.modules;
  const root = opts.serverRoot;
  const user = process.getuid?.() === 0 ? "User nobody\nGroup nogroup\n" : "";
  return `ServerRoot ${root}
LoadModule mpm_event_module ${m}/mod_mpm_event.so
LoadModule authz_core_module ${m}/mod_authz_core.so
LoadModule mime_module ${m}/mod_mime.so
LoadModule dir_module ${m}/mod_dir.so
LoadModule autoindex_module ${m}/mod_autoindex.so
LoadModule env_module ${m}/mod_env.so
LoadModule setenvif_module ${m}/mod_setenvif.so
LoadModule rewrite_module ${m}/mod_rewrite.so
LoadModule alias_module ${m}/mod_alias.so
LoadModule ferry_module ${opts.ferrySo}
${user}Listen 127.0.0.1:${opts.port ?? 1}
PidFile ${root}/httpd.pid
ErrorLog ${root}/error_log
LogLevel warn
TypesConfig /etc/mime.types
ServerName localhost
DocumentRoot ${opts.documentRoot ?? root}
Timeout 60
`;
}

/** `apache2 -t -f <file>` on `text`: exit status and output. */
export async function configTest(
  httpd: string,
  dir: string,
  name: string,
  text: string,
): Promise<{ readonly ok: boolean; readonly output: string }> {
  const file = path.join(dir, `${name}.conf`);
  await writeFile(file, text);
  try {
    const { stdout, stderr } = await execFileP(httpd, ["-t", "-f", file], { timeout: 30_000 });
    return { ok: true, output: stdout + stderr };
  } catch (e: unknown) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, output: (err.stdout ?? "") + (err.stderr ?? "") };
  }
}

/** A free loopback port (bind 0, read it, close). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const addr = srv.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** A foreground Apache child; stop() ends it (SIGTERM, then SIGKILL after a deadline). */
export interface RunningApache {
  readonly port: number;
  readonly errorLog: string;
  stop(): Promise<void>;
}

export async function startApache(
  httpd: string,
  confFile: string,
  port: number,
  errorLog: string,
  env: NodeJS.ProcessEnv = {},
): Promise<RunningApache> {
  const child: ChildProcess = spawn(httpd, ["-f", confFile, "-DFOREGROUND"], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  child.on("error", () => {});
  const exited = once(child, "exit");
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      const log = await readFile(errorLog, "utf8").catch(() => "");
      throw new Error(`Cannot start Apache: exited with ${child.exitCode}\n${stderr}\n${log}`);
    }
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      await stop();
      const log = await readFile(errorLog, "utf8").catch(() => "");
      throw new Error(`Cannot start Apache: port ${port} not accepting after 30000 ms\n${stderr}\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, errorLog, stop };
}
