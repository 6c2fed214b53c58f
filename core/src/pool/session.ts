/**
 * A Session is one checkout of one app process for one request (Passenger's
 * Session): the caller talks to `address`, then calls `release()` exactly once.
 */

import type { AppAddress } from "../spawn/spawner.js";

/** Where an app process accepts HTTP connections (the spawner says, spawn/spawner.ts). */
export type { AppAddress };

/** How an exchange with the app ended, reported on release. */
export type SessionOutcome =
  /** A complete response was relayed (any status). */
  | "ok"
  /** The app could not be connected to, or broke the connection / died mid-exchange. */
  | "app_error"
  /** The request exceeded PassengerMaxRequestTime; the pool recycles the process. */
  | "timeout"
  /** The client went away; not the app's fault. */
  | "client_aborted"
  /**
   * Direct path: the module found its kept-alive connection to the process
   * closed before any response byte and retries the request; not counted.
   */
  | "stale";

/** What a pass depends on in the process's group, now (docs/protocol.md "Passes", policy/pass.ts). */
export interface GroupPassView {
  /** Requests waiting in the group's queue. */
  readonly queueLength: number;
  /** A restart or rolling restart is in progress. */
  readonly restarting: boolean;
  /** always_restart.txt existed at the last check. */
  readonly alwaysRestart: boolean;
  /** Absolute path of the app's restart.txt. */
  readonly restartFile: string;
  /** Its mtime in ns at the core's last check (-1n absent); undefined when not checked yet. */
  readonly restartMtimeNs: bigint | undefined;
  /** LEASE ids of the processes that take requests now: ready, not retiring, not suspect, not exhausted. */
  readonly ready: readonly string[];
  /** Their sticky-session ids, in the order of `ready`. */
  readonly readyStickyIds: readonly string[];
}

export interface Session {
  /** The app group name (pool key). */
  readonly groupName: string;
  readonly pid: number;
  readonly address: AppAddress;
  /** The sticky-session id of the process (cookie value). */
  readonly stickyId: string;
  /**
   * The process's connection id on the direct path (docs/protocol.md, LEASE
   * `id`): unique across core restarts, so a module never reuses a connection
   * to an old process as one to a new process.
   */
  readonly leaseId: string;
  /** Aborted when the process dies while this session is open. */
  readonly processGone: AbortSignal;
  /**
   * Mark this session as a long-lived upgraded connection (WebSocket): it keeps
   * the process alive but no longer counts as an in-flight request for routing
   * and scaling.
   */
  markUpgraded(): void;
  /** End the checkout; idempotent after the first call. */
  release(outcome: SessionOutcome): void;
  /** Direct path: the group's state a pass depends on (absent in test doubles: no pass). */
  passView?(): GroupPassView;
  /** Direct path: a LEASE went out for this session, with a pass or without (status counters). */
  leased?(withPass: boolean): void;
}
