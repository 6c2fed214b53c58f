/**
 * The one request path of the core, for every front end (mod_ferry frames, the
 * standalone HTTP server, the affinity peer server): sticky id → checkout →
 * the direct path or the relay → release the session once.
 *
 *   Step one   pick the sticky id from the Cookie header (when sticky sessions are on);
 *              a session another host owns is forwarded there (shared affinity)
 *   Step two   check out a session (waits in the group's bounded queue; 503/500 on failure)
 *   Step three the direct path when the front end takes leases (lease.ts): the
 *              module talks to the app itself; else the relay (relay/forward.ts,
 *              relay/tunnel.ts for upgrades, relay/forward-odd-target.ts for `OPTIONS *`)
 *
 * Errors before the response head went out become an error page (error-page.ts);
 * after it, the client connection is cut (`ex.abort`).
 */
import { toFerryError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Session, SessionOutcome } from "../pool/session.js";
import type { Exchange } from "./exchange.js";
import {
  MAX_CHECKOUT_TRIES, RETRY_SETTLE_MS, RetryCheckout, newRequestId, sendError, settleAfterConnectFailure,
  type CheckoutOptions, type RequestContext, type RequestDeps,
} from "./context.js";
import { stickyIdFromCookies } from "./headers.js";
import { leaseExchange, takesDirectPath } from "./lease.js";
import { forward } from "./relay/forward.js";
import { forwardOddTarget } from "./relay/forward-odd-target.js";
import { tunnelExchange } from "./relay/tunnel.js";

export type { CheckoutOptions, RequestDeps, SessionSource } from "./context.js";

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
        if (deps.affinity !== undefined) await deps.affinity.served(ex, session);
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
          : await forwardOddTarget(ctx, session, allowRetry); // e.g. OPTIONS *, which undici cannot send
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
