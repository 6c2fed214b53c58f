/**
 * Client of the admin API (control/admin-api.ts): finds running instances under
 * an instance registry dir and talks HTTP over their control socket.
 */
import { promises as fsp } from "node:fs";
import http from "node:http";
import path from "node:path";
import { FerryError } from "../errors.js";
import { processAlive } from "../os/probes.js";
import type { ClusterNodeStatus, GroupStatus, PoolStatus, ProcessStatus } from "./status.js";
import { ADMIN_TOKEN_NAME, CONTROL_SOCKET_NAME, READ_ONLY_TOKEN_NAME } from "./admin-api.js";

export interface InstanceInfo {
  readonly dir: string;
  readonly socketPath: string;
  /** From properties.json when present. */
  readonly properties: Readonly<Record<string, unknown>>;
}

export class ControlClientError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("FERRY_ERR_CONTROL", message, 400, options);
  }
}

/** The instance described by a dir (which holds control.sock), or undefined. */
export async function readInstance(dir: string): Promise<InstanceInfo | undefined> {
  const socketPath = path.join(dir, CONTROL_SOCKET_NAME);
  try {
    const st = await fsp.stat(socketPath);
    if (!st.isSocket()) return undefined;
  } catch {
    return undefined;
  }
  let properties: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(await fsp.readFile(path.join(dir, "properties.json"), "utf8"));
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) properties = parsed as Record<string, unknown>;
  } catch {
    // properties are optional
  }
  const pid = properties["pid"];
  if (typeof pid === "number" && !processAlive(pid)) return undefined;
  return { dir, socketPath, properties };
}

/** Running instances (`ferry-*` dirs with a control socket) under a registry dir. */
export async function findInstances(registryDir: string): Promise<InstanceInfo[]> {
  let names: string[];
  try {
    names = await fsp.readdir(registryDir);
  } catch {
    return [];
  }
  const out: InstanceInfo[] = [];
  for (const name of names.filter((n) => n.startsWith("ferry-")).sort()) {
    const inst = await readInstance(path.join(registryDir, name));
    if (inst !== undefined) out.push(inst);
  }
  return out;
}

/** Read a token file of the instance; undefined when not readable by us. */
export async function readToken(inst: InstanceInfo, kind: "admin" | "read"): Promise<string | undefined> {
  try {
    const v = (await fsp.readFile(path.join(inst.dir, kind === "admin" ? ADMIN_TOKEN_NAME : READ_ONLY_TOKEN_NAME), "utf8")).trim();
    return v === "" ? undefined : v;
  } catch {
    return undefined;
  }
}

export interface ControlResponse {
  readonly status: number;
  readonly body: unknown;
}

/** One HTTP request over the control socket, with a deadline. */
export function controlRequest(
  socketPath: string,
  opts: { method: string; path: string; body?: unknown; token?: string | undefined; timeoutMs?: number },
): Promise<ControlResponse> {
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  const headers: Record<string, string> = { Accept: "application/json" };
  if (payload !== undefined) {
    headers["Content-Type"] = "application/json";
    headers["Content-Length"] = String(payload.length);
  }
  if (opts.token !== undefined) headers["Authorization"] = `Bearer ${opts.token}`;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method: opts.method, path: opts.path, headers, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > 16 * 1024 * 1024) {
          req.destroy(new ControlClientError("Cannot read admin API answer: larger than 16 MB"));
          return;
        }
        chunks.push(c);
      });
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // keep text
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on("error", (e: unknown) => {
      const msg = e instanceof Error ? e.message : String(e);
      reject(new ControlClientError(`Cannot reach the admin API at ${socketPath}: ${msg}`, { cause: e }));
    });
    req.end(payload);
  });
}

function errorOf(r: ControlResponse): string {
  const b = r.body;
  if (typeof b === "object" && b !== null) {
    const e: unknown = Reflect.get(b, "error");
    if (typeof e === "string") return e;
  }
  return `HTTP ${r.status}`;
}

function num(o: object, k: string): number {
  const v: unknown = Reflect.get(o, k);
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ControlClientError(`Cannot read status: "${k}" is not a number`);
  return v;
}

function healthOf(p: object): ProcessStatus["health"] {
  const h: unknown = Reflect.get(p, "health");
  return h === "failing" || h === "unhealthy" ? h : "ok";
}

/** A field newer cores add: absent → `dflt` (an older core), present but not a number → error. */
function numOr(o: object, k: string, dflt: number): number {
  return Reflect.get(o, k) === undefined ? dflt : num(o, k);
}

function strOr(o: object, k: string, dflt: string): string {
  return Reflect.get(o, k) === undefined ? dflt : str(o, k);
}

function str(o: object, k: string): string {
  const v: unknown = Reflect.get(o, k);
  if (typeof v !== "string") throw new ControlClientError(`Cannot read status: "${k}" is not a string`);
  return v;
}

function obj(v: unknown, what: string): object {
  if (typeof v !== "object" || v === null) throw new ControlClientError(`Cannot read status: ${what} is not an object`);
  return v;
}

function arr(o: object, k: string): unknown[] {
  const v: unknown = Reflect.get(o, k);
  if (!Array.isArray(v)) throw new ControlClientError(`Cannot read status: "${k}" is not a list`);
  return v;
}

/** unknown → PoolStatus, or ControlClientError. */
export function validatePoolStatus(v: unknown): PoolStatus {
  const o = obj(v, "the answer");
  const groups: GroupStatus[] = arr(o, "groups").map((gv) => {
    const g = obj(gv, "a group");
    const le: unknown = Reflect.get(g, "lastError");
    let lastError: GroupStatus["lastError"] = null;
    if (typeof le === "object" && le !== null) {
      lastError = { at: num(le, "at"), code: str(le, "code"), message: str(le, "message"), output: str(le, "output") };
    }
    const processes: ProcessStatus[] = arr(g, "processes").map((pv) => {
      const p = obj(pv, "a process");
      const state = str(p, "state");
      if (state !== "spawning" && state !== "ready" && state !== "draining" && state !== "dead") {
        throw new ControlClientError(`Cannot read status: unknown process state "${state}"`);
      }
      const lv: unknown = Reflect.get(p, "loop");
      const loop = typeof lv === "object" && lv !== null
        ? {
          loop: {
            elu: num(lv, "elu"), delayMeanMs: num(lv, "delayMeanMs"), delayP99Ms: num(lv, "delayP99Ms"),
            delayMaxMs: num(lv, "delayMaxMs"), intervalMs: num(lv, "intervalMs"), at: num(lv, "at"),
          },
        }
        : {};
      return {
        pid: num(p, "pid"), stickyId: str(p, "stickyId"), state, inFlight: num(p, "inFlight"), upgraded: num(p, "upgraded"),
        processed: num(p, "processed"), startedAt: num(p, "startedAt"), lastUsedAt: num(p, "lastUsedAt"),
        cpuPercent: num(p, "cpuPercent"), rssBytes: num(p, "rssBytes"),
        cpuSeconds: numOr(p, "cpuSeconds", 0), generation: numOr(p, "generation", 0), retireReason: strOr(p, "retireReason", ""), health: healthOf(p),
        healthFailures: numOr(p, "healthFailures", 0), lastHealthFailure: strOr(p, "lastHealthFailure", ""), ...loop,
      };
    });
    const counts = (k: string): Record<string, number> => {
      const out: Record<string, number> = {};
      const v: unknown = Reflect.get(g, k);
      if (typeof v === "object" && v !== null) for (const key of Object.keys(v)) out[key] = num(v, key);
      return out;
    };
    const crashReasons = counts("crashReasons");
    const lx: unknown = Reflect.get(g, "lastExit");
    let lastExit: GroupStatus["lastExit"] = null;
    if (typeof lx === "object" && lx !== null) {
      const code: unknown = Reflect.get(lx, "code");
      const signal: unknown = Reflect.get(lx, "signal");
      lastExit = {
        at: num(lx, "at"), pid: num(lx, "pid"), code: typeof code === "number" ? code : null, signal: typeof signal === "string" ? signal : null,
        unexpected: Reflect.get(lx, "unexpected") === true, reason: str(lx, "reason"),
      };
    }
    return {
      name: str(g, "name"), appRoot: str(g, "appRoot"), appEnv: str(g, "appEnv"), queueLength: num(g, "queueLength"),
      spawning: num(g, "spawning"), restarting: Reflect.get(g, "restarting") === true, lastError,
      restartGeneration: numOr(g, "restartGeneration", 0), spawns: numOr(g, "spawns", 0), spawnFailures: numOr(g, "spawnFailures", 0),
      crashes: numOr(g, "crashes", 0), crashReasons, queueOverflows: numOr(g, "queueOverflows", 0),
      leases: numOr(g, "leases", 0), passes: numOr(g, "passes", 0), directRequests: numOr(g, "directRequests", 0),
      unhealthy: counts("unhealthy"), lastExit, processes,
    };
  });
  const base = { version: str(o, "version"), maxPoolSize: num(o, "maxPoolSize"), processCount: num(o, "processCount"), groups };
  const cv: unknown = Reflect.get(o, "cluster");
  if (cv === undefined || cv === null) return base;
  const c = obj(cv, "the cluster view");
  const nodes: ClusterNodeStatus[] = arr(c, "nodes").map((nv) => {
    const n = obj(nv, "a cluster node");
    const apps = arr(n, "apps").filter((a): a is string => typeof a === "string");
    return {
      name: str(n, "name"), peer: str(n, "peer"), alive: Reflect.get(n, "alive") === true, self: Reflect.get(n, "self") === true,
      sessions: num(n, "sessions"), apps, lastSeenAt: num(n, "lastSeenAt"),
    };
  });
  const mv: unknown = Reflect.get(c, "keyMismatches");
  const keyMismatches = (Array.isArray(mv) ? mv : []).map((m) => {
    const o2 = obj(m, "a key mismatch");
    const keys = arr(o2, "keys").map((k) => {
      const e = obj(k, "a key of a mismatch");
      return { node: str(e, "node"), key: str(e, "key") };
    });
    return { site: str(o2, "site"), keys };
  });
  return { ...base, cluster: { node: str(c, "node"), storeAvailable: Reflect.get(c, "storeAvailable") === true, nodes, keyMismatches } };
}

/** GET /status of an instance. */
export async function fetchStatus(inst: InstanceInfo): Promise<PoolStatus> {
  let r = await controlRequest(inst.socketPath, { method: "GET", path: "/status" });
  if (r.status === 401 || r.status === 403) {
    const token = (await readToken(inst, "read")) ?? (await readToken(inst, "admin"));
    if (token !== undefined) r = await controlRequest(inst.socketPath, { method: "GET", path: "/status", token });
  }
  if (r.status !== 200) throw new ControlClientError(`Cannot read status of ${inst.dir}: ${errorOf(r)}`);
  return validatePoolStatus(r.body);
}

/** POST /reopen-logs: the instance reopens its log files; resolves with how many. */
export async function reopenLogs(inst: InstanceInfo): Promise<number> {
  const token = await readToken(inst, "admin");
  if (token === undefined) {
    throw new ControlClientError(`Cannot reopen the logs: cannot read ${path.join(inst.dir, ADMIN_TOKEN_NAME)} (run as the core's user or root)`);
  }
  const r = await controlRequest(inst.socketPath, { method: "POST", path: "/reopen-logs", token });
  if (r.status !== 200) throw new ControlClientError(`Cannot reopen the logs of ${inst.dir}: ${errorOf(r)}`);
  const n: unknown = typeof r.body === "object" && r.body !== null ? Reflect.get(r.body, "reopened") : undefined;
  return typeof n === "number" ? n : 0;
}

/** POST /restart: rolling restart; resolves with the number of groups restarted. */
export async function restartApp(inst: InstanceInfo, app: string, timeoutMs = 300_000): Promise<number> {
  const token = await readToken(inst, "admin");
  if (token === undefined) {
    throw new ControlClientError(`Cannot restart "${app}": cannot read ${path.join(inst.dir, ADMIN_TOKEN_NAME)} (run as the core's user or root)`);
  }
  const r = await controlRequest(inst.socketPath, { method: "POST", path: "/restart", body: { app }, token, timeoutMs });
  if (r.status !== 200) throw new ControlClientError(`Cannot restart "${app}": ${errorOf(r)}`);
  const n: unknown = typeof r.body === "object" && r.body !== null ? Reflect.get(r.body, "restarted") : undefined;
  return typeof n === "number" ? n : 0;
}
