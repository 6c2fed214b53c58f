/**
 * Group: one application's processes and its bounded wait list (Passenger's
 * Group). It builds snapshots, asks the pure policies (routing, admission,
 * scaling) what to do, and acts: dispatch waiters, spawn in the background,
 * retire and stop processes, run rolling restarts.
 */
import { connect, type Socket } from "node:net";
import { connectAppSocket } from "../os/app-socket.js";
import type { AppOptions, ServerOptions } from "../config/schema.js";
import { AbortedError, AppCrashedError, PoolShutdownError, QueueFullError, QueueTimeoutError, SpawnError } from "../errors.js";
import type { Logger } from "../log.js";
import { admit } from "../policy/admission.js";
import { route, type RoutableProcess } from "../policy/routing.js";
import {
  crashRespawnDelayMs,
  effectiveMaxInstances,
  idleProcessesToRetire,
  QUICK_CRASH_MS,
  shouldSpawn,
  spawnBackoffMs,
  type ScalingProcess,
  type SpawnReason,
} from "../policy/scaling.js";
import { newStickyId } from "../policy/sticky.js";
import { unhealthy, type Unhealthy } from "../policy/health.js";
import { probeHealth } from "./health-probe.js";
import { timerDelay, type Clock } from "../util/clock.js";
import type { ProcessExit, RequestsReport, SpawnedProcess, Spawner } from "../spawn/spawner.js";
import { PoolProcess, type PoolSession, type SessionOwner } from "./process.js";
import { RestartProbe } from "./restart-probe.js";
import type { GroupPassView, Session, SessionOutcome } from "./session.js";
import type { PoolObserver } from "./observer.js";
import type { RequestRecorder } from "./request-recorder.js";
import type { ExitStatus, GroupStatus } from "../control/status.js";

/** What a Group needs from its Pool. */
export interface GroupContext {
  readonly spawner: Spawner;
  readonly log: Logger;
  readonly clock: Clock;
  /** Aborted when the pool shuts down (cancels spawns). */
  readonly shutdownSignal: AbortSignal;
  server(): ServerOptions;
  /** Processes the pool can still start without evicting (≤ 0 when full). */
  poolRoom(): number;
  /** Retire an idle process of another group to make room; true when one was retired. */
  freeCapacity(requester: Group): boolean;
  /**
   * Wait until a spawn may exec its process (the pool's process table is
   * below maxPoolSize; `bypass` = at once). Resolves with a release function
   * to call once the process joined the group or the spawn failed.
   */
  spawnSlot(bypass: boolean, signal: AbortSignal): Promise<() => void>;
  /** A process stopped counting against the pool (exit, retire) or became idle. */
  capacityChanged(): void;
  /** A random integer in [1, 2^32 - 1] for sticky ids. */
  randomStickyId(): number;
  /** Take a first CPU/RSS sample of a new process. */
  sample(group: Group, proc: PoolProcess): void;
  readonly observer: PoolObserver;
  /** Counts the requests served on handed-off connections. */
  readonly recorder: RequestRecorder;
}

interface Waiter {
  readonly stickyId: string | undefined;
  readonly resolve: (s: Session) => void;
  readonly reject: (e: Error) => void;
  readonly detach: () => void;
}

type LastError = GroupStatus["lastError"];

/** How long a liveness probe of a process after an app_error may take. */
const LIVENESS_PROBE_MS = 1_000;

export class Group implements SessionOwner {
  readonly name: string;
  app: AppOptions;
  /** Apache config generation of `app` (redeploy). */
  appGeneration: number;
  /** Highest redeploy generation that already restarted this group. */
  redeployedGeneration = -1;
  readonly probe: RestartProbe;
  readonly log: Logger;

  private processes: PoolProcess[] = [];
  private spawningCount = 0;
  private readonly spawns = new Set<Promise<void>>();
  private waiters: Waiter[] = [];
  /** Restart generation: processes spawned under an older one are stale. */
  private restartGen = 0;
  private restarting = false;
  private lastError: LastError = null;
  private spawnFailures = 0;
  private crashStreak = 0;
  /** Totals since the group was created (status, metrics). */
  private readonly totals = { spawns: 0, spawnFailures: 0, crashes: 0, queueOverflows: 0, leases: 0, passes: 0, directRequests: 0 };
  private readonly crashReasons: Record<string, number> = {};
  private readonly unhealthyCounts: Record<string, number> = {};
  private lastExit: ExitStatus | null = null;
  /** No spawn before this time (backoff). */
  private notBefore = 0;
  /** notBefore comes from a spawn failure: requests with nothing to serve them get the error at once. */
  private failFast = false;
  private updateScheduled = false;
  private recheckTimer: NodeJS.Timeout | null = null;
  private recheckAt = 0;
  private closed = false;

  constructor(
    app: AppOptions,
    generation: number,
    private readonly ctx: GroupContext,
  ) {
    this.name = app.appGroupName;
    this.app = app;
    this.appGeneration = generation;
    this.probe = new RestartProbe(app.appRoot, app.restartDir);
    this.log = ctx.log.child({ app: this.name });
  }

  // ---- Checkout -------------------------------------------------------------

  checkout(stickyId: string | undefined, signal: AbortSignal | undefined): Promise<Session> {
    if (this.closed) return Promise.reject(new PoolShutdownError(`Cannot check out a process of "${this.name}": the pool is shutting down`));
    if (signal?.aborted === true) return Promise.reject(this.abortedError());
    const sticky = this.app.stickySessions ? stickyId : undefined;
    const now = this.ctx.clock.now();
    // Earlier waiters go first when a slot has just freed up.
    this.dispatchWaiters();
    const decision = admit({
      route: route({ processes: this.routable(), maxConcurrency: this.app.maxConcurrentRequestsPerProcess, stickyId: sticky }),
      queueLength: this.waiters.length,
      maxQueueSize: this.app.maxRequestQueueSize,
      spawnBlocked: this.spawnBlocked(now),
    });
    switch (decision.kind) {
      case "dispatch": {
        const proc = this.processes.find((p) => p.pid === decision.id);
        if (proc === undefined) return Promise.reject(new Error(`Cannot route to pid ${decision.id}: not in group`));
        const session = proc.open(this.name, this, now);
        this.schedule();
        return Promise.resolve(session);
      }
      case "reject":
        if (decision.reason === "spawn_failed") return Promise.reject(this.spawnErrorForWaiters());
        this.totals.queueOverflows++;
        return Promise.reject(
          new QueueFullError(`Cannot queue a request for "${this.name}": the queue is full (${this.app.maxRequestQueueSize} waiting)`),
        );
      case "enqueue":
        return new Promise<Session>((resolve, reject) => {
          const leave = (err: Error): void => {
            const i = this.waiters.indexOf(waiter);
            if (i >= 0) this.waiters.splice(i, 1);
            waiter.detach();
            reject(err);
          };
          const onAbort = (): void => leave(this.abortedError());
          // PassengerMaxRequestQueueTime: a request queued longer gets 504 (as Passenger does).
          const maxWait = this.app.maxRequestQueueTimeMs;
          const timer = maxWait > 0
            ? setTimeout(() => {
              leave(new QueueTimeoutError(`Cannot check out a process of "${this.name}": the request waited in the queue for ${maxWait} ms (PassengerMaxRequestQueueTime)`));
            }, timerDelay(maxWait))
            : undefined;
          const waiter: Waiter = {
            stickyId: sticky,
            resolve,
            reject,
            detach: () => {
              clearTimeout(timer);
              signal?.removeEventListener("abort", onAbort);
            },
          };
          signal?.addEventListener("abort", onAbort, { once: true });
          this.waiters.push(waiter);
          this.schedule();
        });
    }
  }

  private abortedError(): AbortedError {
    return new AbortedError(`Cannot check out a process of "${this.name}": the request was aborted`);
  }

  private spawnErrorForWaiters(): SpawnError {
    const e = this.lastError;
    if (e === null) return new SpawnError(`Cannot spawn app "${this.name}": unknown error`, {});
    return new SpawnError(e.message, { output: e.output, timeout: e.code === "FERRY_ERR_SPAWN_TIMEOUT" });
  }

  private spawnBlocked(now: number): boolean {
    return (
      this.failFast &&
      this.lastError !== null &&
      now < this.notBefore &&
      this.spawningCount === 0 &&
      !this.processes.some((p) => p.state === "ready")
    );
  }

  private routable(): RoutableProcess[] {
    return this.processes.map((p) => ({
      id: p.pid,
      stickyId: p.stickyId,
      inFlight: p.totalInFlight,
      // max_requests: a process whose counted, running and arriving requests reach it takes no more.
      accepting: p.state === "ready" && !p.suspect && !p.exhausted(this.app.maxRequests),
    }));
  }

  /**
   * Connection handoff: pass a client connection to the least busy ready
   * process that takes handoffs. False (the caller keeps the connection) when
   * none can, or requests wait in the queue (they go first).
   */
  handOff(fd: number): boolean {
    if (this.closed || this.waiters.length > 0) return false;
    // Least busy first; kept-alive connections outlive the moment of choice, so
    // ties go to the process holding fewer connections (then the oldest).
    let proc: PoolProcess | undefined;
    for (const p of this.processes) {
      if (p.state !== "ready" || p.suspect || p.spawned.handOff === undefined || p.exhausted(this.app.maxRequests)) continue;
      if (proc === undefined || p.totalInFlight < proc.totalInFlight ||
        (p.totalInFlight === proc.totalInFlight && p.directConnections < proc.directConnections)) proc = p;
    }
    if (proc?.spawned.handOff?.(fd) !== true) return false;
    // Counted as a request about to arrive until the loader reports what the connection brought.
    proc.recordPassed();
    proc.lastUsedAt = this.ctx.clock.now();
    return true;
  }

  /** Stat restart.txt / always_restart.txt as a checkout does (throttled by stat_throttle_rate). */
  private checkRestartFiles(): void {
    const reason = this.probe.check(this.ctx.clock.now(), this.ctx.server().statThrottleRateMs);
    if (reason !== null && !this.closed) this.requestRestart(reason);
  }

  /** Metrics and error-page log lines of a loader report (also for a process already gone). */
  private recordFinished(proc: PoolProcess, r: RequestsReport): void {
    this.totals.directRequests += r.done.length;
    for (const [status, ms, bytes] of r.done) this.ctx.recorder.requestFinished(this.name, status, ms / 1000, bytes);
    // Error pages the loader answered: logged as the relay logs its own (exchange/context.ts sendError).
    for (const p of r.pages) {
      proc.log.error({ errorId: p.errorId, code: p.code, status: p.status, appRoot: this.app.appRoot, method: p.method, uri: p.uri },
        `${p.message} Error ID: ${p.errorId}`);
    }
  }

  private onDirectRequests(proc: PoolProcess, r: RequestsReport): void {
    const now = this.ctx.clock.now();
    proc.recordDirect({ ...r, finished: r.done.length }, now);
    this.recordFinished(proc, r);
    // restart.txt: requests on handed-off connections and pass requests pass no checkout, so they are checked here.
    if (r.done.length > 0 || r.inFlight > 0) this.checkRestartFiles();
    // max_request_time: the loader cut the request; the process is recycled as for a relayed one.
    if (proc.state === "ready" && r.pages.some((p) => p.code === "FERRY_ERR_APP_TIMEOUT")) {
      this.retire(proc, "a request exceeded the max request time");
    }
    if (proc.state === "ready" && this.app.maxRequests > 0 && proc.processed >= this.app.maxRequests) {
      this.retire(proc, `it handled ${proc.processed} requests (max requests ${this.app.maxRequests})`);
    }
    // A draining process may have been waiting for its handed-off WebSockets to close.
    if (proc.state === "draining") this.maybeStop(proc);
    this.schedule();
  }

  /** Hand queued requests to processes that can take them, in arrival order. */
  private dispatchWaiters(): void {
    if (this.waiters.length === 0) return;
    const now = this.ctx.clock.now();
    const remaining: Waiter[] = [];
    for (const w of this.waiters) {
      const d = route({ processes: this.routable(), maxConcurrency: this.app.maxConcurrentRequestsPerProcess, stickyId: w.stickyId });
      const proc = d.kind === "process" ? this.processes.find((p) => p.pid === d.id) : undefined;
      if (proc === undefined) {
        remaining.push(w);
        continue;
      }
      w.detach();
      w.resolve(proc.open(this.name, this, now));
    }
    this.waiters = remaining;
  }

  private rejectWaiters(e: Error): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) {
      w.detach();
      w.reject(e);
    }
  }

  // ---- Sessions ---------------------------------------------------------------

  /** What a pass depends on now (exchange/lease.ts asks when the head asked for one). */
  passView(): GroupPassView {
    const files = this.probe.view();
    const ready: string[] = [];
    const readyStickyIds: string[] = [];
    for (const p of this.processes) {
      if (p.state === "ready" && !p.suspect && !p.exhausted(this.app.maxRequests)) {
        ready.push(p.leaseId);
        readyStickyIds.push(p.stickyId);
      }
    }
    return {
      queueLength: this.waiters.length,
      restarting: this.restarting,
      alwaysRestart: files.alwaysRestart,
      restartFile: files.restartFile,
      restartMtimeNs: files.restartMtimeNs,
      ready,
      readyStickyIds,
    };
  }

  onLeased(withPass: boolean): void {
    this.totals.leases++;
    if (withPass) this.totals.passes++;
  }

  onSessionUpgraded(proc: PoolProcess, session: PoolSession): void {
    proc.upgradedSession(session, this.ctx.clock.now());
    if (proc.state === "draining" && this.app.abortWebsocketsOnProcessShutdown) {
      session.abortGone(new AppCrashedError(`Cannot keep the upgraded connection to process ${proc.pid}: it is shutting down`));
    }
    this.maybeStop(proc);
    this.schedule();
  }

  onSessionReleased(proc: PoolProcess, session: PoolSession, outcome: SessionOutcome): void {
    proc.closed(session, session.wasUpgraded, this.ctx.clock.now(), outcome !== "stale");
    if (outcome === "app_error") proc.watchErrored(session);
    if (proc.state === "ready") {
      if (outcome === "timeout") this.retire(proc, "a request exceeded the max request time");
      else if (outcome === "app_error") this.probeLiveness(proc);
      if (proc.state === "ready" && this.app.maxRequests > 0 && proc.processed >= this.app.maxRequests) {
        this.retire(proc, `it handled ${proc.processed} requests (max requests ${this.app.maxRequests})`);
      }
    }
    this.maybeStop(proc);
    if (proc.inFlight === 0 && proc.upgraded === 0) this.ctx.capacityChanged();
    this.schedule();
  }

  /**
   * After an app_error: no new requests go to the process until its socket
   * answers a connection (a retried checkout goes elsewhere or waits); detach
   * it if the socket no longer accepts connections.
   */
  private probeLiveness(proc: PoolProcess): void {
    if (proc.suspect) return;
    proc.suspect = true;
    const a = proc.address;
    let done = false;
    const finish = (ok: boolean, why: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      proc.suspect = false;
      // A live socket: the failed request was the app's own problem. A dead
      // one: keep signalling processGone to those sessions until the exit.
      if (ok) proc.forgetErrored();
      if (!ok && proc.state === "ready") this.retire(proc, `its socket is unreachable (${why})`);
      this.schedule();
    };
    const timer = setTimeout(() => finish(false, `no connection within ${LIVENESS_PROBE_MS} ms`), LIVENESS_PROBE_MS);
    timer.unref();
    let sock: Socket;
    if (a.kind === "unix") {
      // Checks who listens: a socket swapped for a symlink to someone else's is not "alive" (issue 4).
      sock = connectAppSocket(a.path, (e) => finish(e === null, e?.message ?? ""));
    } else {
      sock = connect({ host: a.host, port: a.port });
      sock.once("connect", () => finish(true, ""));
      sock.once("error", (e) => finish(false, e.message));
    }
  }

  // ---- Update loop --------------------------------------------------------------

  /** Re-evaluate soon (coalesced in a microtask; avoids re-entrancy). */
  schedule(): void {
    if (this.updateScheduled || this.closed) return;
    this.updateScheduled = true;
    queueMicrotask(() => {
      this.updateScheduled = false;
      this.update();
    });
  }

  private update(): void {
    if (this.closed) return;
    this.dispatchWaiters();
    if (this.restarting && !this.processes.some((p) => p.state === "ready" && p.generation < this.restartGen)) {
      this.restarting = false;
      this.log.info("Rolling restart complete");
    }
    this.maybeSpawn();
  }

  private scalingProcesses(): ScalingProcess[] {
    return this.processes
      .filter((p) => p.state === "ready")
      .map((p) => ({
        id: p.pid,
        inFlight: p.totalInFlight,
        upgraded: p.totalUpgraded,
        busySince: p.busySince,
        reportsLoop: p.spawned.onLoopReport !== undefined,
        loop: p.loop === null ? undefined : { elu: p.loop.elu, peakInFlight: p.loopPeakInFlight, at: p.loop.at },
        lastUsedAt: p.lastUsedAt,
        stale: p.generation < this.restartGen,
      }));
  }

  private maybeSpawn(): void {
    const server = this.ctx.server();
    for (let i = 0; i < 64; i++) {
      const now = this.ctx.clock.now();
      const d = shouldSpawn(
        {
          processes: this.scalingProcesses(),
          spawning: this.spawningCount,
          queueLength: this.waiters.length,
          restarting: this.restarting,
          minInstances: this.app.minInstances,
          maxInstances: effectiveMaxInstances(this.app.maxInstancesPerApp, server.maxInstancesPerApp),
          maxConcurrency: this.app.maxConcurrentRequestsPerProcess,
          poolRoom: this.ctx.poolRoom(),
          notBefore: this.notBefore,
        },
        now,
      );
      if (d.kind === "hold") {
        if (d.recheckAt !== undefined) this.armRecheck(d.recheckAt);
        return;
      }
      if (d.needsRoom) {
        // Background top-ups to minInstances never evict other apps' processes
        // (unless requests are waiting for this group).
        if (d.reason === "min" && this.waiters.length === 0) return;
        // Otherwise evict another app's idle process, or wait for capacityChanged();
        // a rolling restart may exceed the pool by the one process it spawns.
        if (!this.ctx.freeCapacity(this) && d.reason !== "restart") return;
      }
      this.startSpawn(d.reason);
    }
  }

  private armRecheck(at: number): void {
    if (this.recheckTimer !== null && this.recheckAt <= at && this.recheckAt > this.ctx.clock.now()) return;
    if (this.recheckTimer !== null) clearTimeout(this.recheckTimer);
    this.recheckAt = at;
    this.recheckTimer = setTimeout(() => {
      this.recheckTimer = null;
      this.schedule();
    }, Math.max(1, at - this.ctx.clock.now()));
    this.recheckTimer.unref();
  }

  // ---- Spawning ---------------------------------------------------------------------

  private startSpawn(reason: SpawnReason): void {
    this.spawningCount++;
    const gen = this.restartGen;
    const app = this.app;
    const optionsGen = this.appGeneration;
    const timeout = AbortSignal.timeout(timerDelay(app.startTimeoutMs));
    const signal = AbortSignal.any([this.ctx.shutdownSignal, timeout]);
    this.log.info({ reason, generation: gen }, "Spawning a process");
    let release: (() => void) | undefined;
    let startedAt = 0;
    const p = this.ctx.spawnSlot(reason === "restart", signal)
      .then((r) => {
        release = r;
        startedAt = this.ctx.clock.now();
        return this.ctx.spawner.spawn({ app, server: this.ctx.server(), signal });
      })
      .then(
        (sp) => this.onSpawned(sp, gen, reason, startedAt),
        (e: unknown) => this.onSpawnFailed(e, timeout.aborted, app, optionsGen),
      )
      .catch((e: unknown) => this.log.error({ err: e }, "Cannot finish a spawn: internal error"))
      .finally(() => {
        release?.();
        this.spawns.delete(p);
      });
    this.spawns.add(p);
  }

  /** Settles when every spawn in progress has settled. */
  async spawnsSettled(): Promise<void> {
    await Promise.allSettled([...this.spawns]);
  }

  private onSpawned(sp: SpawnedProcess, gen: number, reason: SpawnReason, startedAt: number): void {
    this.spawningCount--;
    const now = this.ctx.clock.now();
    this.totals.spawns++;
    this.ctx.observer.spawned(this.name, Math.max(0, now - startedAt) / 1000);
    if (this.closed) {
      this.log.info({ pid: sp.pid }, "Stopping a process spawned during shutdown");
      sp.kill();
      return;
    }
    const taken = new Set(this.processes.map((p) => p.stickyId));
    const proc = new PoolProcess(sp, newStickyId(taken, () => this.ctx.randomStickyId()), gen, this.log.child({ pid: sp.pid }), now);
    this.processes.push(proc);
    this.lastError = null;
    this.spawnFailures = 0;
    this.failFast = false;
    this.notBefore = 0;
    proc.log.info({ reason, stickyId: proc.stickyId }, "Process spawned");
    sp.onRequests?.((r) => {
      // A process's last report (what it finished, the error pages it answered as it exited) may be
      // read after its exit: those requests are still counted and their error ids still logged.
      if (proc.state !== "dead") this.onDirectRequests(proc, r);
      else this.recordFinished(proc, r);
    });
    sp.onLoopReport?.((r) => {
      if (proc.state === "dead") return;
      proc.recordLoop(r, this.ctx.clock.now());
      this.schedule();
    });
    void sp.exited.then(
      (exit) => this.onExit(proc, exit),
      () => this.onExit(proc, { code: null, signal: null }),
    );
    this.ctx.sample(this, proc);
    if (this.restarting) {
      const stale = this.processes
        .filter((p) => p !== proc && p.state === "ready" && p.generation < this.restartGen)
        .sort((a, b) => a.generation - b.generation || a.inFlight - b.inFlight || a.startedAt - b.startedAt);
      const old = stale[0];
      if (old !== undefined) this.retire(old, "replaced by a rolling restart");
    }
    this.schedule();
  }

  private onSpawnFailed(e: unknown, timedOut: boolean, app: AppOptions, optionsGen: number): void {
    this.spawningCount--;
    if (this.closed || this.ctx.shutdownSignal.aborted) return;
    const err = toSpawnError(e, this.name, timedOut, app.startTimeoutMs);
    const now = this.ctx.clock.now();
    if (optionsGen < this.appGeneration && app !== this.app) {
      // Started with the options of an older configuration generation (e.g.
      // the old PassengerStartTimeout): its failure says nothing about the
      // current ones, so the waiting requests get a spawn with those instead.
      this.log.warn({ code: err.code, output: err.output }, `${err.message} (outdated options; retrying with the current ones)`);
      this.schedule();
      return;
    }
    this.spawnFailures++;
    this.totals.spawnFailures++;
    const backoff = spawnBackoffMs(this.spawnFailures);
    this.notBefore = now + backoff;
    this.failFast = true;
    this.lastError = { at: now, code: err.code, message: err.message, output: err.output };
    this.log.error({ logno: 301, code: err.code, step: err.step, output: err.output, retryInMs: backoff }, err.message);
    if (this.restarting) {
      this.restarting = false;
      this.log.error("Cannot complete the rolling restart: the new version failed to start; the old processes keep serving");
    }
    if (!this.processes.some((p) => p.state === "ready")) this.rejectWaiters(err);
    this.schedule();
  }

  // ---- Process lifecycle ---------------------------------------------------------------

  private onExit(proc: PoolProcess, exit: ProcessExit): void {
    const expected = proc.state === "draining";
    proc.state = "dead";
    if (proc.killTimer !== null) clearTimeout(proc.killTimer);
    proc.killTimer = null;
    this.processes = this.processes.filter((p) => p !== proc);
    const how = exit.signal !== null ? `signal ${exit.signal}` : `code ${String(exit.code)}`;
    proc.abortAll(new AppCrashedError(`Cannot finish the request: app process ${proc.pid} exited (${how})`));
    const now = this.ctx.clock.now();
    const unexpected = !expected && !this.closed;
    this.lastExit = { at: now, pid: proc.pid, code: exit.code, signal: exit.signal, unexpected, reason: unexpected ? (exit.signal !== null ? `signal ${exit.signal}` : `exit code ${String(exit.code)}`) : proc.retireReason || "shutdown" };
    if (unexpected) {
      this.totals.crashes++;
      this.crashReasons[this.lastExit.reason] = (this.crashReasons[this.lastExit.reason] ?? 0) + 1;
    }
    if (!unexpected) {
      proc.log.info({ code: exit.code, signal: exit.signal }, "Process exited");
    } else {
      const uptime = now - proc.startedAt;
      this.crashStreak = uptime < QUICK_CRASH_MS ? this.crashStreak + 1 : 0;
      const delay = crashRespawnDelayMs(this.crashStreak);
      if (delay > 0) this.notBefore = Math.max(this.notBefore, now + delay);
      proc.log.warn({ logno: 302, code: exit.code, signal: exit.signal, uptimeMs: uptime, respawnDelayMs: delay }, "Process exited unexpectedly");
    }
    this.ctx.capacityChanged();
    this.schedule();
  }

  /** Stop routing to a process; it shuts down once its requests are done. */
  retire(proc: PoolProcess, reason: string): void {
    if (proc.state !== "ready") return;
    proc.state = "draining";
    proc.retireReason = reason;
    proc.log.info({ inFlight: proc.inFlight, upgraded: proc.upgraded }, `Retiring process: ${reason}`);
    this.maybeStop(proc);
    this.ctx.capacityChanged();
    this.schedule();
  }

  /** A draining process with nothing left to wait for gets shutdown(), then SIGKILL after the deadline. */
  private maybeStop(proc: PoolProcess): void {
    if (proc.state !== "draining" || proc.shutdownSent || proc.inFlight > 0) return;
    const abortWs = this.app.abortWebsocketsOnProcessShutdown || this.closed;
    // abort_websockets_on_process_shutdown off: wait for them, handed-off ones included (the app's own).
    if (proc.totalUpgraded > 0 && !abortWs) return;
    proc.shutdownSent = true;
    if (proc.upgraded > 0) proc.abortUpgraded(new AppCrashedError(`Cannot keep the upgraded connection to process ${proc.pid}: it is shutting down`));
    proc.spawned.shutdown();
    const ms = this.ctx.server().processShutdownTimeoutMs;
    proc.killTimer = setTimeout(() => {
      proc.killTimer = null;
      if (proc.state === "dead") return;
      proc.log.warn(`Process did not exit within ${ms} ms of the shutdown request; killing it`);
      proc.spawned.kill();
    }, ms);
    proc.killTimer.unref();
  }

  /** A rolling restart: new processes first, each one ready replaces a stale one. Coalesces. */
  requestRestart(reason: string): void {
    if (this.closed) return;
    this.restartGen++;
    // A new version deserves a fresh try even if the last spawn failed (also
    // when no process is left to replace: the admin may just have fixed the
    // failing start), but always_restart.txt (a restart per request) must not
    // defeat the backoff.
    if (reason !== "always_restart.txt") {
      this.notBefore = 0;
      this.failFast = false;
      this.spawnFailures = 0;
    }
    const stale = this.processes.filter((p) => p.state === "ready").length;
    if (stale === 0) {
      this.log.info({ reason }, "Restart requested: no process to replace");
      this.schedule();
      return;
    }
    if (this.restarting) this.log.info({ reason }, "Restart requested while one is running: coalesced");
    else this.log.info({ reason, processes: stale }, "Rolling restart");
    this.restarting = true;
    this.schedule();
  }

  /** New options (redeploy, or the first request of a new config generation). */
  setOptions(app: AppOptions, generation: number): void {
    this.app = app;
    this.appGeneration = generation;
    this.probe.setDirectory(app.appRoot, app.restartDir);
    this.schedule();
  }

  // ---- Health checks that heal (docs/health.md) -------------------------------------------------

  /** Pool tick: replace ready processes that are unhealthy; start the HTTP checks that are due. */
  checkHealth(now: number): void {
    if (this.closed) return;
    const server = this.ctx.server();
    const path = server.healthCheckPath ?? "";
    const limits = {
      eventLoopTimeoutMs: server.healthCheckEventLoopTimeoutMs ?? 30_000,
      maxFailures: path === "" ? 0 : Math.max(1, server.healthCheckFailures ?? 3),
    };
    for (const p of [...this.processes]) {
      if (p.state !== "ready") continue;
      const bad = unhealthy({ loopAt: p.loop?.at ?? null, failures: p.healthFailures, lastFailure: p.lastHealthFailure }, limits, now);
      if (bad !== null) {
        this.replaceUnhealthy(p, bad);
        continue;
      }
      if (path === "" || p.healthChecking || now < p.nextHealthCheckAt) continue;
      p.healthChecking = true;
      const interval = Math.max(100, server.healthCheckIntervalMs ?? 10_000);
      void probeHealth(p.address, path, Math.max(100, server.healthCheckTimeoutMs ?? 5_000)).then((why) => {
        p.healthChecking = false;
        p.nextHealthCheckAt = this.ctx.clock.now() + interval;
        if (p.state !== "ready") return;
        if (why === null) {
          if (p.healthFailures > 0) p.log.info({ failures: p.healthFailures }, "Health check passes again");
          p.healthFailures = 0;
          p.lastHealthFailure = "";
          return;
        }
        p.healthFailures++;
        p.lastHealthFailure = why;
        p.log.warn({ logno: 307, failures: p.healthFailures, limit: limits.maxFailures }, `Health check failed: ${why}`);
        this.checkHealth(this.ctx.clock.now());
      });
    }
  }

  /**
   * Take an unhealthy process out of rotation at once: no new requests, its
   * in-flight requests get their errors now (processGone), it is killed (a
   * stuck loop cannot shut down gracefully) and replaced like any retired one.
   */
  private replaceUnhealthy(proc: PoolProcess, bad: Unhealthy): void {
    if (proc.state !== "ready") return;
    proc.state = "draining";
    proc.unhealthyReason = bad.why;
    proc.retireReason = `unhealthy: ${bad.why}`;
    proc.shutdownSent = true; // it stays in the process table until it exits
    this.unhealthyCounts[bad.kind] = (this.unhealthyCounts[bad.kind] ?? 0) + 1;
    proc.log.error({ logno: 303, reason: bad.kind, inFlight: proc.inFlight, upgraded: proc.upgraded }, `Process taken out of rotation and replaced: ${bad.why}`);
    proc.abortAll(new AppCrashedError(`Cannot finish the request: app process ${proc.pid} was taken out of rotation (${bad.why})`));
    proc.spawned.kill();
    this.ctx.capacityChanged();
    this.schedule();
  }

  // ---- Pool-driven maintenance -----------------------------------------------------------------

  /** Retire processes idle for the pool idle time, above minInstances. */
  collectIdle(idleTimeMs: number, now: number): void {
    const ids = idleProcessesToRetire(this.scalingProcesses(), { idleTimeMs, minInstances: this.app.minInstances }, now);
    for (const id of ids) {
      const p = this.processes.find((x) => x.pid === id);
      if (p !== undefined) this.retire(p, `idle for ${Math.round((now - p.lastUsedAt) / 1000)} s`);
    }
  }

  /** Retire a process by pid (eviction, pool limit); false when not found or not ready. */
  retireByPid(pid: number, reason: string): boolean {
    const p = this.processes.find((x) => x.pid === pid && x.state === "ready");
    if (p === undefined) return false;
    this.retire(p, reason);
    return true;
  }

  /** Record a CPU/RSS sample; enforce PassengerMemoryLimit. */
  applySample(proc: PoolProcess, cpuPercent: number | null, rssBytes: number): void {
    if (cpuPercent !== null) proc.cpuPercent = cpuPercent;
    proc.rssBytes = rssBytes;
    const limitMB = this.app.memoryLimitMB;
    if (limitMB > 0 && proc.state === "ready" && rssBytes > limitMB * 1024 * 1024) {
      proc.log.warn({ rssBytes, memoryLimitMB: limitMB }, "Process exceeds the memory limit");
      this.retire(proc, `it uses ${Math.round(rssBytes / 1048576)} MB, over the memory limit of ${limitMB} MB`);
    }
  }

  /** Live processes (ready and draining). */
  get live(): readonly PoolProcess[] {
    return this.processes;
  }

  get accepting(): readonly PoolProcess[] {
    return this.processes.filter((p) => p.state === "ready");
  }

  get spawning(): number {
    return this.spawningCount;
  }

  get queueLength(): number {
    return this.waiters.length;
  }

  /** Stop everything: reject waiters, retire every process (each stops once its requests finish). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.recheckTimer !== null) clearTimeout(this.recheckTimer);
    this.recheckTimer = null;
    this.rejectWaiters(new PoolShutdownError(`Cannot check out a process of "${this.name}": the pool is shutting down`));
    for (const p of this.processes) {
      if (p.state === "ready") {
        p.state = "draining";
        p.retireReason = "shutdown";
      }
      this.maybeStop(p);
    }
  }

  /** SIGKILL every live process (shutdown deadline passed). */
  killAll(): void {
    for (const p of this.processes) {
      p.log.warn("Killing process: shutdown deadline passed");
      p.spawned.kill();
    }
  }

  /** Resolves when every process has exited. */
  async exited(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.spawned.exited.catch(() => undefined)));
  }

  status(): GroupStatus {
    return {
      name: this.name,
      appRoot: this.app.appRoot,
      appEnv: this.app.appEnv,
      queueLength: this.waiters.length,
      spawning: this.spawningCount,
      restarting: this.restarting,
      lastError: this.lastError,
      restartGeneration: this.restartGen,
      spawns: this.totals.spawns,
      spawnFailures: this.totals.spawnFailures,
      crashes: this.totals.crashes,
      crashReasons: { ...this.crashReasons },
      queueOverflows: this.totals.queueOverflows,
      leases: this.totals.leases,
      passes: this.totals.passes,
      directRequests: this.totals.directRequests,
      unhealthy: { ...this.unhealthyCounts },
      lastExit: this.lastExit,
      processes: this.processes.map((p) => p.status()),
    };
  }
}

function toSpawnError(e: unknown, name: string, timedOut: boolean, timeoutMs: number): SpawnError {
  if (e instanceof SpawnError) return e;
  if (timedOut) {
    return new SpawnError(`Cannot spawn app "${name}": not ready after ${timeoutMs} ms`, { timeout: true, step: "start" }, { cause: e });
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new SpawnError(`Cannot spawn app "${name}": ${msg}`, {}, { cause: e });
}
