/**
 * Helpers for tests that spawn real apps through ChildSpawner: a temp socket
 * dir, collected output, HTTP over an AppAddress, process liveness.
 */
import http from "node:http";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as delay } from "node:timers/promises";
import { makeAppOptions, SERVER_DEFAULTS, type AppOptions, type ServerOptions } from "../../core/src/config/schema.js";
import { silentLogger } from "../../core/src/log.js";
import { ChildSpawner } from "../../core/src/spawn/child-spawner.js";
import type { OutputLine } from "../../core/src/spawn/output.js";
import type { SpawnedProcess } from "../../core/src/spawn/spawner.js";
import type { AppAddress } from "../../core/src/pool/session.js";

/** Repository root (build/test/helpers → ../../..). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export function fixtureApp(name: string): string {
  return path.join(REPO_ROOT, "test", "fixtures", "apps", name);
}

export interface Harness {
  readonly dir: string;
  readonly spawner: ChildSpawner;
  readonly lines: OutputLine[];
  readonly procs: SpawnedProcess[];
  app(root: string, given?: Partial<AppOptions>): AppOptions;
  server(given?: Partial<ServerOptions>): ServerOptions;
  /** Spawn and remember for cleanup. */
  spawn(app: AppOptions, opts?: { timeoutMs?: number; server?: Partial<ServerOptions> }): Promise<SpawnedProcess>;
  cleanup(): Promise<void>;
}

export async function makeHarness(prefix: string, coreEnv?: Record<string, string>): Promise<Harness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `ferry-${prefix}-`));
  await chmod(dir, 0o711); // app users must traverse it to reach their socket dir
  const lines: OutputLine[] = [];
  const procs: SpawnedProcess[] = [];
  const spawner = new ChildSpawner({
    log: silentLogger(),
    socketDir: path.join(dir, "apps.s"),
    outputSink: (l) => lines.push(l),
    ...(coreEnv === undefined ? {} : { coreEnv }),
  });
  const server = (given: Partial<ServerOptions> = {}): ServerOptions => ({ ...SERVER_DEFAULTS, processShutdownTimeoutMs: 20_000, ...given });
  return {
    dir,
    spawner,
    lines,
    procs,
    app: (root, given = {}) => makeAppOptions(root, given),
    server,
    async spawn(app, opts = {}) {
      const p = await spawner.spawn({ app, server: server(opts.server), signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000) });
      procs.push(p);
      return p;
    },
    async cleanup() {
      for (const p of procs) p.kill();
      await Promise.all(procs.map((p) => Promise.race([p.exited, delay(5000)])));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface HttpResult {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

function target(address: AppAddress): http.RequestOptions {
  return address.kind === "unix" ? { socketPath: address.path } : { host: address.host, port: address.port };
}

/** One HTTP/1.1 request to an app address, with a deadline. */
export function httpRequest(
  address: AppAddress,
  opts: { method?: string; path?: string; body?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      ...target(address),
      method: opts.method ?? "GET",
      path: opts.path ?? "/",
      headers: { host: "app.test", ...(opts.headers ?? {}) },
      agent: false,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** True when the pid no longer runs (absent, or a zombie). */
export async function isGone(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state === "Z" || state === "X";
  } catch {
    return true;
  }
}

/** Poll `cond` until true or the deadline passes. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`Cannot wait for ${what}: still false after ${timeoutMs} ms`);
    await delay(25);
  }
}

/** The uid/gid/groups of a live pid, from /proc. */
export async function procIds(pid: number): Promise<{ uid: number; gid: number; groups: number[] }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const field = (name: string): string => status.split("\n").find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1).trim() ?? "";
  return {
    uid: Number(field("Uid").split(/\s+/)[0]),
    gid: Number(field("Gid").split(/\s+/)[0]),
    groups: field("Groups").split(/\s+/).filter((s) => s !== "").map(Number),
  };
}

/** Wait until process `pid` printed a line starting with `prefix`; returns that line. */
export async function waitForLine(h: Harness, pid: number, prefix: string, timeoutMs = 10_000): Promise<string> {
  let found: string | undefined;
  await waitUntil(() => {
    found = h.lines.find((l) => l.pid === pid && l.line.startsWith(prefix))?.line;
    return found !== undefined;
  }, timeoutMs, `a line "${prefix}…" from pid ${pid}`);
  return found ?? "";
}
