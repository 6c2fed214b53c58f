/**
 * The Spawner port: starts one app process and resolves once it is ready to
 * take requests. The real implementation lives in spawn/child-spawner.ts; tests
 * may pass an in-memory one.
 */
import type { AppOptions, ServerOptions } from "../config/schema.js";
import type { DirectErrorPage, DirectRequest, LoopReport } from "../loader/messages.js";

/** Where an app process accepts HTTP connections. */
export type AppAddress =
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number };

/**
 * Requests served without the core, as the loader reports them ("reqs"): on
 * handed-off connections, and requests the module sent with a pass.
 */
export interface RequestsReport {
  /** Requests in flight now. */
  readonly inFlight: number;
  /** Upgraded (WebSocket) connections open now. */
  readonly upgraded: number;
  /** Handed-off connections open now. */
  readonly connections: number;
  /** Requests finished since the previous report: [status (0 = no head sent), ms, bytes sent]. */
  readonly done: readonly DirectRequest[];
  /** Most requests at once since the previous report (in flight together or started in one event-loop turn). */
  readonly peak: number;
  /** Connections the process received since it started. */
  readonly adopted: number;
  /** Received connections that have not brought their first request yet. */
  readonly fresh: number;
  /** Error pages the loader answered (the core logs each with its error id). */
  readonly pages: readonly DirectErrorPage[];
}

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnedProcess {
  readonly pid: number;
  readonly address: AppAddress;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ProcessExit>;
  /** Ask the process to shut down gracefully: stop listening, finish in-flight requests, exit. */
  shutdown(): void;
  /** SIGKILL the process (and its process group). */
  kill(): void;
  /**
   * Call `listener` with each event-loop report the process sends (Node apps:
   * every LOOP_REPORT_INTERVAL_MS); absent for processes that send none
   * (generic apps).
   */
  onLoopReport?(listener: (r: LoopReport) => void): void;
  /**
   * Connection handoff (ServerOptions.connectionHandoff, Node apps): pass an
   * accepted client connection's fd to the process, which serves it itself.
   * False when it could not be passed (the caller still owns the connection).
   */
  handOff?(fd: number): boolean;
  /** Call `listener` with each report of the requests served without the core (Node apps). */
  onRequests?(listener: (r: RequestsReport) => void): void;
}

export interface SpawnRequest {
  readonly app: AppOptions;
  readonly server: ServerOptions;
  /** Aborted when the spawn is no longer wanted or PassengerStartTimeout passed. */
  readonly signal: AbortSignal;
}

export interface Spawner {
  /** Reopen every per-app log file by its name (log rotation); resolves with how many were reopened. */
  reopenLogs?(): Promise<number>;
  /**
   * Start one process of the app. Rejects with SpawnError (carrying the app's
   * output and the failed step) when it exits, fails to listen in time, or the
   * signal aborts.
   */
  spawn(req: SpawnRequest): Promise<SpawnedProcess>;
}
