/**
 * Three (or more) Ferry hosts on one machine for the shared-affinity tests:
 * each a real `ferry start` process on its own 127.0.0.1 port with its own
 * node name, peer port, registry dir and log, all sharing one redis-server
 * and one secret file. A client Session keeps its sticky cookie like a
 * browser and sends each request to whichever host the test picks.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fsp, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { controlRequest, findInstances, readToken } from "../../core/src/control/client.js";
import { req, waitFor, type Reply } from "./standalone.js";

export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../bin/ferry.js");

export interface Host {
  readonly name: string;
  /** Its instance registry dir (for `ferry status`). */
  readonly registry: string;
  readonly port: number;
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
  stderr(): string;
  log(): string;
}

export interface HostOptions {
  readonly appDir: string;
  readonly tmp: string;
  readonly name: string;
  readonly redisUrl: string;
  readonly secretFile: string;
  readonly extra?: readonly string[];
}

/** Start `ferry start` with shared affinity; resolves once it serves. */
export async function startHost(o: HostOptions): Promise<Host> {
  const logFile = path.join(o.tmp, `${o.name}.log`);
  const args = [
    BIN, "start", o.appDir, "--port", "0", "--address", "127.0.0.1", "--environment", "production",
    "--sticky-sessions", "--min-instances", "2", "--max-pool-size", "4",
    "--instance-registry-dir", path.join(o.tmp, `reg-${o.name}`), "--log-file", logFile, "--log-level", "3",
    "--affinity-redis", o.redisUrl, "--affinity-node-name", o.name, "--affinity-listen", "127.0.0.1:0",
    "--affinity-secret-file", o.secretFile,
    // A loaded test machine can take longer than the 50 ms default budget for a healthy Redis call (the
    // request then routes locally and the test sees another process); the budget itself is tested in
    // redis-store.test.ts and by the SIGSTOP case.
    "--affinity-redis-timeout", "500", ...(o.extra ?? []),
  ];
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/root" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => { out += d.toString(); });
  child.stderr?.on("data", (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const port = await waitFor(`host ${o.name} to serve`, () => {
    const m = /serving .* on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
    if (m === null && child.exitCode !== null) throw new Error(`ferry start exited ${child.exitCode}: ${err}`);
    return m === null ? undefined : Number(m[1]);
  }, 30_000);
  return {
    name: o.name, port, child, logFile, exited, registry: path.join(o.tmp, `reg-${o.name}`),
    stderr: () => err,
    log: () => {
      try {
        return readFileSync(logFile, "utf8");
      } catch {
        return "";
      }
    },
  };
}

export async function writeSecret(dir: string, secret = "test-cluster-secret-0123456789abcdef"): Promise<string> {
  const f = path.join(dir, "affinity.secret");
  await fsp.writeFile(f, `${secret}\n`, { mode: 0o600 });
  return f;
}

export interface Hit {
  readonly pid: number;
  readonly session: string;
  readonly count: number;
  readonly status: number;
  readonly setCookie: string | undefined;
  readonly host: string;
}

/** A browser-like client session: one id, one cookie jar (the sticky cookie). */
export class ClientSession {
  cookie: string | undefined;
  constructor(readonly id: string, readonly cookieName = "_passenger_route") {}

  get stickyId(): string | undefined {
    return this.cookie?.split("=")[1];
  }

  async hit(host: Host, opts: { method?: string; body?: Buffer } = {}): Promise<Hit> {
    const headers: Record<string, string> = {};
    if (this.cookie !== undefined) headers["Cookie"] = this.cookie;
    const r: Reply = await req(host.port, `/hit?s=${this.id}`, { headers, timeoutMs: 20_000, ...opts });
    const set = r.headers["set-cookie"]?.find((c) => c.startsWith(`${this.cookieName}=`));
    if (set !== undefined) this.cookie = set.split(";")[0];
    if (r.status !== 200) return { pid: 0, session: this.id, count: 0, status: r.status, setCookie: set, host: host.name };
    const v = JSON.parse(r.text) as { pid: number; session: string; count: number };
    return { ...v, status: r.status, setCookie: set, host: host.name };
  }
}

/** The sticky id in a Set-Cookie value. */
export function cookieId(setCookie: string | undefined): string | undefined {
  return setCookie?.split(";")[0]?.split("=")[1];
}

/** GET /status of a host's admin API (control socket, read-only token): the pool status plus `cluster`. */
export async function adminStatus(host: Host): Promise<Record<string, unknown>> {
  const [inst] = await findInstances(host.registry);
  if (inst === undefined) throw new Error(`Cannot find the instance of ${host.name} in ${host.registry}`);
  const token = (await readToken(inst, "read")) ?? (await readToken(inst, "admin"));
  const r = await controlRequest(inst.socketPath, { method: "GET", path: "/status", token });
  if (r.status !== 200 || typeof r.body !== "object" || r.body === null) throw new Error(`Cannot read status of ${host.name}: ${r.status}`);
  return r.body as Record<string, unknown>;
}
