/**
 * The one request path of the core, for both front ends (mod_ferry frames and
 * the standalone HTTP server): sticky id → checkout → forward the request to
 * the app over HTTP/1.1 → relay the response → release the session once.
 *
 *   Step one   pick the sticky id from the Cookie header (when sticky sessions are on)
 *   Step two   check out a session (waits in the group's bounded queue; 503/500 on failure)
 *   Step three send the request head and stream the body with backpressure
 *   Step four  relay the response head (+ X-Powered-By, sticky Set-Cookie) and stream the body
 *
 * Errors before the response head went out become an error page (error-page.ts);
 * after it, the client connection is cut (`ex.abort`). Upgrade requests go to tunnel.ts.
 */
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import { type FerryError, toFerryError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Session, SessionOutcome } from "../pool/session.js";
import { type AppAgents, oneShotClient } from "./app-agents.js";
import type { Exchange } from "./exchange.js";
import {
  CONNECT_CODES, Cancellation, MAX_CHECKOUT_TRIES, RETRY_SETTLE_MS, RetryCheckout, appError, errCode, newRequestId, outcomeOf,
  sendError, settleAfterConnectFailure, settleBrokenConnection,
  type CheckoutOptions, type RequestContext, type RequestDeps,
} from "./exchange-context.js";
import { addedResponseHeaders, appRequestHeaders, clientResponseHeaders, stickyIdFromCookies } from "./forwarding.js";
import { forwardNodeHttp } from "./forward-http.js";
import { tunnelExchange } from "./tunnel.js";
import { leaseExchange, takesDirectPath } from "./lease.js";

export type { CheckoutOptions, RequestDeps, SessionSource } from "./exchange-context.js";

/** Handle one exchange to completion. Never rejects. */
export async function handleExchange(ex: Exchange, deps: RequestDeps): Promise<void> {
  const ctx = lazyContext(ex, deps);
  try {
    // Step one: sticky id.
    const stickyId = ex.app.stickySessions
      ? stickyIdFromCookies(ex.head.headers, ex.app.stickySessionsCookieName)
      : undefined;
    // Shared affinity: a session owned by another host is served there (affinity/service.ts).
    if (stickyId !== undefined && deps.affinity !== undefined && await deps.affinity.forward(ex, stickyId)) return;

    for (let attempt = 1; ; attempt++) {
      // Step two: checkout.
      let session: Session;
      try {
        const opts: CheckoutOptions = { signal: ex.signal };
        if (stickyId !== undefined) opts.stickyId = stickyId;
        if (deps.generation !== undefined) opts.generation = deps.generation;
        session = await deps.pool.checkout(ex.app, opts);
        if (deps.affinity !== undefined) await deps.affinity.served(ex.app, session);
      } catch (e: unknown) {
        if (ex.signal.aborted) {
          ctx.log.debug("client went away while waiting for a process");
          return;
        }
        sendError(ctx, toFerryError(e));
        return;
      }

      // Steps three and four. A process that cannot be connected to (it is exiting and
      // the pool has not seen the exit yet) costs another checkout, not a 502.
      const allowRetry = attempt < MAX_CHECKOUT_TRIES;
      let outcome: SessionOutcome = "app_error";
      let retry: RetryCheckout | undefined;
      try {
        // The direct path (v3 module connections): the module talks to the app itself.
        if (takesDirectPath(ex.lease, ex.app)) {
          const leased = await leaseExchange(ctx, ex.lease, session, allowRetry);
          if (leased !== "relay") {
            outcome = leased;
            return; // released in finally
          }
        }
        outcome = ex.head.upgrade ? await tunnelExchange(ctx, session, allowRetry)
          : ex.head.uri.startsWith("/") ? await forward(ctx, session, allowRetry)
          : await forwardNodeHttp(ctx, session, allowRetry); // e.g. OPTIONS *, which undici cannot send
      } catch (e: unknown) {
        if (!(e instanceof RetryCheckout)) throw e;
        retry = e;
      } finally {
        session.release(outcome);
      }
      if (retry === undefined) return;
      ctx.log.warn({ pid: session.pid, attempt }, `${retry.message}; checking out another process`);
      deps.agents?.forget(session.address);
      await settleAfterConnectFailure(session, ex.signal, RETRY_SETTLE_MS);
      if (ex.signal.aborted) return;
    }
  } catch (e: unknown) {
    ctx.log.error({ err: e }, "Cannot handle request: unexpected error");
    try {
      ex.abort("FERRY_ERR_INTERNAL", "Internal error");
    } catch {
      // nothing more to do
    }
  }
}

/**
 * The request's context. The request id and its pino child logger are made on
 * first use only: most requests log nothing, and a child logger per request
 * is a measurable share of the hot path.
 */
function lazyContext(ex: Exchange, deps: RequestDeps): RequestContext {
  let reqId: string | undefined;
  let log: Logger | undefined;
  const id = (): string => (reqId ??= newRequestId());
  return {
    ex,
    deps,
    get reqId(): string {
      return id();
    },
    get log(): Logger {
      return (log ??= deps.log.child({ reqId: id(), app: ex.app.appGroupName }));
    },
  };
}

/**
 * The client's body as undici reads it: only once the app is connected, with
 * backpressure (undici awaits the socket's drain between chunks). Stopping
 * early (the app answered without reading it all) leaves the client's stream
 * to its front end instead of destroying it mid-response.
 */
async function* bodyChunks(body: Readable): AsyncGenerator<Buffer> {
  for await (const chunk of body.iterator({ destroyOnReturn: false })) {
    yield typeof chunk === "string" ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
  }
}

/**
 * Relays one app response to the exchange as undici hands it over (head, body
 * chunks with backpressure, end) and settles `done` once: resolved when the
 * response is complete, rejected with the failure or the cancellation reason.
 */
class Relay implements Dispatcher.DispatchHandlers {
  /** A connection to the app was established and the request is being written. */
  connected = false;
  headSent = false;
  readonly done: Promise<void>;
  #resolve: () => void = () => undefined;
  #reject: (e: unknown) => void = () => undefined;
  #settled = false;
  #abort: ((e?: Error) => void) | undefined;
  #cancelled: FerryError | undefined;
  #resume: (() => void) | undefined;

  constructor(private readonly ctx: RequestContext, private readonly session: Session, private readonly cancelWatch: Cancellation) {
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.done.catch(() => undefined);
  }

  /** Stop the exchange with the app (cancellation, or a failure on our side). */
  cancel(e: FerryError): void {
    this.#cancelled ??= e;
    this.#settle(e);
    this.#abort?.(e);
  }

  /** Cut the app request if it is still running (no-op once complete). */
  abort(): void {
    this.#abort?.(new Error("request ended"));
  }

  onConnect(abort: (e?: Error) => void): void {
    this.connected = true;
    this.#abort = abort;
    if (this.#cancelled !== undefined) abort(this.#cancelled);
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (status < 200) return true; // 1xx: informational, not relayed
    if (this.#settled) return false;
    const { ex } = this.ctx;
    const strs: string[] = new Array<string>(raw.length);
    for (let i = 0; i < raw.length; i++) strs[i] = raw[i]?.toString("latin1") ?? "";
    const out = clientResponseHeaders(status, strs);
    out.push(...addedResponseHeaders(ex.app, this.session.stickyId, ex.head.https));
    this.#resume = resume;
    try {
      ex.writeHead(status, out);
    } catch (e: unknown) {
      return this.#fail(e);
    }
    this.headSent = true;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#settled) return false;
    try {
      if (this.ctx.ex.write(chunk)) return true;
    } catch (e: unknown) {
      return this.#fail(e);
    }
    this.cancelWatch.drain(this.ctx.ex).then(() => {
      if (!this.#settled) this.#resume?.();
    }, (e: unknown) => this.#fail(e));
    return false;
  }

  /** A failure on our side while relaying: settle with it and cut the app request. */
  #fail(e: unknown): false {
    this.#settle(e);
    this.#abort?.(e instanceof Error ? e : new Error(String(e)));
    return false;
  }

  onComplete(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve();
  }

  onError(e: Error): void {
    this.#settle(e);
  }

  #settle(e: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(e);
  }
}

/** Forward a plain (non-upgrade) exchange and relay the answer; returns how it ended. */
async function forward(ctx: RequestContext, session: Session, allowRetry: boolean): Promise<SessionOutcome> {
  const { ex, deps } = ctx;
  const cancel = new Cancellation(ex, session, ex.app);
  const relay = new Relay(ctx, session, cancel);
  cancel.onCancel((e) => relay.cancel(e));
  const oneShot = deps.agents === undefined ? oneShotClient(session.address) : undefined;
  let ok = false;
  try {
    // Step three: send the request; undici reads the body from the client only once the
    // app is connected. (A failure on a reused keep-alive connection is not retried: the
    // app may have received the request. Idle connections are dropped before the app's
    // keep-alive timeout, see app-agents.ts.)
    if (cancel.reason === undefined) {
      const dispatcher: Dispatcher = oneShot ?? (deps.agents as AppAgents).get(session.address);
      const opts: Dispatcher.DispatchOptions = {
        method: ex.head.method as Dispatcher.HttpMethod, // any token method goes through (validated by undici)
        path: ex.head.uri,
        headers: undiciHeaders(appRequestHeaders(ex.head)),
        headersTimeout: 0,
        bodyTimeout: 0,
        reset: oneShot !== undefined,
      };
      // undici takes async iterables as bodies (lib/core/request.js); its types only list streams.
      if (ex.head.hasBody) Reflect.set(opts, "body", bodyChunks(ex.body));
      dispatcher.dispatch(opts, relay);
    }
    try {
      await relay.done;
    } catch (e: unknown) {
      if (allowRetry && cancel.reason === undefined && !relay.connected && CONNECT_CODES.has(errCode(e))) {
        throw new RetryCheckout(appError(e, session, "connect"));
      }
      throw e;
    }
    // Step four happened in Relay: head, then the body with backpressure.
    if (cancel.reason !== undefined) throw cancel.reason;
    ex.end();
    ok = true;
    return "ok";
  } catch (e: unknown) {
    if (e instanceof RetryCheckout) throw e;
    const headSent = relay.headSent;
    const phase = headSent ? "relay response" : "send request";
    const err = cancel.reason ?? await settleBrokenConnection(ctx, session, appError(e, session, phase), phase);
    relay.abort();
    if (err.code === "FERRY_ERR_ABORTED") {
      if (headSent) ex.abort(err.code, err.message);
      return "client_aborted";
    }
    sendError(ctx, err, headSent);
    return outcomeOf(err);
  } finally {
    cancel.dispose();
    if (oneShot !== undefined) {
      (ok ? oneShot.close() : oneShot.destroy()).catch(() => undefined);
    }
  }
}

/** undici frames the body itself (chunked when the length is unknown) and refuses a Transfer-Encoding header. */
function undiciHeaders(headers: string[]): string[] {
  const n = headers.length;
  if (n >= 2 && headers[n - 2] === "Transfer-Encoding") headers.length = n - 2;
  return headers;
}
