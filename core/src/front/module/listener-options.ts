/**
 * The module front's settings and the functions it is given (peer
 * credentials, descriptor passing): shared by the listener and its
 * connections.
 */
import type { Exchange } from "../../exchange/exchange.js";
import type { Logger } from "../../log.js";

/** Peer credentials of a Unix socket connection. */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** The request path: handles one exchange to completion (exchange/handle.ts's handleExchange). */
export type ExchangeHandler = (ex: Exchange, generation: number) => Promise<void>;

export interface ModuleListenerOptions {
  /** Socket path (`<instance dir>/module.sock`). */
  readonly path: string;
  readonly log: Logger;
  /** Apache's uid (`User`): the only non-root uid allowed to connect. */
  readonly apacheUid: number;
  /** Apache's gid: group owner of the socket when the core runs as root. */
  readonly apacheGid?: number;
  /**
   * The web server's parent processes (Apache's parent; nginx's master, and
   * during a binary upgrade its old master), read when a peer connects. When
   * set, a peer with the workers' uid must also be a child of one of them:
   * an app running as that user (nginx's default worker user is `nobody`,
   * the user root-owned apps run as) is refused like any other user.
   */
  readonly frontPids?: () => readonly number[];
  /** The parent pid of a pid; default /proc's (core/src/os/probes.ts). */
  readonly parentOf?: (pid: number) => number | undefined;
  readonly handler: ExchangeHandler;
  /** Peer credentials of a socket fd; default the native addon's (core/src/os/native.ts). */
  readonly peerCred?: (fd: number) => PeerCredentials;
  /**
   * Close a connection that sent no complete REQUEST_HEAD within this time
   * after it opened, or after the first byte of a later head. Default 30 s.
   */
  readonly headDeadlineMs?: number;
  /** Close a v2 connection idle between exchanges (no byte of the next head) this long. Default 5 min. */
  readonly idleDeadlineMs?: number;
  /**
   * Open module connections at most. At the cap, a new connection displaces
   * the oldest one that is between exchanges; when none is, it is refused. Default 4096.
   */
  readonly maxConnections?: number;
  /** After the response went out, how long to keep reading (discarding) what the module still sends. */
  readonly lingerMs?: number;
  /** listen() backlog (PassengerSocketBacklog). */
  readonly backlog?: number;
  /** Buffered request body bytes before the socket is paused. Default 64 KiB. */
  readonly bodyHighWaterMark?: number;
  /** Send bytes with a descriptor attached (SCM_RIGHTS); default the native addon's (os/native.ts). */
  readonly sendFd?: SendFdFn;
}

/** sendmsg with one descriptor attached; returns the bytes sent, throws (code EAGAIN) when none could be. */
export type SendFdFn = (sockFd: number, data: Buffer, fd: number) => number;
