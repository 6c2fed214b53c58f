/**
 * The accepting side of connection handoff (`ferry start
 * --connection-handoff`, docs/standalone.md): a TCP server that accepts
 * client connections without reading them and asks the pool to pass each
 * one to the least busy app process (fd passing, as Node's cluster module
 * does), which then serves every request of the connection itself. A
 * connection no process can take now (none ready yet, requests queued, the
 * pass failed) is served by the relay front server instead, with its
 * queueing, spawning and error pages; its first answer closes it
 * (`relayedOnce`), so the client's next connection is handed off once a
 * process can take it.
 */
import type http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { Logger } from "../../log.js";
import { socketFd } from "../../os/socket-fd.js";

/** Marks a connection the relay serves only because no process could take it when it arrived. */
const FALLBACK = Symbol("ferry.handoffFallback");

/** True for a connection the relay serves for want of a process: answer it with `Connection: close`. */
export function relayedOnce(socket: unknown): boolean {
  return typeof socket === "object" && socket !== null && (socket as Record<symbol, unknown>)[FALLBACK] === true;
}

export interface HandoffListenerOptions {
  /** The relay front server: gets the connections that are not handed off. */
  readonly relay: http.Server;
  /** Pass the connection's fd to an app process; false = not passed (the relay serves it). */
  readonly handOff: (fd: number) => Promise<boolean>;
  readonly log: Logger;
}

export class HandoffListener {
  readonly #server: net.Server;
  readonly #opts: HandoffListenerOptions;

  constructor(opts: HandoffListenerOptions) {
    this.#opts = opts;
    this.#server = net.createServer({ pauseOnConnect: true }, (socket) => void this.#route(socket));
  }

  async #route(socket: net.Socket): Promise<void> {
    socket.on("error", (e: unknown) => this.#opts.log.debug({ err: e }, "client connection error before handoff"));
    const fd = socketFd(socket);
    let passed = false;
    if (fd !== undefined) {
      try {
        passed = await this.#opts.handOff(fd);
      } catch (e: unknown) {
        this.#opts.log.warn({ err: e }, "Cannot hand a connection to an app process; relaying it");
      }
    }
    if (passed) {
      // The app process holds its own descriptor of the connection now.
      socket.destroy();
      return;
    }
    if (socket.destroyed) return;
    (socket as unknown as Record<symbol, boolean>)[FALLBACK] = true;
    this.#opts.relay.emit("connection", socket);
    socket.resume();
  }

  listen(port: number, host: string, backlog: number): Promise<AddressInfo> {
    const server = this.#server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ port, host, backlog }, () => {
        server.off("error", reject);
        server.on("error", (e: unknown) => this.#opts.log.error({ err: e }, "front server error"));
        const a = server.address();
        if (a === null || typeof a === "string") reject(new Error("Cannot listen: no TCP address"));
        else resolve(a);
      });
    });
  }

  /** Stop accepting connections (handed-off ones are the app processes' to finish). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) resolve();
      else this.#server.close(() => resolve());
    });
  }
}
