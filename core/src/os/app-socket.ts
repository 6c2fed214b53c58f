/**
 * Connecting to an app process's Unix socket when the core runs as root.
 *
 * The socket lives in `<instance>/apps.s/<id>/`, a directory the core made
 * and gave to the app's user (spawn/child-spawner.ts): the app may replace
 * its socket there with anything, for instance a symlink to a root-only
 * socket (the admin socket, docker.sock …), and connect() follows symlinks.
 * So before a byte is sent, the listener's peer credentials (SO_PEERCRED) must
 * show the owner of that directory — the app's user — and nobody else
 * (issue 4, docs/security.md). When the core is not root the app runs as the
 * core's user and there is nothing to lend: plain connect.
 */
import { lstatSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { peerCred } from "./native.js";
import { socketFd } from "./socket-fd.js";

/** Peer credentials of a connected socket fd (os/native.ts's peerCred in production). */
export type PeerCredFn = (fd: number) => { readonly pid: number; readonly uid: number };

/** The listener of an app socket is not the app's user. */
export class AppSocketPeerError extends Error {
  readonly code = "FERRY_APP_SOCKET_PEER";
  constructor(message: string) {
    super(message);
    this.name = "AppSocketPeerError";
  }
}


export interface ConnectAppSocketOptions {
  /** Check the peer even when the core is not root (tests). Default: only as root. */
  readonly alwaysCheck?: boolean;
  /** Default: the native addon's. */
  readonly peerCred?: PeerCredFn;
}

/**
 * Connect to an app's Unix socket; `cb` is called exactly once, with the
 * connected socket when its listener runs as the owner of the socket's
 * directory, else with the error (the socket is then destroyed). Returns the
 * socket so a caller may destroy it early (timeouts).
 */
export function connectAppSocket(
  socketPath: string,
  cb: (err: Error | null, socket?: net.Socket) => void,
  opts: ConnectAppSocketOptions = {},
): net.Socket {
  const socket = net.connect({ path: socketPath });
  let done = false;
  const finish = (err: Error | null): void => {
    if (done) return;
    done = true;
    socket.off("error", finish);
    if (err !== null) {
      socket.destroy();
      cb(err);
    } else cb(null, socket);
  };
  socket.once("error", finish);
  socket.once("connect", () => {
    if (opts.alwaysCheck !== true && process.getuid?.() !== 0) {
      finish(null);
      return;
    }
    // Synchronous, right at connect: the kernel recorded the listener's
    // credentials at connect time, even if it has closed the connection since.
    try {
      const owner = lstatSync(path.dirname(socketPath)).uid;
      const fd = socketFd(socket);
      if (fd === undefined) throw new AppSocketPeerError(`Cannot check app socket ${socketPath}: no file descriptor`);
      const peer = (opts.peerCred ?? peerCred)(fd);
      if (peer.uid !== owner) {
        throw new AppSocketPeerError(
          `Cannot talk to app socket ${socketPath}: it is served by uid ${peer.uid} (pid ${peer.pid}), not by the app's uid ${owner}`,
        );
      }
    } catch (e: unknown) {
      finish(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    finish(null);
  });
  return socket;
}
