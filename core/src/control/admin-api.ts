/**
 * The admin API: HTTP/1.1 over a Unix socket in the instance directory
 * (`control.sock`), used by `ferry status` / `ferry restart` in both modes.
 *
 *   GET  /status            the pool's PoolStatus as JSON            (read-only access)
 *   GET  /instance          the instance's properties (pid, version, mode …) (read-only)
 *   POST /restart {"app"}   rolling restart of an app by root or group name (admin)
 *   POST /reopen-logs       reopen the core's and the apps' log files after a rotation (admin)
 *
 * Who may connect: the socket is mode 0600 (the core's user and root), or 0660
 * with the administrators' group (PassengerAdminGroup / `--admin-group`) as its
 * group. Access: read-only requests are allowed to a peer that is root, the
 * core's user or in the administrators' group (peer credentials, groups from
 * /proc) or that sends a valid token; admin requests need
 * `Authorization: Bearer <admin token>`. Tokens are random, written on start to
 * `admin_token` and `read_only_token` in the instance directory, mode 0600.
 * The registry files beside them (properties.json, core.pid) are 0640 to the
 * same group, so a tenant's app reads and reaches nothing of the server.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { promises as fsp } from "node:fs";
import http from "node:http";
import type net from "node:net";
import path from "node:path";
import { ConfigError, FerryError } from "../errors.js";
import type { Logger } from "../log.js";
import { listenUnixSecurely } from "../os/unix-listen.js";
import type { PoolStatus } from "./status.js";

/** What the admin API needs of the pool (pool/pool.ts's Pool satisfies it). */
export interface ControlTarget {
  status(): PoolStatus;
  restartApp(selector: string): Promise<number>;
}

export interface ControlServerOptions {
  readonly instanceDir: string;
  readonly pool: ControlTarget;
  readonly log: Logger;
  /** Default `<instanceDir>/control.sock`. */
  readonly socketPath?: string;
  /** Shown by GET /instance. */
  readonly properties?: Readonly<Record<string, unknown>>;
  /** Reopen every log file (POST /reopen-logs); resolves with how many were reopened. */
  readonly reopenLogs?: () => Promise<number>;
  /** Largest request body accepted, bytes. */
  readonly maxBodyBytes?: number;
  /** The administrators' group (name or number): may connect and read status. Default none. */
  readonly adminGroup?: string;
  /** Group name → gid; default getent / /etc/group (spawn/user.ts). */
  readonly lookupGroup?: (name: string) => Promise<number | undefined>;
}

export const CONTROL_SOCKET_NAME = "control.sock";
export const ADMIN_TOKEN_NAME = "admin_token";
export const READ_ONLY_TOKEN_NAME = "read_only_token";

type PeerCredFn = (fd: number) => { uid: number; gid?: number; pid?: number };

/** The gid and supplementary groups of a live process, from /proc/<pid>/status. */
export async function processGroups(pid: number): Promise<number[]> {
  const text = await fsp.readFile(`/proc/${pid}/status`, "utf8");
  const out: number[] = [];
  for (const line of text.split("\n")) {
    const m = /^(Gid|Groups):\s*(.*)$/.exec(line);
    if (m === null) continue;
    const fields = (m[2] ?? "").trim().split(/\s+/).filter((f) => f !== "").map(Number);
    // Gid: real, effective, saved, fs: the effective one decides.
    if (m[1] === "Gid") out.push(fields[1] ?? NaN);
    else out.push(...fields);
  }
  return out.filter((g) => Number.isInteger(g));
}

async function defaultLookupGroup(name: string): Promise<number | undefined> {
  if (/^[0-9]+$/.test(name)) return Number(name);
  const { lookupGroupId } = await import("../spawn/user.js");
  return lookupGroupId(name);
}

/** Write a file readable by the core's user and `gid` only (0640), atomically. */
export async function writeRegistryFile(file: string, text: string, gid: number | undefined): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.rm(tmp, { force: true });
  await fsp.writeFile(tmp, text, { mode: gid === undefined ? 0o600 : 0o640, flag: "wx" });
  if (gid !== undefined) await fsp.chown(tmp, process.getuid?.() ?? -1, gid);
  await fsp.rename(tmp, file);
}

async function loadPeerCred(log: Logger): Promise<PeerCredFn | undefined> {
  try {
    const m = await import("../os/native.js");
    return m.peerCred;
  } catch (e: unknown) {
    log.warn({ err: e }, "peer credentials unavailable: admin API read access needs a token");
    return undefined;
  }
}

function socketFd(s: net.Socket): number | undefined {
  const handle: unknown = Reflect.get(s, "_handle");
  if (typeof handle !== "object" || handle === null) return undefined;
  const fd: unknown = Reflect.get(handle, "fd");
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

class ControlError extends FerryError {
  constructor(message: string, status: number) {
    super("FERRY_ERR_CONTROL", message, status);
  }
}

export class ControlServer {
  readonly socketPath: string;
  readonly #opts: ControlServerOptions;
  readonly #server: http.Server;
  readonly #adminToken = randomBytes(24).toString("hex");
  readonly #readToken = randomBytes(24).toString("hex");
  #peerCred: PeerCredFn | undefined;
  #adminGid: number | undefined;

  constructor(opts: ControlServerOptions) {
    this.#opts = opts;
    this.socketPath = opts.socketPath ?? path.join(opts.instanceDir, CONTROL_SOCKET_NAME);
    this.#server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
      this.#handle(req, res).catch((e: unknown) => {
        opts.log.error({ err: e }, "Cannot answer admin API request: unexpected error");
        if (!res.headersSent) this.#send(res, 500, { error: "internal error" });
        else res.destroy();
      });
    });
    this.#server.on("error", (e: unknown) => opts.log.error({ err: e }, "admin API server error"));
  }

  /** The administrators' group's gid, once started (undefined: none configured). */
  get adminGid(): number | undefined {
    return this.#adminGid;
  }

  /**
   * Resolve the administrators' group, write the token files, listen on the
   * socket (replacing a stale one): 0600, or 0660 to the administrators' group.
   */
  async start(): Promise<void> {
    this.#peerCred = await loadPeerCred(this.#opts.log);
    const group = this.#opts.adminGroup ?? "";
    if (group !== "") {
      const gid = await (this.#opts.lookupGroup ?? defaultLookupGroup)(group);
      if (gid === undefined) throw new ConfigError(`Cannot use administrators' group "${group}": no such group`);
      this.#adminGid = gid;
    }
    await writeSecret(path.join(this.#opts.instanceDir, ADMIN_TOKEN_NAME), this.#adminToken);
    await writeSecret(path.join(this.#opts.instanceDir, READ_ONLY_TOKEN_NAME), this.#readToken);
    await fsp.rm(this.socketPath, { force: true });
    // Nobody ever sees the socket with wider permissions (os/unix-listen.ts).
    const adminGid = this.#adminGid;
    await listenUnixSecurely(this.#server, this.socketPath, async (tmpPath) => {
      if (adminGid === undefined) {
        await fsp.chmod(tmpPath, 0o600);
      } else {
        await fsp.chmod(tmpPath, 0o660);
        await fsp.chown(tmpPath, process.getuid?.() ?? -1, adminGid).catch((e: unknown) => {
          throw new ConfigError(`Cannot give the admin socket to group "${group}" (gid ${adminGid}): ${e instanceof Error ? e.message : String(e)}`);
        });
      }
    });
  }

  /** Write a registry file of the instance (properties.json, core.pid): 0640 to the administrators' group. */
  async writeRegistryFile(name: string, text: string): Promise<void> {
    await writeRegistryFile(path.join(this.#opts.instanceDir, name), text, this.#adminGid);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    await fsp.rm(this.socketPath, { force: true });
  }

  async #access(req: http.IncomingMessage): Promise<"admin" | "read" | "none"> {
    const auth = req.headers.authorization ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    if (m !== null) {
      const token = m[1] ?? "";
      if (sameToken(token, this.#adminToken)) return "admin";
      if (sameToken(token, this.#readToken)) return "read";
      return "none";
    }
    const fd = socketFd(req.socket);
    if (this.#peerCred !== undefined && fd !== undefined) {
      try {
        const { uid, gid, pid } = this.#peerCred(fd);
        if (uid === 0 || uid === process.getuid?.()) return "read";
        const admins = this.#adminGid;
        if (admins !== undefined) {
          if (gid === admins) return "read";
          if (pid !== undefined && pid > 0 && (await processGroups(pid)).includes(admins)) return "read";
        }
      } catch {
        return "none";
      }
    }
    return "none";
  }

  #send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body, null, 2) + "\n";
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store" });
    res.end(text);
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://control");
    const access = await this.#access(req);
    const route = `${req.method ?? "GET"} ${url.pathname}`;
    try {
      switch (route) {
        case "GET /status":
          requireAccess(access, "read");
          this.#send(res, 200, this.#opts.pool.status());
          return;
        case "GET /instance":
          requireAccess(access, "read");
          this.#send(res, 200, { pid: process.pid, ...this.#opts.properties });
          return;
        case "POST /restart": {
          requireAccess(access, "admin");
          const body = await readJson(req, this.#opts.maxBodyBytes ?? 64 * 1024);
          const app = typeof body === "object" && body !== null ? Reflect.get(body, "app") : undefined;
          if (typeof app !== "string" || app === "") {
            throw new ControlError('Cannot restart: the body must be {"app": "<app root or group name>"}', 400);
          }
          const restarted = await this.#opts.pool.restartApp(app);
          if (restarted === 0) throw new ControlError(`Cannot restart "${app}": no such app group`, 404);
          this.#opts.log.info({ app, restarted }, "rolling restart requested through the admin API");
          this.#send(res, 200, { restarted });
          return;
        }
        case "POST /reopen-logs": {
          requireAccess(access, "admin");
          const reopen = this.#opts.reopenLogs;
          if (reopen === undefined) throw new ControlError("Cannot reopen logs: this instance has no log files to reopen", 404);
          this.#send(res, 200, { reopened: await reopen() });
          return;
        }
        default:
          throw new ControlError(`Cannot ${req.method ?? "GET"} ${url.pathname}: no such endpoint`, 404);
      }
    } catch (e: unknown) {
      if (e instanceof FerryError) {
        const status = e instanceof ControlError ? e.httpStatus : 500;
        this.#send(res, status, { error: e.message, code: e.code });
        return;
      }
      throw e;
    }
  }
}

function requireAccess(have: "admin" | "read" | "none", need: "admin" | "read"): void {
  if (have === "admin") return;
  if (need === "read" && have === "read") return;
  throw new ControlError(
    need === "admin"
      ? "Cannot perform admin action: a valid admin token is required (Authorization: Bearer <instance dir>/admin_token)"
      : "Cannot read status: run as the core's user or root, or send a token",
    have === "none" ? 401 : 403,
  );
}

async function readJson(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += b.length;
    if (size > limit) throw new ControlError(`Cannot read request body: larger than ${limit} bytes`, 413);
    chunks.push(b);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new ControlError("Cannot parse request body: not JSON", 400);
  }
}

async function writeSecret(file: string, value: string): Promise<void> {
  await fsp.rm(file, { force: true });
  await fsp.writeFile(file, value + "\n", { mode: 0o600, flag: "wx" });
}
