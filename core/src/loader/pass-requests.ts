/**
 * Requests the Apache/nginx module sent with a pass (docs/protocol.md
 * "Passes"): straight to this process, without the core seeing them. The
 * module marks each with `X-Ferry-Pass: 1` as the last header; this file
 * removes the marker before the app's listeners run (from req.headers,
 * req.headersDistinct and req.rawHeaders) and counts the request in the
 * "reqs" reports (request-reporter.ts), so the core's in-flight counts,
 * processed totals, idle times, scaling and metrics include it.
 *
 * Leased requests never carry the marker (the core's head builder drops a
 * client-sent one), so a request is counted here or by the core, never
 * twice; requests on handed-off connections are the handoff's to count.
 *
 * Runs INSIDE the app process: node: built-ins and this folder only.
 */
import type http from "node:http";
import type net from "node:net";
import { afterRawHeadersEdit, beforeRawHeadersEdit, setCachedHeader } from "./raw-headers.js";
import type { RequestReporter } from "./request-reporter.js";

/** The marker, lower case (exchange/headers.ts drops a client's; protocol/frames.ts PASS_MARKER_HEADER). */
export const PASS_MARKER = "x-ferry-pass";

/** Remove the marker (the last rawHeaders pair) from the request, and from Node's header objects. */
function stripMarker(req: http.IncomingMessage): void {
  beforeRawHeadersEdit(req);
  const raw = req.rawHeaders;
  raw.pop();
  raw.pop();
  afterRawHeadersEdit(req);
  setCachedHeader(req, PASS_MARKER, undefined);
}

/** Whether the request's last header is the pass marker. */
export function hasPassMarker(raw: readonly string[]): boolean {
  const name = raw[raw.length - 2];
  // Most last headers are not 12 characters long: no lower-casing for them.
  return name !== undefined && name.length === PASS_MARKER.length && name.toLowerCase() === PASS_MARKER;
}

/** A pass request's start, kept on its response until it closes. */
interface Counted {
  readonly started: number;
  readonly written: number;
  readonly socket: net.Socket;
}

const COUNTED = Symbol("ferry.passRequest");

/**
 * Count and unmark pass requests on `server` (the server Ferry bound). Runs
 * before the app's own 'request' listeners. `handedOff` tells the requests
 * on handed-off connections apart: those are counted by the handoff (a
 * client cannot mark one as a pass request). One listener and one close
 * handler for all requests: no closure per request.
 */
export function watchPassRequests(server: net.Server, reporter: RequestReporter, handedOff: (socket: net.Socket) => boolean): void {
  function closed(this: http.ServerResponse): void {
    const c = (this as unknown as Record<symbol, Counted | undefined>)[COUNTED];
    if (c === undefined) return;
    (this as unknown as Record<symbol, Counted | undefined>)[COUNTED] = undefined;
    reporter.finished(this.headersSent ? this.statusCode : 0, performance.now() - c.started, c.socket.bytesWritten - c.written);
  }
  server.prependListener("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!hasPassMarker(req.rawHeaders)) return;
    stripMarker(req);
    const socket = req.socket;
    if (handedOff(socket)) return;
    const counted: Counted = { started: performance.now(), written: socket.bytesWritten, socket };
    (res as unknown as Record<symbol, Counted | undefined>)[COUNTED] = counted;
    reporter.started();
    res.on("close", closed);
  });
}
