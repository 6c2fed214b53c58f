/**
 * One app process in a group (Passenger's Process) and the sessions checked
 * out on it. States: ready (takes requests) → draining (retired: no new
 * requests, shut down once idle) → dead (exited). The Group decides; this
 * class keeps the counters and the per-session signals straight.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "../log.js";
import type { SpawnedProcess } from "../spawn/spawner.js";
import type { ProcessState, ProcessStatus } from "../control/status.js";
import type { AppAddress, GroupPassView, Session, SessionOutcome } from "./session.js";
import type { ProcSample } from "./process-usage.js";
import type { LoopReport } from "../loader/messages.js";

/** The latest event-loop report of a process, with the clock time the core received it. */
export interface LoopSample extends LoopReport {
  /** Clock time (ms) the report arrived. */
  readonly at: number;
}

/** This core's instance nonce: the first part of every lease id (docs/protocol.md, LEASE). */
const INSTANCE_NONCE = randomBytes(6).toString("hex");
let leaseSeq = 0;

export type LiveState = Exclude<ProcessState, "spawning">;

/** Callbacks from a session back to its group. */
export interface SessionOwner {
  onSessionUpgraded(proc: PoolProcess, session: PoolSession): void;
  onSessionReleased(proc: PoolProcess, session: PoolSession, outcome: SessionOutcome): void;
  passView(): GroupPassView;
  onLeased(withPass: boolean): void;
}

/** The loader's report of handed-off connections, as the process keeps it (spawn/spawner.ts RequestsReport). */
export interface DirectReport {
  readonly inFlight: number;
  readonly upgraded: number;
  readonly connections: number;
  /** Requests finished since the previous report. */
  readonly finished: number;
  readonly peak: number;
  readonly adopted: number;
  readonly fresh: number;
}

export class PoolProcess {
  readonly pid: number;
  /** Connection id on the direct path: `<instance nonce>.<seq>`. */
  readonly leaseId = `${INSTANCE_NONCE}.${++leaseSeq}`;
  readonly address: AppAddress;
  readonly startedAt: number;
  state: LiveState = "ready";
  inFlight = 0;
  upgraded = 0;
  processed = 0;
  lastUsedAt: number;
  /** Since when inFlight has been ≥ 1 without a break; null when idle. */
  busySince: number | null = null;
  /**
   * The latest event-loop report from the loader (utilisation, delay, arrival
   * time); null until the first arrives and for processes that send none
   * (generic apps). Node app processes report every LOOP_REPORT_INTERVAL_MS
   * while their loop runs: a stale `at` means a stuck loop.
   */
  loop: LoopSample | null = null;
  /**
   * Requests in flight and upgraded connections on connections handed to the
   * process (connection handoff), as its loader last reported them; `inFlight`
   * and `upgraded` count only what passes through the core.
   */
  directInFlight = 0;
  directUpgraded = 0;
  /** Handed-off connections open (kept-alive ones included). */
  directConnections = 0;
  /** Connections passed to the process (connection handoff) since it started. */
  private passed = 0;
  /** Of those, received by the loader, as it last reported. */
  private directAdopted = 0;
  /** Received connections that had not brought a request yet, as the loader last reported. */
  private directFresh = 0;
  /** The most requests in flight at once during the interval `loop` covers (scaling). */
  loopPeakInFlight = 0;
  /** The most requests in flight at once since the last report. */
  private peakSinceReport = 0;
  cpuPercent = 0;
  rssBytes = 0;
  lastSample: ProcSample | null = null;
  /** Consecutive failed HTTP health checks, the last failure, and when the next check is due (docs/health.md). */
  healthFailures = 0;
  lastHealthFailure = "";
  nextHealthCheckAt = 0;
  healthChecking = false;
  /** Taken out of rotation by a health check: why (status, the exit it causes). */
  unhealthyReason = "";
  /** A request on it failed (app_error): no new requests until a liveness probe answers. */
  suspect = false;
  /** Why it is draining, for the log and status. */
  retireReason = "";
  /** shutdown() was sent. */
  shutdownSent = false;
  killTimer: NodeJS.Timeout | null = null;
  private readonly sessions = new Set<PoolSession>();
  /**
   * Sessions released with app_error: their owners may still wait on
   * processGone to learn whether the process died. Kept until the liveness
   * probe answers or the process exits (bounded by the probe's deadline).
   */
  private readonly errored = new Set<PoolSession>();

  constructor(
    readonly spawned: SpawnedProcess,
    readonly stickyId: string,
    /** Restart generation of the group when it was spawned. */
    readonly generation: number,
    readonly log: Logger,
    now: number,
  ) {
    this.pid = spawned.pid;
    this.address = spawned.address;
    this.startedAt = now;
    this.lastUsedAt = now;
  }

  /** Record an event-loop report that arrived at `now`. */
  recordLoop(r: LoopReport, now: number): void {
    this.loop = { ...r, at: now };
    this.loopPeakInFlight = this.peakSinceReport;
    this.peakSinceReport = this.totalInFlight;
  }

  /**
   * Requests in flight, through the core or on handed-off connections; a
   * connection passed but not yet seen bringing its first request counts as
   * one (it is about to).
   */
  get totalInFlight(): number {
    return this.inFlight + this.directInFlight + this.directPending;
  }

  /** Connections passed that the loader has not reported receiving, plus received ones still without a request. */
  get directPending(): number {
    return Math.max(0, this.passed - this.directAdopted) + this.directFresh;
  }

  /** A connection was passed to this process. */
  recordPassed(): void {
    this.passed++;
    this.directConnections++;
    if (this.totalInFlight > this.peakSinceReport) this.peakSinceReport = this.totalInFlight;
  }

  /**
   * max_requests: the requests counted, in flight and about to arrive on passed
   * connections reach `max`, so this process takes no further request.
   */
  exhausted(max: number): boolean {
    return max > 0 && this.processed + this.inFlight + this.directInFlight + this.directPending >= max;
  }

  /** Upgraded connections, through the core or on handed-off connections. */
  get totalUpgraded(): number {
    return this.upgraded + this.directUpgraded;
  }

  /** Record the loader's report of the requests on handed-off connections. */
  recordDirect(r: DirectReport, now: number): void {
    this.directInFlight = r.inFlight;
    this.directUpgraded = r.upgraded;
    this.directAdopted = r.adopted;
    this.directFresh = r.fresh;
    // Connections passed since the loader wrote its report are not in its count yet.
    this.directConnections = r.connections + Math.max(0, this.passed - r.adopted);
    this.processed += r.finished;
    if (r.finished > 0 || r.inFlight > 0) this.lastUsedAt = now;
    const peak = Math.max(this.totalInFlight, this.inFlight + r.peak);
    if (peak > this.peakSinceReport) this.peakSinceReport = peak;
  }

  /** Open a session for one request. */
  open(groupName: string, owner: SessionOwner, now: number): PoolSession {
    const s = new PoolSession(this, groupName, owner);
    this.sessions.add(s);
    if (this.inFlight === 0) this.busySince = now;
    this.inFlight++;
    if (this.totalInFlight > this.peakSinceReport) this.peakSinceReport = this.totalInFlight;
    this.lastUsedAt = now;
    return s;
  }

  /** Bookkeeping when a session ends; the group applies consequences. */
  closed(s: PoolSession, wasUpgraded: boolean, now: number, counted = true): void {
    if (!this.sessions.delete(s)) return;
    if (wasUpgraded) this.upgraded--;
    else this.inFlight--;
    if (counted) this.processed++;
    this.lastUsedAt = now;
    if (this.inFlight === 0) this.busySince = null;
  }

  upgradedSession(s: PoolSession, now: number): void {
    if (!this.sessions.has(s)) return;
    this.inFlight--;
    this.upgraded++;
    if (this.inFlight === 0) this.busySince = null;
    this.lastUsedAt = now;
  }

  /** Keep signalling processGone to a session released after an app error. */
  watchErrored(s: PoolSession): void {
    if (this.state !== "dead") this.errored.add(s);
  }

  /** The liveness probe answered: stop tracking released sessions. */
  forgetErrored(): void {
    this.errored.clear();
  }

  /** The process exited: abort every open (or errored) session's processGone signal. */
  abortAll(reason: Error): void {
    for (const s of this.sessions) s.abortGone(reason);
    for (const s of this.errored) s.abortGone(reason);
    this.errored.clear();
  }

  /** Abort the upgraded sessions only (abortWebsocketsOnProcessShutdown). */
  abortUpgraded(reason: Error): void {
    for (const s of this.sessions) if (s.isUpgraded) s.abortGone(reason);
  }

  status(): ProcessStatus {
    return {
      pid: this.pid,
      stickyId: this.stickyId,
      state: this.state,
      inFlight: this.totalInFlight,
      upgraded: this.totalUpgraded,
      processed: this.processed,
      startedAt: this.startedAt,
      lastUsedAt: this.lastUsedAt,
      cpuPercent: this.cpuPercent,
      rssBytes: this.rssBytes,
      ...(this.loop === null ? {} : { loop: this.loop }),
      cpuSeconds: (this.lastSample?.cpuTimeMs ?? 0) / 1000,
      generation: this.generation,
      retireReason: this.state === "draining" ? this.retireReason : "",
      health: this.unhealthyReason !== "" ? "unhealthy" : this.healthFailures > 0 ? "failing" : "ok",
      healthFailures: this.healthFailures,
      lastHealthFailure: this.lastHealthFailure,
    };
  }
}

/** One checkout: see core/src/pool/session.ts for the contract. */
export class PoolSession implements Session {
  readonly groupName: string;
  readonly pid: number;
  readonly address: AppAddress;
  readonly stickyId: string;
  readonly leaseId: string;
  /** Made on first use: most sessions (every leased request) never look at it. */
  private gone: AbortController | undefined;
  private goneReason: Error | undefined;
  private released = false;
  private upgraded = false;

  constructor(
    private readonly proc: PoolProcess,
    groupName: string,
    private readonly owner: SessionOwner,
  ) {
    this.groupName = groupName;
    this.pid = proc.pid;
    this.address = proc.address;
    this.stickyId = proc.stickyId;
    this.leaseId = proc.leaseId;
  }

  get processGone(): AbortSignal {
    if (this.gone === undefined) {
      this.gone = new AbortController();
      if (this.goneReason !== undefined) this.gone.abort(this.goneReason);
    }
    return this.gone.signal;
  }

  get isUpgraded(): boolean {
    return this.upgraded;
  }

  get isReleased(): boolean {
    return this.released;
  }

  abortGone(reason: Error): void {
    this.goneReason ??= reason;
    if (this.gone !== undefined && !this.gone.signal.aborted) this.gone.abort(reason);
  }

  markUpgraded(): void {
    if (this.released || this.upgraded) return;
    this.upgraded = true;
    this.owner.onSessionUpgraded(this.proc, this);
  }

  release(outcome: SessionOutcome): void {
    if (this.released) return;
    this.released = true;
    this.owner.onSessionReleased(this.proc, this, outcome);
  }

  passView(): GroupPassView {
    return this.owner.passView();
  }

  leased(withPass: boolean): void {
    this.owner.onLeased(withPass);
  }

  /** Used by the group on release: was this session upgraded when it ended? */
  get wasUpgraded(): boolean {
    return this.upgraded;
  }
}
