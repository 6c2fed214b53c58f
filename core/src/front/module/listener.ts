/**
 * The Unix-socket server mod_ferry talks to (docs/protocol.md): listens with
 * the least permissions that work, checks each peer's credentials (root and
 * Apache's uid only; with the server's parent pid known, of that uid only its
 * children, the workers), caps the number of connections, and hands each one to a
 * ModuleConnection (connection.ts), which runs its exchanges.
 */
import { promises as fsp } from "node:fs";
import net from "node:net";
import { MAX_MODULE_CONNECTIONS } from "../../protocol/frames.js";
import { parentPidOf } from "../../os/probes.js";
import { socketFd } from "../../os/socket-fd.js";
import { listenUnixSecurely } from "../../os/unix-listen.js";
import { ModuleConnection } from "./connection.js";

export type { ExchangeHandler, ModuleListenerOptions, PeerCredentials, SendFdFn } from "./listener-options.js";
import type { ModuleListenerOptions, PeerCredentials, SendFdFn } from "./listener-options.js";

/**
 * Whether a peer may use the module socket: root, and Apache's (the
 * workers') uid; when the web server's parent is known (`frontPid`), only a
 * process of that uid whose parent it is (`peerParent`): a worker, not an
 * app that runs as the same user.
 */
export function isPeerAllowed(
  cred: Pick<PeerCredentials, "uid" | "pid">, apacheUid: number,
  front?: { readonly frontPids: readonly number[]; readonly peerParent: number | undefined },
): boolean {
  if (cred.uid === 0) return true;
  if (cred.uid !== apacheUid) return false;
  if (front === undefined) return true;
  // The parent itself serves requests when it runs alone (httpd -X).
  return front.frontPids.includes(cred.pid) || (front.peerParent !== undefined && front.frontPids.includes(front.peerParent));
}

async function defaultPeerCred(): Promise<(fd: number) => PeerCredentials> {
  const native = await import("../../os/native.js");
  return native.peerCred;
}

async function defaultSendFd(): Promise<SendFdFn> {
  const native = await import("../../os/native.js");
  return native.sendFd;
}

export class ModuleListener {
  readonly path: string;
  readonly #opts: ModuleListenerOptions;
  readonly #server: net.Server;
  readonly #connections = new Set<ModuleConnection>();
  #peerCred: ((fd: number) => PeerCredentials) | undefined;
  #sendFd: SendFdFn | undefined;
  #closing = false;
  #emptyWaiters: Array<() => void> = [];
  /** When the "too many connections" warning was last logged (one a minute at most). */
  #capWarnedAt = 0;

  constructor(opts: ModuleListenerOptions) {
    this.#opts = opts;
    this.path = opts.path;
    this.#peerCred = opts.peerCred;
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
    this.#server.on("error", (e: unknown) => opts.log.error({ err: e }, "module socket server error"));
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Listen on the socket path (replacing a stale socket), mode 0660, group Apache's when root. */
  async start(): Promise<void> {
    this.#peerCred ??= await defaultPeerCred();
    this.#sendFd = this.#opts.sendFd ?? await defaultSendFd();
    const st = await fsp.lstat(this.path).catch(() => undefined);
    if (st !== undefined) {
      if (!st.isSocket()) throw new Error(`Cannot listen on module socket ${this.path}: a file that is not a socket is in the way`);
      await fsp.rm(this.path, { force: true });
    }
    // A client never sees the socket with the wrong mode or owner (os/unix-listen.ts).
    await listenUnixSecurely(this.#server, this.path, async (tmpPath) => {
      await fsp.chmod(tmpPath, 0o660);
      if (process.getuid?.() === 0 && this.#opts.apacheGid !== undefined) {
        await fsp.chown(tmpPath, 0, this.#opts.apacheGid);
      }
    }, this.#opts.backlog ?? 2048);
  }

  /**
   * Stop accepting new connections. Exchanges in progress continue; a
   * connection then closes after its exchange instead of waiting for the next
   * one, and idle (v2) connections close now.
   */
  stopAccepting(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#server.close();
    for (const c of this.#connections) c.closeWhenIdle();
  }

  /**
   * Stop accepting, wait up to `deadlineMs` for open exchanges to finish, then
   * cut the rest and remove the socket file. Resolves true if all finished.
   */
  async close(deadlineMs = 0): Promise<boolean> {
    this.stopAccepting();
    let drained = this.#connections.size === 0;
    if (!drained && deadlineMs > 0) {
      drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), deadlineMs);
        this.#emptyWaiters.push(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    }
    for (const c of this.#connections) c.destroy();
    await fsp.rm(this.path, { force: true }).catch(() => undefined);
    return drained;
  }

  #accept(socket: net.Socket): void {
    const log = this.#opts.log;
    socket.on("error", (e: unknown) => log.debug({ err: e }, "module connection error"));
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const fd = socketFd(socket);
    let cred: PeerCredentials | undefined;
    try {
      if (fd !== undefined && this.#peerCred !== undefined) cred = this.#peerCred(fd);
    } catch (e: unknown) {
      log.warn({ err: e }, "Cannot read peer credentials of a module connection: closing it");
    }
    if (cred === undefined) {
      if (fd === undefined) log.warn("Cannot read peer credentials of a module connection: no file descriptor; closing it");
      socket.destroy();
      return;
    }
    // No parent known (nginx's pid file unreadable): the uid alone decides, as before nginx wrote it.
    const frontPids = cred.uid === this.#opts.apacheUid ? this.#opts.frontPids?.() : undefined;
    const front = frontPids === undefined || frontPids.length === 0
      ? undefined
      : { frontPids, peerParent: (this.#opts.parentOf ?? parentPidOf)(cred.pid) };
    if (!isPeerAllowed(cred, this.#opts.apacheUid, front)) {
      const who = front !== undefined
        ? `it runs as the web server's uid ${cred.uid} but is not a child of the web server (pid ${front.frontPids.join(", ") || "unknown"}; its parent: ${front.peerParent ?? "gone"})`
        : `only root and Apache's uid ${this.#opts.apacheUid} may connect`;
      log.warn({ peerUid: cred.uid, peerPid: cred.pid }, `Cannot accept module connection from uid ${cred.uid} (pid ${cred.pid}): ${who}`);
      socket.destroy();
      return;
    }
    if (!this.#makeRoom()) {
      this.#warnCap(`Cannot accept module connection from pid ${cred.pid}: ${this.#connections.size} are open (the cap) and none is idle`);
      socket.destroy();
      return;
    }
    const conn = new ModuleConnection(socket, this.#opts, log, cred.pid, this.#sendFd);
    this.#connections.add(conn);
    socket.once("close", () => {
      this.#connections.delete(conn);
      if (this.#connections.size === 0) {
        const waiters = this.#emptyWaiters;
        this.#emptyWaiters = [];
        for (const w of waiters) w();
      }
    });
  }

  /**
   * Below the cap, or made so by closing the oldest connection between
   * exchanges (a reconnect costs Apache little; an exchange is never cut).
   */
  #makeRoom(): boolean {
    const cap = this.#opts.maxConnections ?? MAX_MODULE_CONNECTIONS;
    if (this.#connections.size < cap) return true;
    for (const c of this.#connections) {
      if (c.idle) {
        this.#connections.delete(c);
        c.destroy();
        this.#warnCap(`Closing the oldest idle module connection: ${cap} are open (the cap)`);
        return true;
      }
    }
    return false;
  }

  #warnCap(msg: string): void {
    const now = Date.now();
    if (now - this.#capWarnedAt < 60_000) return;
    this.#capWarnedAt = now;
    this.#opts.log.warn(msg);
  }
}
