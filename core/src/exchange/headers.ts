/**
 * Header rules for forwarding one exchange to an app process and its answer
 * back to the client (Passenger's SendRequest / ForwardResponse, reference §1.5),
 * shared by the plain request path (request.ts) and the Upgrade tunnel (tunnel.ts).
 * Pure functions over flat [name, value, …] header lists.
 */
import type { AppOptions } from "../config/schema.js";
import type { RequestHead } from "./exchange.js";
import { FERRY_VERSION } from "../version.js";
import { parseStickyCookie, stickyCookieValue } from "../policy/sticky.js";

/** Hop-by-hop headers (RFC 9110 §7.6.1) that never cross the proxy as such. */
const HOP_BY_HOP = new Set([
  "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
]);

/** Headers named in Connection: tokens are hop-by-hop too. */
function connectionTokens(headers: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]?.toLowerCase() === "connection") {
      for (const t of (headers[i + 1] ?? "").split(",")) {
        const tok = t.trim().toLowerCase();
        if (tok !== "" && tok !== "close" && tok !== "keep-alive" && tok !== "upgrade") out.add(tok);
      }
    }
  }
  return out;
}

/** First value of a header, case-insensitive; undefined when absent. */
export function getHeader(headers: readonly string[], name: string): string | undefined {
  const lower = name.toLowerCase();
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]?.toLowerCase() === lower) return headers[i + 1] ?? "";
  }
  return undefined;
}

/** All values of a header, in order. */
export function getHeaders(headers: readonly string[], name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]?.toLowerCase() === lower) out.push(headers[i + 1] ?? "");
  }
  return out;
}

/**
 * The request headers the app receives: the client's end-to-end headers in
 * order, `X-Forwarded-For` with the client address appended, `X-Forwarded-Proto`
 * set by us (a client-sent value is replaced), a `Host` when the client sent none,
 * `Transfer-Encoding: chunked` for a body of unknown length, and `Connection:
 * Upgrade` + `Upgrade` for an upgrade request. `Expect` is answered by the front
 * end and not forwarded, nor is a client's `X-Ferry-Pass` (the pass marker). Keep-alive towards the app is the agent's business.
 */
export function appRequestHeaders(head: RequestHead): string[] {
  const drop = connectionTokens(head.headers);
  const out: string[] = [];
  const xff: string[] = [];
  let upgradeValue: string | undefined;
  let hasHost = false;
  let hasLength = false;
  for (let i = 0; i + 1 < head.headers.length; i += 2) {
    const name = head.headers[i] ?? "";
    const value = head.headers[i + 1] ?? "";
    const lower = name.toLowerCase();
    if (lower === "upgrade") { upgradeValue = value; continue; }
    if (HOP_BY_HOP.has(lower) || drop.has(lower)) continue;
    // X-Ferry-Pass marks a request the module sent with a pass (docs/protocol.md "Passes"): never the client's.
    if (lower === "expect" || lower === "x-forwarded-proto" || lower === "x-ferry-pass") continue;
    if (lower === "x-forwarded-for") { xff.push(value); continue; }
    if (lower === "host") hasHost = true;
    if (lower === "content-length") {
      if (!head.hasBody) continue;
      hasLength = true;
    }
    out.push(name, value);
  }
  if (!hasHost) out.push("Host", head.serverPort > 0 ? `${head.serverName}:${head.serverPort}` : head.serverName);
  if (head.remoteAddr !== "") xff.push(head.remoteAddr);
  if (xff.length > 0) out.push("X-Forwarded-For", xff.join(", "));
  out.push("X-Forwarded-Proto", head.https ? "https" : "http");
  if (head.upgrade) {
    out.push("Connection", "Upgrade", "Upgrade", upgradeValue ?? "websocket");
  } else if (head.hasBody && !hasLength) {
    out.push("Transfer-Encoding", "chunked");
  }
  return out;
}

/**
 * The app's response headers the client receives: hop-by-hop ones removed
 * (framing is redone by the front end), except on a 101 where `Connection`
 * and `Upgrade` are the point.
 */
export function clientResponseHeaders(status: number, raw: readonly string[]): string[] {
  const drop = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? "";
    const lower = name.toLowerCase();
    if (status === 101 && (lower === "connection" || lower === "upgrade")) {
      out.push(name, raw[i + 1] ?? "");
      continue;
    }
    if (HOP_BY_HOP.has(lower) || drop.has(lower)) continue;
    out.push(name, raw[i + 1] ?? "");
  }
  return out;
}

/** `X-Powered-By` value (PassengerShowVersionInHeader decides the version). */
export function poweredBy(app: AppOptions): string {
  return app.showVersionInHeader ? `Ferry/${FERRY_VERSION}` : "Ferry";
}

/** The sticky-session id in the request's Cookie headers (policy/sticky.ts), or undefined. */
export function stickyIdFromCookies(headers: readonly string[], cookieName: string): string | undefined {
  return parseStickyCookie(getHeaders(headers, "cookie"), cookieName);
}

/** The sticky `Set-Cookie` value (policy/sticky.ts): never HttpOnly, `Secure` on HTTPS. */
export function stickySetCookie(app: AppOptions, stickyId: string, https: boolean): string {
  return stickyCookieValue(stickyId, {
    name: app.stickySessionsCookieName,
    baseURI: app.baseURI,
    attributes: app.stickySessionsCookieAttributes,
    https,
  });
}

/** Headers Ferry adds to every app response: X-Powered-By, and the sticky cookie when on. */
export function addedResponseHeaders(app: AppOptions, stickyId: string, https: boolean): string[] {
  const out = ["X-Powered-By", poweredBy(app)];
  if (app.stickySessions && stickyId !== "") out.push("Set-Cookie", stickySetCookie(app, stickyId, https));
  return out;
}
