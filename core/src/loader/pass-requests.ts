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
import { dropLastHeader } from "./raw-headers.js";
import type { RequestReporter } from "./request-reporter.js";

/** The marker, lower case (exchange/headers.ts drops a client's; protocol/frames.ts PASS_MARKER_HEADER). */
export const PASS_MARKER = "x-ferry-pass";

/** The marker as the modules write it (apache-module/ferry_app_head.h FERRY_PASS_HEADER). */
const PASS_MARKER_AS_SENT = "X-Ferry-Pass";

/** Whether the request's last header is the pass marker. */
export function hasPassMarker(raw: readonly string[]): boolean {
  const name = raw[raw.length - 2];
  // The modules' spelling needs no lower-casing (no string made per request); most other last headers are not 12 characters long.
  return name !== undefined && (name === PASS_MARKER_AS_SENT || (name.length === PASS_MARKER.length && name.toLowerCase() === PASS_MARKER));
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
    // The marker is the last rawHeaders pair.
    dropLastHeader(req, PASS_MARKER);
    const socket = req.socket;
    if (handedOff(socket)) return;
    const counted: Counted = { started: performance.now(), written: socket.bytesWritten, socket };
    (res as unknown as Record<symbol, Counted | undefined>)[COUNTED] = counted;
    reporter.started();
    res.on("close", closed);
  });
}
