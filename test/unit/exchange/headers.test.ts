import test from "ava";
import { makeAppOptions } from "../../../core/src/config/schema.js";
import type { RequestHead } from "../../../core/src/exchange/exchange.js";
import {
  addedResponseHeaders, appRequestHeaders, clientResponseHeaders, getHeaders, stickyIdFromCookies, stickySetCookie,
} from "../../../core/src/exchange/headers.js";

function head(over: Partial<RequestHead> = {}): RequestHead {
  return {
    method: "GET", uri: "/a?b=1", proto: "HTTP/1.1", headers: ["Host", "example.test"], remoteAddr: "10.1.2.3", remotePort: 5555,
    serverName: "example.test", serverPort: 80, https: false, hasBody: false, upgrade: false, ...over,
  };
}

function pairs(h: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < h.length; i += 2) out.push([h[i] ?? "", h[i + 1] ?? ""]);
  return out;
}

test("appRequestHeaders() keeps end-to-end headers in order and appends the client to X-Forwarded-For", (t) => {
  const h = appRequestHeaders(head({ headers: ["Host", "h", "X-A", "1", "X-Forwarded-For", "1.1.1.1", "X-A", "2", "Connection", "keep-alive, X-Hop", "X-Hop", "x", "Keep-Alive", "5"] }));
  t.deepEqual(pairs(h), [["Host", "h"], ["X-A", "1"], ["X-A", "2"], ["X-Forwarded-For", "1.1.1.1, 10.1.2.3"], ["X-Forwarded-Proto", "http"]]);
});

test("appRequestHeaders() replaces a client-sent X-Forwarded-Proto and says https on HTTPS", (t) => {
  const h = appRequestHeaders(head({ https: true, headers: ["Host", "h", "X-Forwarded-Proto", "http"] }));
  t.deepEqual(getHeaders(h, "x-forwarded-proto"), ["https"]);
});

test("appRequestHeaders() drops a client-sent X-Ferry-Pass in any case (only the module marks pass requests)", (t) => {
  const h = appRequestHeaders(head({ headers: ["Host", "h", "X-Ferry-Pass", "1", "x-ferry-pass", "1", "X-FERRY-PASS", "", "X-A", "1"] }));
  t.deepEqual(pairs(h), [["Host", "h"], ["X-A", "1"], ["X-Forwarded-For", "10.1.2.3"], ["X-Forwarded-Proto", "http"]]);
});

test("appRequestHeaders() adds Host when the client sent none (HTTP/1.0)", (t) => {
  t.deepEqual(getHeaders(appRequestHeaders(head({ headers: [], serverPort: 8080 })), "host"), ["example.test:8080"]);
});

test("appRequestHeaders() sends a body of unknown length chunked and drops Expect and a stray Content-Length", (t) => {
  const chunked = appRequestHeaders(head({ method: "POST", hasBody: true, headers: ["Host", "h", "Transfer-Encoding", "chunked", "Expect", "100-continue"] }));
  t.deepEqual(getHeaders(chunked, "transfer-encoding"), ["chunked"]);
  t.deepEqual(getHeaders(chunked, "expect"), []);
  const sized = appRequestHeaders(head({ method: "POST", hasBody: true, headers: ["Host", "h", "Content-Length", "5"] }));
  t.deepEqual(getHeaders(sized, "transfer-encoding"), []);
  t.deepEqual(getHeaders(sized, "content-length"), ["5"]);
  const none = appRequestHeaders(head({ headers: ["Host", "h", "Content-Length", "0"] }));
  t.deepEqual(getHeaders(none, "content-length"), []);
});

test("appRequestHeaders() asks the app to upgrade, keeping the client's Upgrade value", (t) => {
  const h = appRequestHeaders(head({ upgrade: true, headers: ["Host", "h", "Upgrade", "websocket", "Sec-WebSocket-Key", "k"] }));
  t.deepEqual(getHeaders(h, "connection"), ["Upgrade"]);
  t.deepEqual(getHeaders(h, "upgrade"), ["websocket"]);
  t.deepEqual(getHeaders(h, "sec-websocket-key"), ["k"]);
  t.deepEqual(getHeaders(appRequestHeaders(head({ upgrade: true })), "upgrade"), ["websocket"]);
});

test("clientResponseHeaders() drops hop-by-hop headers but keeps every Set-Cookie", (t) => {
  const raw = ["Set-Cookie", "a=1", "Connection", "keep-alive", "Keep-Alive", "timeout=5", "Transfer-Encoding", "chunked", "Set-Cookie", "b=2", "Content-Type", "text/plain"];
  t.deepEqual(pairs(clientResponseHeaders(200, raw)), [["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"], ["Content-Type", "text/plain"]]);
});

test("clientResponseHeaders() keeps Connection and Upgrade on a 101", (t) => {
  const raw = ["Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", "x"];
  t.deepEqual(clientResponseHeaders(101, raw), raw);
});

test("stickyIdFromCookies() finds the cookie in any Cookie header and rejects malformed ids", (t) => {
  t.is(stickyIdFromCookies(["Cookie", "a=b", "Cookie", "x=1; _passenger_route=42"], "_passenger_route"), "42");
  t.is(stickyIdFromCookies(["Cookie", "_passenger_route=abc"], "_passenger_route"), undefined);
  t.is(stickyIdFromCookies(["Cookie", "route=7"], "_passenger_route"), undefined);
  t.is(stickyIdFromCookies([], "_passenger_route"), undefined);
});

test("stickySetCookie() uses the base URI as Path, the configured attributes, and Secure only on HTTPS", (t) => {
  const app = makeAppOptions("/srv/a", { stickySessions: true, baseURI: "/shop" });
  t.is(stickySetCookie(app, "7", false), "_passenger_route=7; Path=/shop; SameSite=Lax");
  t.is(stickySetCookie(app, "7", true), "_passenger_route=7; Path=/shop; SameSite=Lax; Secure");
  const custom = makeAppOptions("/srv/a", { stickySessions: true, stickySessionsCookieName: "r", stickySessionsCookieAttributes: "SameSite=None; Secure" });
  t.is(stickySetCookie(custom, "9", true), "r=9; Path=/; SameSite=None; Secure");
});

test("addedResponseHeaders() adds X-Powered-By always and the sticky cookie only when sticky sessions are on", (t) => {
  t.deepEqual(addedResponseHeaders(makeAppOptions("/srv/a"), "7", false), ["X-Powered-By", "Ferry/0.1.0"]);
  t.deepEqual(addedResponseHeaders(makeAppOptions("/srv/a", { showVersionInHeader: false }), "7", false), ["X-Powered-By", "Ferry"]);
  t.deepEqual(getHeaders(addedResponseHeaders(makeAppOptions("/srv/a", { stickySessions: true }), "7", false), "set-cookie"), ["_passenger_route=7; Path=/; SameSite=Lax"]);
});
