/**
 * What the loader needs to serve a handed-off connection as the relay would
 * (docs/standalone.md "Connection handoff"): Ferry's `X-Powered-By`, the
 * `--header-timeout` / `--request-timeout` deadlines, `max_requests`,
 * `max_request_time`, the static files dir, and the relay's own 502 page for a process that exits
 * mid-request and 504 page for a request over the max request time, rendered here
 * once per spawn (exchange/error-page.ts) with the error id and pid left for
 * the loader to fill in.
 */
import path from "node:path";
import type { AppOptions, ServerOptions } from "../../config/schema.js";
import { AppCrashedError, AppTimeoutError, type FerryError } from "../../errors.js";
import { renderErrorPage } from "../../exchange/error-page.js";
import { poweredBy } from "../../exchange/headers.js";
import { ERROR_ID_MARK, PID_MARK, crashMessage, maxRequestTimeMessage, type HandoffSettings } from "../../loader/messages.js";
import { DEFAULT_HEADER_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from "./front-server.js";

export function handoffSettings(app: AppOptions, server: ServerOptions): HandoffSettings {
  const pageOf = (error: FerryError): { html: string; json: string } => {
    const body = (requestHeaders: readonly string[]): string =>
      renderErrorPage({ error, app, errorId: ERROR_ID_MARK, requestHeaders }).body.toString("utf8");
    return { html: body([]), json: body(["Accept", "application/json"]) };
  };
  return {
    poweredBy: poweredBy(app),
    headerTimeoutMs: server.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS,
    requestTimeoutMs: server.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    maxRequests: app.maxRequests,
    crashPage: pageOf(new AppCrashedError(crashMessage(PID_MARK))),
    maxRequestTimeMs: app.maxRequestTimeMs,
    timeoutPage: pageOf(new AppTimeoutError(maxRequestTimeMessage(PID_MARK, app.maxRequestTimeMs))),
    ...(server.staticFilesDir !== undefined && server.staticFilesDir !== "" ? { staticFilesDir: path.resolve(app.appRoot, server.staticFilesDir) } : {}),
  };
}
