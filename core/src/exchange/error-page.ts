/**
 * Error responses a person can read (Passenger's ErrorRenderer, reference §7).
 *
 * - Friendly pages (PassengerFriendlyErrorPages, default on in development):
 *   the error, the app's captured output, app root and environment.
 * - Otherwise a plain "something went wrong" page carrying an Error ID that
 *   also appears in the core's log line, so an administrator can find it.
 * - A JSON body when the request asked for JSON (Accept or Content-Type).
 */
import { randomBytes } from "node:crypto";
import type { AppOptions } from "../config/schema.js";
import { FerryError, SpawnError } from "../errors.js";
import { wantsJson } from "../loader/wants-json.js";

export interface ErrorPage {
  readonly status: number;
  /** Flat [name, value, …] */
  readonly headers: readonly string[];
  readonly body: Buffer;
}

export interface ErrorPageInput {
  readonly error: FerryError;
  readonly app: AppOptions;
  readonly errorId: string;
  /** The request headers, flat [name, value, …], to pick HTML or JSON. */
  readonly requestHeaders: readonly string[];
  readonly poweredBy?: string;
  /** PassengerCustomErrorPage's contents: the HTML served when friendly error pages are off. */
  readonly customPage?: Buffer;
}

/** A new 8-hex-digit error id (Passenger's format). */
export function newErrorId(): string {
  return randomBytes(4).toString("hex");
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => {
    switch (c) {
      case "&": return "&amp;";
      case "<": return "&lt;";
      case ">": return "&gt;";
      case '"': return "&quot;";
      default: return "&#39;";
    }
  });
}

export { wantsJson };

/** The public summary a client sees for an error, by status. */
function publicTitle(status: number): string {
  switch (status) {
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Internal Server Error";
  }
}

/** The sentence a visitor reads, without internal details. */
function publicMessage(e: FerryError): string {
  switch (e.code) {
    case "FERRY_ERR_QUEUE_FULL": return "This website is under heavy load (queue full). Please try again later.";
    case "FERRY_ERR_QUEUE_TIMEOUT": return "This website is under heavy load (the request waited too long). Please try again later.";
    case "FERRY_ERR_POOL_SHUTDOWN": return "This website is restarting. Please try again in a moment.";
    case "FERRY_ERR_SPAWN":
    case "FERRY_ERR_SPAWN_TIMEOUT": return "Web application could not be started.";
    case "FERRY_ERR_APP_TIMEOUT": return "The application did not answer in time.";
    case "FERRY_ERR_APP_CRASHED":
    case "FERRY_ERR_APP_CONNECT":
    case "FERRY_ERR_APP_RESPONSE": return "Incomplete response received from application.";
    default: return "We're sorry, but something went wrong.";
  }
}

function page(title: string, inner: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}
pre{background:#f4f4f4;padding:1em;overflow:auto;white-space:pre-wrap}h1{color:#a00}
table{border-collapse:collapse}td{border:1px solid #ccc;padding:.2em .5em;font-family:monospace}
.muted{color:#777}</style></head><body>
${inner}
</body></html>
`;
}

function friendlyHtml(i: ErrorPageInput, status: number): string {
  const e = i.error;
  const spawn = e instanceof SpawnError ? e : undefined;
  const envRows = Object.entries({ PASSENGER_APP_ENV: i.app.appEnv, NODE_ENV: i.app.appEnv, ...i.app.env })
    .map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`).join("\n");
  const output = spawn !== undefined && spawn.output !== ""
    ? `<h2>Application output</h2>\n<pre id="app-output">${escapeHtml(spawn.output)}</pre>`
    : `<h2>Application output</h2>\n<p class="muted">The application wrote nothing.</p>`;
  const step = spawn !== undefined && spawn.step !== "" ? `<p>Failed step: <code>${escapeHtml(spawn.step)}</code></p>` : "";
  return page(publicMessage(e), `<h1>${escapeHtml(publicMessage(e))}</h1>
<p>${escapeHtml(e.message)}</p>
<p>Error code: <code>${escapeHtml(e.code)}</code> &middot; HTTP ${status} &middot; Error ID: <code>${escapeHtml(i.errorId)}</code></p>
${step}
${output}
<h2>Application</h2>
<table>
<tr><td>App root</td><td>${escapeHtml(i.app.appRoot)}</td></tr>
<tr><td>App group</td><td>${escapeHtml(i.app.appGroupName)}</td></tr>
<tr><td>Environment</td><td>${escapeHtml(i.app.appEnv)}</td></tr>
<tr><td>Startup</td><td>${escapeHtml(i.app.appStartCommand !== "" ? i.app.appStartCommand : i.app.startupFile)}</td></tr>
</table>
<h2>Environment variables set for the app</h2>
<table>
${envRows}
</table>
<p class="muted">You see this page because friendly error pages are on (PassengerFriendlyErrorPages, default on in development).
Turn them off in production.</p>`);
}

function plainHtml(i: ErrorPageInput, status: number): string {
  const title = publicTitle(status);
  // Like Passenger, a visitor learns nothing about why the app failed to start.
  const spawnFailure = i.error.code === "FERRY_ERR_SPAWN" || i.error.code === "FERRY_ERR_SPAWN_TIMEOUT";
  const headline = spawnFailure ? "We're sorry, but something went wrong." : publicMessage(i.error);
  return page(title, `<h1>${escapeHtml(headline)}</h1>
<p>The issue has been logged for investigation. Please try again later.</p>
<p class="muted">Technical details for the administrator: Error ID <code id="error-id">${escapeHtml(i.errorId)}</code>.
Search the web server's log for this ID, or turn on friendly error pages (PassengerFriendlyErrorPages on) to see the details here.</p>`);
}

/** The page's status: the error's, or the app's chosen one for a full queue or a failed spawn (nginx's passenger_*_status_code). */
function pageStatus(i: ErrorPageInput): number {
  const code = i.error.code;
  if (code === "FERRY_ERR_QUEUE_FULL" && i.app.requestQueueOverflowStatusCode > 0) return i.app.requestQueueOverflowStatusCode;
  if ((code === "FERRY_ERR_SPAWN" || code === "FERRY_ERR_SPAWN_TIMEOUT") && i.app.spawnExceptionStatusCode > 0) return i.app.spawnExceptionStatusCode;
  return i.error.httpStatus >= 400 && i.error.httpStatus <= 599 ? i.error.httpStatus : 500;
}

/** Render the error response for a request that failed before the app answered. */
export function renderErrorPage(i: ErrorPageInput): ErrorPage {
  const status = pageStatus(i);
  const friendly = i.app.friendlyErrorPages;
  let type: string;
  let text: string;
  if (wantsJson(i.requestHeaders)) {
    type = "application/json; charset=utf-8";
    const body: Record<string, unknown> = { status: "error", message: publicMessage(i.error), error_id: i.errorId, code: i.error.code };
    if (friendly) {
      body["details"] = i.error.message;
      if (i.error instanceof SpawnError) body["output"] = i.error.output;
    }
    text = JSON.stringify(body) + "\n";
  } else {
    type = "text/html; charset=utf-8";
    text = friendly ? friendlyHtml(i, status) : i.customPage !== undefined ? "" : plainHtml(i, status);
  }
  const custom = !friendly && type.startsWith("text/html") && i.customPage !== undefined;
  const body = custom && i.customPage !== undefined ? i.customPage : Buffer.from(text, "utf8");
  const headers = [
    "Content-Type", type,
    "Content-Length", String(body.length),
    "Cache-Control", "no-cache, no-store, must-revalidate",
  ];
  if (i.poweredBy !== undefined) headers.push("X-Powered-By", i.poweredBy);
  if (status === 503) headers.push("Retry-After", "1");
  return { status, headers, body };
}
