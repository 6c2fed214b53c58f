/**
 * What the request path (request.ts) and the Upgrade tunnel (tunnel.ts) share:
 * the per-request context, error classification and error responses, and the
 * watcher of the ways an exchange is cut short.
 */
import { readCustomErrorPage } from "./custom-error-page.js";
import { randomUUID } from "node:crypto";
import type { ClientRequest } from "node:http";
import type { AppOptions } from "../config/schema.js";
import {
  AbortedError, AppConnectError, AppCrashedError, AppResponseError, AppTimeoutError, FerryError,
} from "../errors.js";
import type { Logger } from "../log.js";
import type { Session, SessionOutcome } from "../pool/session.js";
import { timerDelay } from "../util/clock.js";
import type { AppAgents } from "./relay/app-agents.js";
import type { Exchange } from "./exchange.js";
import { newErrorId, renderErrorPage } from "./error-page.js";
import { crashMessage, maxRequestTimeMessage } from "../loader/messages.js";
import { poweredBy } from "./headers.js";

/**
 * Shared session affinity (affinity/service.ts implements it): the request
 * path asks it before a checkout and tells it after one.
 */
export interface AffinityHook {
  /**
   * Before checkout, for a request carrying a valid sticky id: true when the
   * exchange was served by the owning peer (complete), false to serve it
   * locally (nothing of it was consumed). Never rejects.
   */
  forward(ex: Exchange, stickyId: string): Promise<boolean>;
  /** After a local checkout: pin the process to this node (awaits the store within its budget). Never rejects. */
  served(ex: Exchange, session: Session): Promise<void>;
}

export interface CheckoutOptions {
  stickyId?: string;
  signal?: AbortSignal;
  generation?: number;
}

/** What the request path needs of the pool (pool/pool.ts's Pool satisfies it). */
export interface SessionSource {
  checkout(app: AppOptions, opts: CheckoutOptions): Promise<Session>;
}

export interface RequestDeps {
  readonly pool: SessionSource;
  readonly log: Logger;
  /** Configuration generation the front end saw (module mode); passed to checkout. */
  readonly generation?: number;
  /**
   * Keep-alive agents towards app processes; share one per core. Without it
   * each request opens a new connection to the app (Passenger's behaviour).
   */
  readonly agents?: AppAgents;
  /**
   * Shared session affinity across hosts (docs/affinity.md): forwards a request
   * whose sticky session another host owns, pins locally served ones.
   */
  readonly affinity?: AffinityHook;
}

/** Per-request context shared with tunnel.ts. */
export interface RequestContext {
  readonly ex: Exchange;
  readonly deps: RequestDeps;
  readonly log: Logger;
  readonly reqId: string;
}

/** Send an error response before any head went out (error page), or cut the connection. */
export function sendError(ctx: RequestContext, err: FerryError, headSent = false): void {
  const { ex, log } = ctx;
  if (err.code === "FERRY_ERR_ABORTED" || ex.signal.aborted) {
    if (headSent) ex.abort(err.code, err.message);
    return;
  }
  const errorId = newErrorId();
  const fields = { errorId, code: err.code, status: err.httpStatus, appRoot: ex.app.appRoot, method: ex.head.method, uri: ex.head.uri };
  if (err.code === "FERRY_ERR_SPAWN" || err.code === "FERRY_ERR_SPAWN_TIMEOUT") {
    log.error(fields, `Could not spawn process for application ${ex.app.appRoot}: ${err.message} Error ID: ${errorId}`);
  } else if (err.code === "FERRY_ERR_QUEUE_FULL" || err.code === "FERRY_ERR_QUEUE_TIMEOUT" || err.code === "FERRY_ERR_POOL_SHUTDOWN") {
    log.warn(fields, `${err.message} Error ID: ${errorId}`);
  } else {
    log.error(fields, `${err.message} Error ID: ${errorId}`);
  }
  if (headSent) {
    ex.abort(err.code, err.message);
    return;
  }
  const customPage = ex.app.customErrorPage !== "" && !ex.app.friendlyErrorPages ? readCustomErrorPage(ex.app.customErrorPage, log) : undefined;
  const page = renderErrorPage({
    error: err, app: ex.app, errorId, requestHeaders: ex.head.headers, poweredBy: poweredBy(ex.app),
    ...(customPage !== undefined ? { customPage } : {}),
  });
  ex.writeHead(page.status, page.headers);
  if (ex.head.method !== "HEAD") ex.write(page.body);
  ex.end();
}

/** Codes of connection errors that mean "could not connect" rather than "broke mid-exchange". */
export const CONNECT_CODES = new Set([
  "ECONNREFUSED", "ENOENT", "EACCES", "ENOTSOCK", "EHOSTUNREACH", "ETIMEDOUT", "UND_ERR_CONNECT_TIMEOUT",
]);

export function errCode(e: unknown): string {
  if (typeof e === "object" && e !== null && "code" in e) {
    const c: unknown = (e as { code: unknown }).code;
    if (typeof c === "string") return c;
  }
  return "";
}

/** Classify an error from the app connection into the catalogue. */
export function appError(e: unknown, session: Session, phase: string): FerryError {
  if (e instanceof FerryError) return e;
  const code = errCode(e);
  const msg = e instanceof Error ? e.message : String(e);
  if (session.processGone.aborted) {
    return new AppCrashedError(`Cannot ${phase}: app process ${session.pid} exited`, { cause: e });
  }
  if (code === "UND_ERR_HEADERS_OVERFLOW" || code === "HPE_HEADER_OVERFLOW") {
    return new AppResponseError(`Cannot ${phase}: the response head of app process ${session.pid} is over 64 KiB`, { cause: e });
  }
  if (CONNECT_CODES.has(code)) {
    return new AppConnectError(`Cannot connect to app process ${session.pid}: ${code}`, { cause: e });
  }
  return new AppCrashedError(`Cannot ${phase}: connection to app process ${session.pid} broke (${code !== "" ? code : msg})`, { cause: e });
}

export function outcomeOf(err: FerryError): SessionOutcome {
  switch (err.code) {
    case "FERRY_ERR_APP_TIMEOUT": return "timeout";
    case "FERRY_ERR_ABORTED": return "client_aborted";
    default: return "app_error";
  }
}

/**
 * Watches the three ways an exchange is cut short (client gone, process gone,
 * PassengerMaxRequestTime) and calls `onCancel` once with the reason.
 */
export class Cancellation {
  #reason: FerryError | undefined;
  readonly #cleanups: Array<() => void> = [];
  #onCancel: ((e: FerryError) => void) | undefined;
  #wake: (() => void) | undefined;
  #cancelled: Promise<void> | undefined;

  constructor(ex: Exchange, session: Session, app: AppOptions) {
    const on = (signal: AbortSignal, make: () => FerryError): void => {
      if (signal.aborted) { this.cancel(make()); return; }
      const h = (): void => this.cancel(make());
      signal.addEventListener("abort", h, { once: true });
      this.#cleanups.push(() => signal.removeEventListener("abort", h));
    };
    on(ex.signal, () => new AbortedError("Cannot complete request: the client went away"));
    on(session.processGone, () => new AppCrashedError(crashMessage(session.pid)));
    if (app.maxRequestTimeMs > 0) {
      const t = setTimeout(() => this.cancel(new AppTimeoutError(maxRequestTimeMessage(session.pid, app.maxRequestTimeMs))), timerDelay(app.maxRequestTimeMs));
      this.#cleanups.push(() => clearTimeout(t));
    }
  }

  get reason(): FerryError | undefined {
    return this.#reason;
  }

  /**
   * Resolves when the exchange is cancelled (for racing waits that cancellation
   * must end). Made on first use: most exchanges never wait.
   */
  get cancelled(): Promise<void> {
    this.#cancelled ??= this.#reason !== undefined
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    return this.#cancelled;
  }

  /** Register the action; runs at once if already cancelled. */
  onCancel(fn: (e: FerryError) => void): void {
    this.#onCancel = fn;
    if (this.#reason !== undefined) fn(this.#reason);
  }

  cancel(e: FerryError): void {
    if (this.#reason !== undefined) return;
    this.#reason = e;
    this.#wake?.();
    this.#onCancel?.(e);
  }

  /** Wait for the client to drain, unless the exchange is cancelled first. */
  async drain(ex: Exchange): Promise<void> {
    if (this.#reason !== undefined) return;
    await Promise.race([ex.waitDrain(), this.cancelled]);
  }

  /** Stop watching (the exchange is over). */
  dispose(): void {
    for (const c of this.#cleanups.splice(0)) c();
    this.#onCancel = undefined;
  }
}

export function newRequestId(): string {
  return randomUUID().slice(0, 13).replace("-", "");
}

/** Checkouts tried per request when connecting to the process fails (Passenger tries up to 10). */
export const MAX_CHECKOUT_TRIES = 4;
/** Before another checkout, how long to wait for the pool to see the unreachable process exit. */
export const RETRY_SETTLE_MS = 250;

/**
 * Thrown by forward()/tunnelExchange() when the process could not be connected
 * to and nothing of the request was consumed: the caller releases the session
 * and checks out again (the process is most likely exiting).
 */
export class RetryCheckout extends Error {
  constructor(readonly reason: FerryError) {
    super(reason.message);
    this.name = "RetryCheckout";
  }
}

export interface ConnectTracker {
  /** The connection to the app was established. */
  readonly connected: () => boolean;
  /** Resolves true once connected, false if the request failed first. */
  readonly whenConnected: Promise<boolean>;
}

/** Follow whether a ClientRequest's socket got connected. */
export function trackConnect(req: ClientRequest): ConnectTracker {
  let connected = false;
  const whenConnected = new Promise<boolean>((resolve) => {
    req.once("socket", (s) => {
      if (!s.connecting) {
        connected = true;
        resolve(true);
        return;
      }
      s.once("connect", () => {
        connected = true;
        resolve(true);
      });
    });
    req.once("error", () => resolve(connected));
    req.once("close", () => resolve(connected));
  });
  return { connected: () => connected, whenConnected };
}

/** Whether a failure before any byte went to the app allows another checkout. */
export function isConnectFailure(e: unknown, tracker: ConnectTracker): boolean {
  return !tracker.connected() && CONNECT_CODES.has(errCode(e));
}

/** Resolve when the process is gone, the client went away, or after `ms`. */
export function settleAfterConnectFailure(session: Session, signal: AbortSignal, ms: number): Promise<void> {
  if (session.processGone.aborted || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      session.processGone.removeEventListener("abort", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    session.processGone.addEventListener("abort", done, { once: true });
    signal.addEventListener("abort", done, { once: true });
  });
}

/** How long a broken app connection waits for the pool to see the process exit. */
export const CRASH_SETTLE_MS = 1_000;

/**
 * After the app connection broke (not a timeout, not the client): give the pool
 * a moment to notice that the process is exiting before the client hears about
 * it, so a request the client sends right after the error is not routed to the
 * dying process. Returns the error to report (AppCrashedError once the process is gone).
 */
export async function settleBrokenConnection(ctx: RequestContext, session: Session, err: FerryError, phase: string): Promise<FerryError> {
  if (err.code === "FERRY_ERR_APP_TIMEOUT" || err.code === "FERRY_ERR_ABORTED" ||
    (err.code === "FERRY_ERR_APP_CRASHED" && session.processGone.aborted)) {
    return err;
  }
  await settleAfterConnectFailure(session, ctx.ex.signal, CRASH_SETTLE_MS);
  if (session.processGone.aborted && err.code !== "FERRY_ERR_APP_CRASHED") {
    return new AppCrashedError(`Cannot ${phase}: app process ${session.pid} exited`, { cause: err });
  }
  return err;
}
