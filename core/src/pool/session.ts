/**
 * A Session is one checkout of one app process for one request (Passenger's
 * Session): the caller talks to `address`, then calls `release()` exactly once.
 */

/** Where an app process accepts HTTP connections. */
export type AppAddress =
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number };

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
}
