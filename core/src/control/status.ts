/**
 * The status snapshot: the admin API's GET /status answer and what `ferry
 * status` shows (docs/status-json.md). Plain JSON-serialisable data, built by
 * Pool.status() with the affinity cluster's view added (affinity/cluster.ts),
 * served by control/admin-api.ts, read back by control/client.ts. The contract
 * imports nothing, so everyone who uses it sits above it.
 */

export type ProcessState = "spawning" | "ready" | "draining" | "dead";

export interface ProcessStatus {
  readonly pid: number;
  readonly stickyId: string;
  readonly state: ProcessState;
  /** Requests in flight now (not counting upgraded connections). */
  readonly inFlight: number;
  /** Upgraded (WebSocket) connections open now. */
  readonly upgraded: number;
  /** Requests completed. */
  readonly processed: number;
  /** Epoch ms. */
  readonly startedAt: number;
  readonly lastUsedAt: number;
  /** CPU percent over the last sampling interval, and resident memory in bytes (from /proc). */
  readonly cpuPercent: number;
  readonly rssBytes: number;
  /**
   * The latest event-loop report of a Node app process (loader/messages.ts
   * LoopReport): utilisation 0..1 and delay over the last interval, and the
   * epoch ms it arrived. Absent until the first report and for generic apps.
   */
  readonly loop?: {
    readonly elu: number;
    readonly delayMeanMs: number;
    readonly delayP99Ms: number;
    readonly delayMaxMs: number;
    readonly intervalMs: number;
    readonly at: number;
  };
  /** CPU time used so far (user + system), in seconds, from the last sample. */
  readonly cpuSeconds: number;
  /** Restart generation of the group when this process was spawned. */
  readonly generation: number;
  /** Why it is draining ("" unless state is draining). */
  readonly retireReason: string;
  /**
   * ok; failing (its last HTTP health checks failed, fewer times than the limit);
   * unhealthy (taken out of rotation by a health check, being replaced).
   */
  readonly health: "ok" | "failing" | "unhealthy";
  /** Consecutive failed HTTP health checks. */
  readonly healthFailures: number;
  /** Why the last health check failed ("" when none did). */
  readonly lastHealthFailure: string;
}

/** How the last process of a group ended (docs/status-json.md). */
export interface ExitStatus {
  /** Epoch ms. */
  readonly at: number;
  readonly pid: number;
  /** Exit code, or null when a signal ended it. */
  readonly code: number | null;
  readonly signal: string | null;
  /** False when it was retired first (a planned stop), true for a crash. */
  readonly unexpected: boolean;
  /** The retire reason for a planned stop, or "exit code N" / "signal S" for a crash. */
  readonly reason: string;
}

export interface GroupStatus {
  readonly name: string;
  readonly appRoot: string;
  readonly appEnv: string;
  readonly queueLength: number;
  /** Processes being spawned now. */
  readonly spawning: number;
  /** A rolling restart is in progress. */
  readonly restarting: boolean;
  /** Last spawn or restart failure, kept until a spawn succeeds. */
  readonly lastError: { readonly at: number; readonly code: string; readonly message: string; readonly output: string } | null;
  /** Restart generation: bumped by every restart request (restart.txt, ferry restart, redeploy). */
  readonly restartGeneration: number;
  /** Processes spawned since the group was created. */
  readonly spawns: number;
  /** Spawns that failed since the group was created. */
  readonly spawnFailures: number;
  /** Processes that exited without being asked to (crashes). */
  readonly crashes: number;
  /** Crashes by reason ("exit code 1", "signal SIGKILL"). */
  readonly crashReasons: Readonly<Record<string, number>>;
  /** Requests refused because the queue was full (PassengerMaxRequestQueueSize). */
  readonly queueOverflows: number;
  /** LEASEs sent (requests that took the direct path through the core). */
  readonly leases: number;
  /** Of those, LEASEs that carried a pass (docs/protocol.md "Passes"). */
  readonly passes: number;
  /**
   * Requests the app processes' loaders reported as served without the core:
   * sent with a pass (module mode) or on handed-off connections (ferry start).
   */
  readonly directRequests: number;
  /** Processes taken out of rotation and replaced by a health check, by kind (event_loop, health_check). */
  readonly unhealthy: Readonly<Record<string, number>>;
  /** The last process exit, planned or not; null before any. */
  readonly lastExit: ExitStatus | null;
  readonly processes: readonly ProcessStatus[];
}

/** One host of the Redis affinity cluster, as this core sees it (docs/affinity.md). */
export interface ClusterNodeStatus {
  readonly name: string;
  readonly peer: string;
  /** Its heartbeat is current. */
  readonly alive: boolean;
  /** This core. */
  readonly self: boolean;
  /** Sticky sessions it owns. */
  readonly sessions: number;
  /** Affinity keys of the apps it serves (docs/affinity.md). */
  readonly apps: readonly string[];
  readonly lastSeenAt: number;
}

/** A site that live hosts serve under different affinity keys. */
export interface ClusterKeyMismatch {
  readonly site: string;
  readonly keys: ReadonlyArray<{ readonly node: string; readonly key: string }>;
}

export interface ClusterStatus {
  readonly node: string;
  /** Redis answered the last heartbeat. */
  readonly storeAvailable: boolean;
  readonly nodes: readonly ClusterNodeStatus[];
  /** Sites served under different affinity keys by different hosts (sessions do not follow there). */
  readonly keyMismatches?: readonly ClusterKeyMismatch[];
}

export interface PoolStatus {
  readonly version: string;
  readonly maxPoolSize: number;
  readonly processCount: number;
  readonly groups: readonly GroupStatus[];
  /** Present when Redis-shared affinity is on. */
  readonly cluster?: ClusterStatus;
}
