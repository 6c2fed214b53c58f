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
import http from "node:http";
import type { Readable } from "node:stream";
import { AppResponseError, toFerryError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Session, SessionOutcome } from "../pool/session.js";
import { addressRequestOptions } from "./app-agents.js";
import type { Exchange } from "./exchange.js";
import {
  Cancellation, MAX_CHECKOUT_TRIES, RETRY_SETTLE_MS, RetryCheckout, appError, isConnectFailure, newRequestId, outcomeOf,
  sendError, settleAfterConnectFailure, settleBrokenConnection, trackConnect,
  type CheckoutOptions, type RequestContext, type RequestDeps,
} from "./exchange-context.js";
import { addedResponseHeaders, appRequestHeaders, clientResponseHeaders, stickyIdFromCookies } from "./forwarding.js";
import { tunnelExchange } from "./tunnel.js";

export type { CheckoutOptions, RequestDeps, SessionSource } from "./exchange-context.js";

/** Handle one exchange to completion. Never rejects. */
export async function handleExchange(ex: Exchange, deps: RequestDeps): Promise<void> {
  const ctx = lazyContext(ex, deps);
  try {
    // Step one: sticky id.
    const stickyId = ex.app.stickySessions
      ? stickyIdFromCookies(ex.head.headers, ex.app.stickySessionsCookieName)
      : undefined;

    for (let attempt = 1; ; attempt++) {
      // Step two: checkout.
      let session: Session;
      try {
        const opts: CheckoutOptions = { signal: ex.signal };
        if (stickyId !== undefined) opts.stickyId = stickyId;
        if (deps.generation !== undefined) opts.generation = deps.generation;
        session = await deps.pool.checkout(ex.app, opts);
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
        outcome = ex.head.upgrade ? await tunnelExchange(ctx, session, allowRetry) : await forward(ctx, session, allowRetry);
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

/** Wait until a writable drains, closes or errors. */
function drainOf(w: http.ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      w.off("drain", done);
      w.off("close", done);
      w.off("error", done);
      resolve();
    };
    w.on("drain", done);
    w.on("close", done);
    w.on("error", done);
  });
}

/**
 * Stream the client's body to the app request, pausing while the app is not
 * reading. Stopping early (the app answered without reading it all) leaves the
 * client's stream to its front end instead of destroying it mid-response.
 */
async function pumpBody(body: Readable, req: http.ClientRequest): Promise<void> {
  for await (const chunk of body.iterator({ destroyOnReturn: false })) {
    if (req.destroyed) return;
    const buf: Uint8Array = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
    if (!req.write(buf)) await drainOf(req);
  }
  if (!req.destroyed) req.end();
}

interface Sent {
  readonly req: http.ClientRequest;
  readonly response: Promise<http.IncomingMessage>;
}

function sendRequest(ctx: RequestContext, session: Session, headers: string[]): Sent {
  const { ex, deps } = ctx;
  const req = http.request({
    ...addressRequestOptions(session.address),
    agent: deps.agents !== undefined ? deps.agents.get(session.address) : false,
    method: ex.head.method,
    path: ex.head.uri,
    headers,
    setHost: false,
  });
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once("response", resolve);
    req.once("error", reject);
    req.once("upgrade", (res: http.IncomingMessage, socket) => {
      socket.destroy();
      res.destroy();
      reject(new AppResponseError(`Cannot relay response: app process ${session.pid} switched protocols on a request that did not ask to`));
    });
  });
  response.catch(() => undefined);
  return { req, response };
}

/** Forward a plain (non-upgrade) exchange and relay the answer; returns how it ended. */
async function forward(ctx: RequestContext, session: Session, allowRetry: boolean): Promise<SessionOutcome> {
  const { ex, deps } = ctx;
  const cancel = new Cancellation(ex, session, ex.app);
  const headers = appRequestHeaders(ex.head);
  let headSent = false;
  let current: http.ClientRequest | undefined;
  let currentRes: http.IncomingMessage | undefined;
  cancel.onCancel((e) => {
    current?.destroy(e);
    currentRes?.destroy(e);
  });
  try {
    // Step three: send the request; the body is read from the client only once the app
    // is connected. (A failure on a reused keep-alive connection is not retried: the app
    // may have received the request. Idle connections are dropped before the app's
    // keep-alive timeout, see app-agents.ts.)
    const sent = sendRequest(ctx, session, headers);
    const conn = trackConnect(sent.req);
    current = sent.req;
    if (cancel.reason !== undefined) sent.req.destroy(cancel.reason);
    if (ex.head.hasBody) {
      void conn.whenConnected.then((ok) => {
        if (!ok) return;
        pumpBody(ex.body, sent.req).catch((e: unknown) => {
          if (!sent.req.destroyed) sent.req.destroy(e instanceof Error ? e : new Error(String(e)));
        });
      });
    } else {
      sent.req.end();
    }
    let res: http.IncomingMessage;
    try {
      res = await sent.response;
    } catch (e: unknown) {
      if (allowRetry && cancel.reason === undefined && isConnectFailure(e, conn)) {
        throw new RetryCheckout(appError(e, session, "connect"));
      }
      throw e;
    }
    currentRes = res;
    if (cancel.reason !== undefined) throw cancel.reason;

    // Step four: relay the head, then the body with backpressure.
    const status = res.statusCode ?? 502;
    const out = clientResponseHeaders(status, res.rawHeaders);
    out.push(...addedResponseHeaders(ex.app, session.stickyId, ex.head.https));
    ex.writeHead(status, out);
    headSent = true;
    for await (const chunk of res) {
      const buf: Uint8Array = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
      if (!ex.write(buf)) await cancel.drain(ex);
      if (cancel.reason !== undefined) throw cancel.reason;
    }
    if (cancel.reason !== undefined) throw cancel.reason;
    if (!res.complete) {
      throw new AppResponseError(`Cannot relay response: app process ${session.pid} closed the connection before the end of the body`);
    }
    ex.end();
    // The app may answer before reading the whole body; that connection cannot be reused.
    if (!current.writableFinished) current.destroy();
    return "ok";
  } catch (e: unknown) {
    if (e instanceof RetryCheckout) throw e;
    const phase = headSent ? "relay response" : "send request";
    const err = cancel.reason ?? await settleBrokenConnection(ctx, session, appError(e, session, phase), phase);
    current?.destroy();
    if (err.code === "FERRY_ERR_ABORTED") {
      if (headSent) ex.abort(err.code, err.message);
      return "client_aborted";
    }
    sendError(ctx, err, headSent);
    return outcomeOf(err);
  } finally {
    cancel.dispose();
  }
}
