/**
 * Helpers for the standalone integration tests: start an in-process standalone
 * instance (real ChildSpawner, real app processes) on 127.0.0.1:0 with its own
 * temp registry dir, HTTP clients with deadlines, and polling with a deadline.
 */
import { promises as fsp, readFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { resolveStandaloneConfig, type StandaloneConfig } from "../../core/src/config/standalone-config.js";
import { openLogger } from "../../core/src/log.js";
import { startStandalone, type StandaloneInstance } from "../../core/src/standalone-mode.js";

/** test/fixtures/apps in the source tree (the compiled tests live in build/test). */
export const FIXTURE_APPS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../test/fixtures/apps");

export interface Running {
  readonly instance: StandaloneInstance;
  readonly config: StandaloneConfig;
  readonly port: number;
  readonly logFile: string;
  readonly tmp: string;
  stop(): Promise<void>;
}

/** A temp dir that app processes (which may run as nobody) can read. */
export async function makeTmp(prefix: string): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
  await fsp.chmod(dir, 0o755);
  return dir;
}

/** Copy a fixture app into a fresh world-readable dir (for tests that edit the app). */
export async function copyApp(name: string, into: string): Promise<string> {
  const dest = path.join(into, name);
  await fsp.cp(path.join(FIXTURE_APPS, name), dest, { recursive: true });
  await fsp.chmod(dest, 0o755);
  return dest;
}

/** Start an instance for the app in `appDir`; `flags` are `ferry start` flags by name. */
export async function startApp(appDir: string, flags: Record<string, unknown> = {}): Promise<Running> {
  const tmp = await makeTmp("ferry-h3");
  const logFile = path.join(tmp, "ferry.log");
  const config = resolveStandaloneConfig({
    appRoot: appDir,
    env: {},
    flags: { port: "0", address: "127.0.0.1", "instance-registry-dir": path.join(tmp, "reg"), "log-file": logFile, "log-level": "5", ...flags },
  });
  const handle = openLogger({ level: config.server.logLevel, file: logFile, format: config.server.logFormat ?? "text" });
  const log = handle.log;
  const instance = await startStandalone({ config, log, prestart: false, reopenLog: () => handle.reopen() });
  let stopped = false;
  return {
    instance,
    config,
    port: instance.port,
    logFile,
    tmp,
    async stop() {
      if (stopped) return;
      stopped = true;
      await instance.stop(5_000);
      log.flush();
      await fsp.rm(tmp, { recursive: true, force: true });
    },
  };
}

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  readonly text: string;
}

export interface ReqOptions {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  readonly body?: Buffer;
  readonly timeoutMs?: number;
  readonly agent?: http.Agent | false;
}

/** One request to 127.0.0.1:port with a deadline; resolves with the whole answer. */
export function req(port: number, pathname: string, opts: ReqOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k] = typeof v === "string" ? v : [...v];
    if (opts.body !== undefined) headers["Content-Length"] = String(opts.body.length);
    const r = http.request({
      host: "127.0.0.1", port, path: pathname, method: opts.method ?? "GET", headers,
      agent: opts.agent ?? false, signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
    });
    r.on("error", (e) => reject(new Error(`Cannot ${opts.method ?? "GET"} ${pathname}: ${e.message}`, { cause: e })));
    r.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body, text: body.toString("utf8") });
      });
    });
    r.end(opts.body);
  });
}

/** GET a JSON body, failing with the text when not 200. */
export async function json(port: number, pathname: string, opts: ReqOptions = {}): Promise<Record<string, unknown>> {
  const r = await req(port, pathname, opts);
  if (r.status !== 200) throw new Error(`Cannot GET ${pathname}: ${r.status} ${r.text.slice(0, 300)}`);
  return JSON.parse(r.text) as Record<string, unknown>;
}

/** The pid a /pid or /slow answer reports. */
export async function pidOf(port: number, pathname = "/pid", opts: ReqOptions = {}): Promise<number> {
  const v = (await json(port, pathname, opts))["pid"];
  if (typeof v !== "number") throw new Error(`Cannot read pid from ${pathname}`);
  return v;
}

/** Poll `check` every `everyMs` until it returns a value other than undefined, or throw after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e: unknown) {
      last = e;
    }
    if (Date.now() > until) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Live process ids of the instance's app (state ready). */
export function readyPids(r: Running): number[] {
  return r.instance.pool.status().groups.flatMap((g) => g.processes.filter((p) => p.state === "ready").map((p) => p.pid));
}

/** True when the pid no longer runs (a zombie counts as exited). */
export function pidGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return true;
  }
}
