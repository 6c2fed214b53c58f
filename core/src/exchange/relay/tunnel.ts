/**
 * Upgraded connections (WebSocket): the handshake goes to the app on a
 * dedicated connection; a 101 answer is relayed with `ex.writeHead(101, …)`
 * and then bytes flow both ways (`pipe`: reads pause while the other side is
 * not draining; an end on one side half-closes the other). A non-101 answer is
 * relayed as an ordinary response. The session is marked upgraded after the
 * 101 and released when both sides have closed.
 */
import http from "node:http";
import type { Duplex } from "node:stream";
import type { Socket } from "node:net";
import type { SessionOutcome, Session } from "../../pool/session.js";
import { addressRequestOptions } from "./app-agents.js";
import { addedResponseHeaders, appRequestHeaders, clientResponseHeaders } from "../headers.js";
import { endFailedExchange, relayAppResponse } from "./answer.js";
import {
  Cancellation, RetryCheckout, appError, isConnectFailure, trackConnect,
  type RequestContext,
} from "../context.js";

type Answer =
  | { readonly kind: "upgrade"; readonly res: http.IncomingMessage; readonly socket: Duplex; readonly head: Buffer }
  | { readonly kind: "response"; readonly res: http.IncomingMessage };

/** Run an upgrade exchange to completion; returns how it ended. */
export async function tunnelExchange(ctx: RequestContext, session: Session, allowRetry = false): Promise<SessionOutcome> {
  const { ex } = ctx;
  // The request-time limit covers the handshake only, not the tunnel's life.
  const cancel = new Cancellation(ex, session, ex.app);
  const req = http.request({
    ...addressRequestOptions(session.address),
    agent: false,
    method: ex.head.method,
    path: ex.head.uri,
    headers: appRequestHeaders(ex.head),
    setHost: false,
  });
  const conn = trackConnect(req);
  let headSent = false;
  cancel.onCancel((e) => req.destroy(e));
  try {
    const answer = await new Promise<Answer>((resolve, reject) => {
      req.once("upgrade", (res: http.IncomingMessage, socket: Socket, head: Buffer) => resolve({ kind: "upgrade", res, socket, head }));
      req.once("response", (res: http.IncomingMessage) => resolve({ kind: "response", res }));
      req.once("error", reject);
      if (ex.head.hasBody) ex.body.pipe(req);
      else req.end();
    });

    if (answer.kind === "response") {
      // An ordinary answer (e.g. 400/403 to a bad handshake).
      await relayAppResponse(ctx, session, cancel, answer.res, () => (headSent = true));
      return "ok";
    }

    // The 101: relay the head, then pipe bytes both ways.
    const appSocket = answer.socket;
    const out = clientResponseHeaders(101, answer.res.rawHeaders);
    out.push(...addedResponseHeaders(ex.app, session.stickyId, ex.head.https));
    ex.writeHead(101, out);
    headSent = true;
    cancel.dispose();
    session.markUpgraded();
    const client = ex.upgraded();
    if (answer.head.length > 0) client.write(answer.head);
    const { outcome, bytesToClient } = await pipeBoth(ctx, session, client, appSocket);
    ex.tunnelEnded(answer.head.length + bytesToClient);
    return outcome;
  } catch (e: unknown) {
    if (allowRetry && !headSent && !ex.head.hasBody && cancel.reason === undefined && isConnectFailure(e, conn)) {
      throw new RetryCheckout(appError(e, session, "connect"));
    }
    return await endFailedExchange(ctx, session, cancel, e, headSent, "send upgrade request", () => req.destroy());
  } finally {
    cancel.dispose();
  }
}

/** After one side of a tunnel closed, how long the other may take to close before it is destroyed. */
const CLOSE_LINGER_MS = 30_000;

/**
 * Pipe client ↔ app until both sides have closed. `pipe` pauses a side while
 * the other is not draining and ends the other side's write half when one side
 * ends (half-close). An error on either side or the process dying destroys
 * both; once one side has fully closed the other is ended and, if it has not
 * closed within CLOSE_LINGER_MS, destroyed. Resolves with how it ended and the
 * bytes the app sent through it.
 */
function pipeBoth(
  ctx: RequestContext, session: Session, client: Duplex, app: Duplex,
): Promise<{ outcome: SessionOutcome; bytesToClient: number }> {
  return new Promise((resolve) => {
    let bytesToClient = 0;
    let clientClosed = false;
    let appClosed = false;
    let outcome: SessionOutcome = "ok";
    let linger: NodeJS.Timeout | undefined;
    const onGone = (): void => {
      outcome = "app_error";
      app.destroy();
      client.destroy();
    };
    const onClientGone = (): void => {
      client.destroy();
    };
    const finish = (): void => {
      if (!(clientClosed && appClosed)) {
        linger ??= setTimeout(() => {
          client.destroy();
          app.destroy();
        }, CLOSE_LINGER_MS);
        return;
      }
      if (linger !== undefined) clearTimeout(linger);
      session.processGone.removeEventListener("abort", onGone);
      ctx.ex.signal.removeEventListener("abort", onClientGone);
      resolve({ outcome, bytesToClient });
    };
    session.processGone.addEventListener("abort", onGone, { once: true });
    ctx.ex.signal.addEventListener("abort", onClientGone, { once: true });

    client.on("error", (e: unknown) => {
      ctx.log.debug({ err: e }, "upgraded client connection error");
      app.destroy();
    });
    app.on("error", (e: unknown) => {
      ctx.log.debug({ err: e }, "upgraded app connection error");
      outcome = "app_error";
      client.destroy();
    });
    client.on("close", () => {
      clientClosed = true;
      if (!app.destroyed) app.end();
      finish();
    });
    app.on("close", () => {
      appClosed = true;
      if (!client.destroyed) client.end();
      finish();
    });
    client.pipe(app);
    app.pipe(client);
    app.on("data", (chunk: Buffer) => {
      bytesToClient += chunk.length;
    });
    if (session.processGone.aborted) onGone();
  });
}
