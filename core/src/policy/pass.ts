/**
 * Pure: whether a LEASE carries a pass (docs/protocol.md "Passes"), and which
 * processes it names. A pass lets the module send further plain requests of
 * the app straight to those processes for a short time; the core grants one
 * only when routing those requests needs nothing the core alone can do.
 * No I/O, nothing of ours imported: the caller (exchange/lease.ts) gathers
 * the facts from the head, the app options and the group.
 */

/** Everything the grant depends on, at the moment the LEASE is built. */
export interface PassFacts {
  /** The head asked for passes (REQUEST_HEAD `pass: true`). */
  readonly asked: boolean;
  /** The exchange takes the direct path (a LEASE, not PROCEED). */
  readonly directPath: boolean;
  /** The app runs Ferry's Node loader, which counts pass requests (not a generic PassengerAppStartCommand app). */
  readonly nodeLoader: boolean;
  /** The request asks to upgrade (WebSocket). */
  readonly upgrade: boolean;
  /** PassengerStickySessions: every response may need the cookie, every request its process. */
  readonly stickySessions: boolean;
  /** The head said the module routes pass requests by the sticky cookie (REQUEST_HEAD `pass_sticky`). */
  readonly stickyAsked: boolean;
  /** PassengerMaxRequests (0 = none): the core must count each request before it is sent. */
  readonly maxRequests: number;
  /** PassengerMaxRequestTime in ms (0 = none): a pass request has no deadline. */
  readonly maxRequestTimeMs: number;
  /** PassengerForceMaxConcurrentRequestsPerProcess (0 = not forced). */
  readonly maxConcurrencyPerProcess: number;
  /** Shared (Redis) session affinity is on. */
  readonly sharedAffinity: boolean;
  /** PassengerFriendlyErrorPages: failures must reach the core (relay path). */
  readonly friendlyErrorPages: boolean;
  /** Requests waiting in the group's queue (they go first). */
  readonly queueLength: number;
  /** A restart or rolling restart is in progress. */
  readonly restarting: boolean;
  /** always_restart.txt exists (every request restarts the app). */
  readonly alwaysRestart: boolean;
  /** The restart file's mtime is known (the core has stat'ed it for the current restart directory). */
  readonly restartFileKnown: boolean;
  /** The LEASE's process id (`id`). */
  readonly leaseId: string;
  /** LEASE ids of the group's processes that take requests now: ready, not retiring, not suspect. */
  readonly ready: readonly string[];
  /** The most ids a pass names. */
  readonly maxProcs: number;
}

/** Why no pass was granted: the first rule that failed, in the order of docs/protocol.md "Passes". */
export type PassRefusal =
  | "not_asked"
  | "relay_path"
  | "not_node_loader"
  | "upgrade"
  | "sticky_sessions"
  | "max_requests"
  | "max_request_time"
  | "forced_concurrency"
  | "shared_affinity"
  | "friendly_error_pages"
  | "queued"
  | "restarting"
  | "always_restart"
  | "restart_file_unknown"
  | "process_not_ready";

export type PassDecision =
  | { readonly grant: true; readonly procs: readonly string[] }
  | { readonly grant: false; readonly reason: PassRefusal };

function refuse(reason: PassRefusal): PassDecision {
  return { grant: false, reason };
}

/**
 * Grant a pass or say why not. Granted: `procs` holds the lease's own process
 * first, then the other ready processes in the order given, at most `maxProcs`.
 */
export function passDecision(f: PassFacts): PassDecision {
  if (!f.asked) return refuse("not_asked");
  if (!f.directPath) return refuse("relay_path");
  if (!f.nodeLoader) return refuse("not_node_loader");
  if (f.upgrade) return refuse("upgrade");
  // With sticky sessions only a module that routes by the cookie itself (the LEASE then says how: exchange/lease.ts).
  if (f.stickySessions && !f.stickyAsked) return refuse("sticky_sessions");
  if (f.maxRequests > 0) return refuse("max_requests");
  if (f.maxRequestTimeMs > 0) return refuse("max_request_time");
  if (f.maxConcurrencyPerProcess > 0) return refuse("forced_concurrency");
  if (f.sharedAffinity) return refuse("shared_affinity");
  if (f.friendlyErrorPages) return refuse("friendly_error_pages");
  if (f.queueLength > 0) return refuse("queued");
  if (f.restarting) return refuse("restarting");
  if (f.alwaysRestart) return refuse("always_restart");
  if (!f.restartFileKnown) return refuse("restart_file_unknown");
  // The leased process itself must still take requests (it may have been retired since the checkout).
  if (f.maxProcs < 1 || !f.ready.includes(f.leaseId)) return refuse("process_not_ready");
  const procs = [f.leaseId];
  for (const id of f.ready) {
    if (procs.length >= f.maxProcs) break;
    if (id !== f.leaseId) procs.push(id);
  }
  return { grant: true, procs };
}
