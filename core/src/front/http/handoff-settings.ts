/**
 * What the loader needs to serve a handed-off connection as the relay would
 * (docs/standalone.md "Connection handoff"): Ferry's `X-Powered-By`, the
 * `--header-timeout` / `--request-timeout` deadlines, `max_requests`, and the
 * relay's own 502 page for a process that exits mid-request, rendered here
 * once per spawn (exchange/error-page.ts) with the error id and pid left for
 * the loader to fill in.
 */
import type { AppOptions, ServerOptions } from "../../config/schema.js";
import { AppCrashedError } from "../../errors.js";
import { renderErrorPage } from "../../exchange/error-page.js";
import { poweredBy } from "../../exchange/headers.js";
import { ERROR_ID_MARK, PID_MARK, crashMessage, type HandoffSettings } from "../../loader/messages.js";
import { DEFAULT_HEADER_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS } from "./server.js";

export function handoffSettings(app: AppOptions, server: ServerOptions): HandoffSettings {
  const error = new AppCrashedError(crashMessage(PID_MARK));
  const body = (requestHeaders: readonly string[]): string =>
    renderErrorPage({ error, app, errorId: ERROR_ID_MARK, requestHeaders }).body.toString("utf8");
  return {
    poweredBy: poweredBy(app),
    headerTimeoutMs: server.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS,
    requestTimeoutMs: server.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    maxRequests: app.maxRequests,
    crashPage: { html: body([]), json: body(["Accept", "application/json"]) },
  };
}
