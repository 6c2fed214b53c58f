/**
 * The client's answer on the relay path, shared by the plain request paths
 * (forward.ts with undici, forward-odd-target.ts with node:http) and the upgrade
 * path (tunnel.ts): an app's node:http response relayed (head with the
 * headers Ferry adds, then the body with backpressure), or, when the exchange
 * failed, the end of it: which error to report, and what the client gets.
 */
import type http from "node:http";
import { AppResponseError } from "../../errors.js";
import type { Session, SessionOutcome } from "../../pool/session.js";
import {
  appError, outcomeOf, sendError, settleBrokenConnection, type Cancellation, type RequestContext,
} from "../context.js";
import { addedResponseHeaders, clientResponseHeaders } from "../headers.js";

/**
 * Relay an app's response to the exchange; `onHead` runs once its head went
 * out. Throws the cancellation's reason, or AppResponseError when the app
 * closed the connection before the end of the body.
 */
export async function relayAppResponse(
  ctx: RequestContext, session: Session, cancel: Cancellation, res: http.IncomingMessage, onHead: () => void,
): Promise<void> {
  const { ex } = ctx;
  const status = res.statusCode ?? 502;
  const out = clientResponseHeaders(status, res.rawHeaders);
  out.push(...addedResponseHeaders(ex.app, session.stickyId, ex.head.https));
  ex.writeHead(status, out);
  onHead();
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
}

/**
 * End an exchange that failed with `e`: the error is the cancellation's
 * reason, else the app connection's failure (after the pool had a moment to
 * see a dying process); `closeApp` drops the app side; then a client that
 * went away gets nothing more (a started response is cut), any other the
 * error (an error page, or a cut response once the head went out).
 */
export async function endFailedExchange(
  ctx: RequestContext, session: Session, cancel: Cancellation, e: unknown,
  headSent: boolean, sendPhase: string, closeApp: () => void,
): Promise<SessionOutcome> {
  const phase = headSent ? "relay response" : sendPhase;
  const err = cancel.reason ?? await settleBrokenConnection(ctx, session, appError(e, session, phase), phase);
  closeApp();
  if (err.code === "FERRY_ERR_ABORTED") {
    if (headSent) ctx.ex.abort(err.code, err.message);
    return "client_aborted";
  }
  sendError(ctx, err, headSent);
  return outcomeOf(err);
}
