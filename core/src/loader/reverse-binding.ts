/**
 * Reverse port binding (runs inside the app process). Replaces
 * `net.Server.prototype.listen` — the one method http, https, express, koa,
 * fastify and plain net servers all end up in — so that whatever the app asks
 * for, the server Ferry routes to listens on Ferry's private Unix socket.
 *
 * Rules (docs/loader.md "Reverse port binding"):
 * - auto-install (default): the first server that calls listen() gets Ferry's
 *   socket, whatever its arguments. Re-listening that server (after close())
 *   binds the same socket again. A later server asking for a fixed TCP port
 *   gets a private throw-away Unix socket instead (it cannot collide with the
 *   same port in the app's other processes; it receives no traffic). Later
 *   servers asking for port 0 / no port (a random port), an explicit Unix
 *   path or a handle get what they asked for.
 * - `PhusionPassenger.configure({ autoInstall: false })` before any listen():
 *   only `listen('passenger')` / `listen('/passenger')` binds Ferry's socket;
 *   every other listen() behaves exactly as without Ferry.
 * - An https/tls server bound to Ferry's socket is served without TLS: the
 *   core speaks plain HTTP on the private socket (TLS ends at Apache).
 */
import net from "node:net";
import tls from "node:tls";
import http from "node:http";
import { unlinkSync } from "node:fs";
import path from "node:path";
import { parseListenArgs } from "./listen-args.js";

export interface ReverseBindingOptions {
  readonly socketPath: string;
  readonly socketDir: string;
  /** The app called listen() on the server Ferry binds. */
  readonly onListenCalled: () => void;
  /** That server is listening on `socketPath`. */
  readonly onListening: (socketPath: string) => void;
  /** One line of advice for the app's log (stderr). */
  readonly warn: (message: string) => void;
}

type ListenFn = (this: net.Server, ...args: unknown[]) => net.Server;

const SOCKET_PATH_MAX = 107;

export class ReverseBinding {
  autoInstall = true;
  /** The server bound to Ferry's socket. */
  installed: net.Server | undefined;
  /** Servers that listen on Ferry-chosen sockets (installed + throw-away); closed at shutdown. */
  readonly servers = new Set<net.Server>();
  /** HTTP requests in flight on `installed`. */
  inFlight = 0;
  readonly #opts: ReverseBindingOptions;
  readonly #original: ListenFn;
  #announced = false;
  #throwAwayCount = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(opts: ReverseBindingOptions) {
    this.#opts = opts;
    this.#original = net.Server.prototype.listen as unknown as ListenFn;
  }

  /** Replace net.Server.prototype.listen. */
  install(): void {
    const self = this;
    const original = this.#original;
    const patched = function listen(this: net.Server, ...args: unknown[]): net.Server {
      return self.#listen(this, original, args);
    };
    (net.Server.prototype as unknown as { listen: ListenFn }).listen = patched;
  }

  /** Resolve once no HTTP request is in flight on the installed server. */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #listen(server: net.Server, original: ListenFn, args: unknown[]): net.Server {
    const parsed = parseListenArgs(args);
    const target = parsed.target;
    if (this.autoInstall) {
      if (this.installed === undefined || this.installed === server) {
        return this.#bindFerry(server, original, parsed.backlog, parsed.callback);
      }
      if ((target.kind === "port" && target.port !== undefined && target.port > 0) || target.kind === "passenger") {
        return this.#bindThrowAway(server, original, parsed.backlog, parsed.callback, target.kind === "port" ? target.port : undefined);
      }
      return original.apply(server, args);
    }
    if (target.kind === "passenger") {
      if (this.installed !== undefined && this.installed !== server) {
        throw new Error("Cannot listen('passenger'): another server already listens on Ferry's socket");
      }
      return this.#bindFerry(server, original, parsed.backlog, parsed.callback);
    }
    return original.apply(server, args);
  }

  #bindFerry(server: net.Server, original: ListenFn, backlog: number | undefined, cb: ((...a: unknown[]) => void) | undefined): net.Server {
    const first = this.installed === undefined;
    this.installed = server;
    this.servers.add(server);
    if (first) {
      this.#prepareServer(server);
      this.#opts.onListenCalled();
      server.once("listening", () => {
        if (!this.#announced) {
          this.#announced = true;
          this.#opts.onListening(this.#opts.socketPath);
        }
      });
    }
    removeStale(this.#opts.socketPath);
    const options: net.ListenOptions = backlog === undefined ? { path: this.#opts.socketPath } : { path: this.#opts.socketPath, backlog };
    return cb === undefined ? original.call(server, options) : original.call(server, options, cb);
  }

  #bindThrowAway(server: net.Server, original: ListenFn, backlog: number | undefined, cb: ((...a: unknown[]) => void) | undefined, port: number | undefined): net.Server {
    this.#throwAwayCount++;
    const p = path.join(this.#opts.socketDir, `x${process.pid}-${this.#throwAwayCount}.sock`);
    if (Buffer.byteLength(p) > SOCKET_PATH_MAX) {
      throw new Error(`Cannot listen on a private socket: ${p} is longer than ${SOCKET_PATH_MAX} bytes`);
    }
    this.#opts.warn(
      `Ferry: a second server called listen(${port ?? ""}); only the first server receives requests, ` +
      `this one listens on the private socket ${p} (see docs/loader.md)`,
    );
    this.servers.add(server);
    removeStale(p);
    const options: net.ListenOptions = backlog === undefined ? { path: p } : { path: p, backlog };
    return cb === undefined ? original.call(server, options) : original.call(server, options, cb);
  }

  /** Make the Ferry-bound server look like a loopback TCP server to the app, and count its requests. */
  #prepareServer(server: net.Server): void {
    if (server instanceof tls.Server) stripTls(server);
    const fakeRemote = (socket: net.Socket): void => {
      if (socket.remoteAddress === undefined) {
        Object.defineProperty(socket, "remoteAddress", { value: "127.0.0.1", configurable: true });
        Object.defineProperty(socket, "remotePort", { value: 0, configurable: true });
        Object.defineProperty(socket, "remoteFamily", { value: "IPv4", configurable: true });
      }
    };
    server.prependListener("connection", fakeRemote);
    if (server instanceof http.Server || server instanceof tls.Server) {
      server.prependListener("request", (_req: http.IncomingMessage, res: http.ServerResponse) => {
        this.inFlight++;
        res.once("close", () => {
          this.inFlight--;
          if (this.inFlight === 0) {
            const waiters = this.#idleWaiters;
            this.#idleWaiters = [];
            for (const w of waiters) w();
          }
        });
      });
    }
  }
}

/**
 * Serve a tls.Server's (https) connections as plain sockets: replace its
 * 'connection' → TLS handshake listener by one that hands the raw socket to
 * its 'secureConnection' listeners (the HTTP parser).
 */
function stripTls(server: tls.Server): void {
  for (const l of server.listeners("connection")) {
    if (typeof l === "function" && l.name === "tlsConnectionListener") {
      server.removeListener("connection", l as (...a: unknown[]) => void);
      server.on("connection", (socket: net.Socket) => { server.emit("secureConnection", socket); });
    }
  }
}

function removeStale(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    // ENOENT: nothing stale.
  }
}
