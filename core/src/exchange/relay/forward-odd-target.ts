/**
 * The node:http variant of the plain request path, for request targets undici
 * cannot send (anything but origin-form, e.g. `OPTIONS *`). Rare, so it opens
 * a connection per request instead of keeping a pool. Same contract as
 * forward.ts's forward(): returns how the exchange ended, throws RetryCheckout
 * when the process could not be connected to.
 */
import http from "node:http";
import { AppResponseError } from "../../errors.js";
import type { Session, SessionOutcome } from "../../pool/session.js";
import { addressRequestOptions } from "./app-agents.js";
import {
  Cancellation, RetryCheckout, appError, isConnectFailure, trackConnect,
  type RequestContext,
} from "../context.js";
import { appRequestHeaders } from "../headers.js";
import { endFailedExchange, relayAppResponse } from "./answer.js";
import { pumpBody } from "../../util/backpressure.js";

interface Sent {
  readonly req: http.ClientRequest;
  readonly response: Promise<http.IncomingMessage>;
}

function sendRequest(ctx: RequestContext, session: Session, headers: string[]): Sent {
  const { ex } = ctx;
  const req = http.request({
    ...addressRequestOptions(session.address),
    agent: false,
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
export async function forwardOddTarget(ctx: RequestContext, session: Session, allowRetry: boolean): Promise<SessionOutcome> {
  const { ex } = ctx;
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
    // is connected.
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
    await relayAppResponse(ctx, session, cancel, res, () => (headSent = true));
    // The app may answer before reading the whole body; that connection cannot be reused.
    if (!current.writableFinished) current.destroy();
    return "ok";
  } catch (e: unknown) {
    if (e instanceof RetryCheckout) throw e;
    return await endFailedExchange(ctx, session, cancel, e, headSent, "send request", () => current?.destroy());
  } finally {
    cancel.dispose();
  }
}
