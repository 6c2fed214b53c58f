import test from "ava";
import { FrameDecoder } from "../../../../core/src/protocol/codec.js";
import { readModuleHead } from "../../../../core/src/front/module/head.js";
import { validateAppOptions } from "../../../../core/src/config/app-wire.js";
import type { WireMap } from "../../../../core/src/protocol/frames.js";
import { ProtocolError } from "../../../../core/src/errors.js";
import { APP_DEFAULTS } from "../../../../core/src/config/schema.js";
import { readVector } from "../../../helpers/protocol-vectors.js";

function headOf(file: string): WireMap {
  const d = new FrameDecoder();
  d.push(readVector(file));
  const f = d.next();
  if (f?.kind !== "request-head") throw new Error(`${file} is not a REQUEST_HEAD`);
  return f.head;
}

const BASE: WireMap = { v: 1, method: "GET", uri: "/", app: { app_root: "/srv/app" } };

function withKey(key: string, value: unknown): WireMap {
  return { ...BASE, [key]: value };
}
function withApp(key: string, value: unknown): WireMap {
  return { ...BASE, app: { app_root: "/srv/app", [key]: value } };
}

test("readModuleHead() turns request_head_minimal into defaults", (t) => {
  const { head, app, generation } = readModuleHead(headOf("request_head_minimal.hex"));
  t.deepEqual(head, {
    method: "GET", uri: "/", proto: "HTTP/1.1", headers: ["Host", "example.com"], remoteAddr: "127.0.0.1",
    remotePort: 50000, serverName: "example.com", serverPort: 80, https: false, hasBody: false, upgrade: false,
  });
  t.is(generation, 1);
  t.is(app.appRoot, "/srv/app");
  t.is(app.appGroupName, "/srv/app (production)");
  t.is(app.friendlyErrorPages, false);
  t.is(app.startTimeoutMs, APP_DEFAULTS.startTimeoutMs);
  t.is(app.maxConcurrentRequestsPerProcess, 0);
  t.deepEqual(app.env, {});
});

test("readModuleHead() translates every app key of request_head_full into AppOptions units", (t) => {
  const { head, app, generation } = readModuleHead(headOf("request_head_full.hex"));
  t.is(generation, 7);
  t.is(head.method, "POST");
  t.true(head.https);
  t.true(head.hasBody);
  t.deepEqual(head.headers.filter((_, i) => head.headers[i - 1] === "Cookie"), ["a=1", "_passenger_route=3f9a; b=2"]);
  // Non-ASCII bytes are handed on as a Node byte string (latin1), as Node's HTTP parser does.
  t.is(head.headers[head.headers.indexOf("X-Note") + 1], Buffer.from("café").toString("latin1"));
  t.like(app, {
    appRoot: "/srv/www/example.com/current/shop", appGroupName: "shop", appType: "generic", startupFile: "server.js",
    appStartCommand: "node server.js --port $PORT", appEnv: "staging", nodejs: "/usr/local/bin/node", baseURI: "/shop",
    minInstances: 2, maxInstancesPerApp: 4, maxRequests: 1000, maxRequestQueueSize: 0, maxConcurrentRequestsPerProcess: 0,
    startTimeoutMs: 120_000, restartDir: "/srv/restart", stickySessions: true, stickySessionsCookieName: "route",
    stickySessionsCookieAttributes: "SameSite=Strict; Secure", friendlyErrorPages: true, user: "shop", group: "www-data",
    loadShellEnvvars: true, memoryLimitMB: 1024, maxRequestTimeMs: 300_000, appLogFile: "/var/log/shop.log",
    fileDescriptorUlimit: 65536, abortWebsocketsOnProcessShutdown: false, showVersionInHeader: false,
  });
  t.deepEqual(app.env, { FOO: "bar", EMPTY: "", GREETING: "grüß dich" });
});

test("readModuleHead() rejects wrong_version.bad.hex naming the version", (t) => {
  const err = t.throws(() => readModuleHead(headOf("wrong_version.bad.hex")), { instanceOf: ProtocolError });
  t.regex(err.message, /protocol version 4 is not /);
});

test("validateAppOptions() defaults friendly_error_pages by app_env and keeps an explicit value", (t) => {
  t.true(validateAppOptions({ app_root: "/a", app_env: "development" }).friendlyErrorPages);
  t.false(validateAppOptions({ app_root: "/a", app_env: "production" }).friendlyErrorPages);
  t.false(validateAppOptions({ app_root: "/a", app_env: "development", friendly_error_pages: false }).friendlyErrorPages);
  t.is(validateAppOptions({ app_root: "/a", app_env: "development" }).appGroupName, "/a (development)");
});

test("validateAppOptions() maps force_max_concurrent_requests_per_process -1 and absent to 0", (t) => {
  t.is(validateAppOptions({ app_root: "/a" }).maxConcurrentRequestsPerProcess, 0);
  t.is(validateAppOptions({ app_root: "/a", force_max_concurrent_requests_per_process: -1 }).maxConcurrentRequestsPerProcess, 0);
  t.is(validateAppOptions({ app_root: "/a", force_max_concurrent_requests_per_process: 3 }).maxConcurrentRequestsPerProcess, 3);
  t.throws(() => validateAppOptions({ app_root: "/a", force_max_concurrent_requests_per_process: -2 }), { instanceOf: ProtocolError });
});

test("validateAppOptions() normalizes base_uri and ignores unknown keys", (t) => {
  t.is(validateAppOptions({ app_root: "/a", base_uri: "/shop/" }).baseURI, "/shop");
  t.is(validateAppOptions({ app_root: "/a", base_uri: "/" }).baseURI, "");
  t.is(validateAppOptions({ app_root: "/a", some_future_key: [1, 2] }).appRoot, "/a");
});

const BAD_HEADS: ReadonlyArray<readonly [string, WireMap, RegExp]> = [
  ["missing v", { method: "GET", uri: "/", app: { app_root: "/a" } }, /protocol version missing/],
  ["method not a string", withKey("method", 1), /method must be a string, got 1/],
  ["method not a token", withKey("method", "GE T"), /method must be a token/],
  ["uri with a space", withKey("uri", "/a b"), /uri must be/],
  ["empty uri", withKey("uri", ""), /uri must be/],
  ["bad proto", withKey("proto", "HTTP/2"), /proto must be HTTP\/1.1 or HTTP\/1.0/],
  ["odd headers", withKey("headers", ["Host"]), /headers must be a flat array/],
  ["non-string header", withKey("headers", ["Host", 3]), /headers must be a flat array/],
  ["header name with a colon", withKey("headers", ["Ho:st", "x"]), /headers\[0\] must be a header name token/],
  ["header value with CRLF", withKey("headers", ["X", "a\r\nInjected: 1"]), /headers\[1\] must be a header value/],
  ["remote_port out of range", withKey("remote_port", 70000), /remote_port must be an integer 0-65535, got 70000/],
  ["https not a bool", withKey("https", 1), /https must be a boolean, got 1/],
  ["gen negative", withKey("gen", -1), /gen must be an integer/],
  ["app missing", { v: 1, method: "GET", uri: "/" }, /app must be a map, got missing/],
  ["app an array", withKey("app", []), /app must be a map, got an array/],
  ["app_root missing", withKey("app", {}), /app.app_root must be a string, got missing/],
  ["app_root relative", withKey("app", { app_root: "srv/a" }), /app.app_root must be an absolute path/],
  ["start_timeout a string", withApp("start_timeout", "90"), /app.start_timeout must be an integer 1-2147483, got "90"/],
  ["start_timeout past a timer's reach", withApp("start_timeout", 2_147_484), /app.start_timeout must be an integer 1-2147483, got 2147484/],
  ["max_request_time past a timer's reach", withApp("max_request_time", 1e9), /app.max_request_time must be an integer 0-2147483/],
  ["memory_limit above 1 TiB", withApp("memory_limit", 1_048_577), /app.memory_limit must be an integer 0-1048576, got 1048577/],
  ["start_timeout zero", withApp("start_timeout", 0), /app.start_timeout must be an integer/],
  ["app_type unknown", withApp("app_type", "ruby"), /app.app_type must be node or generic, got "ruby"/],
  ["memory_limit negative", withApp("memory_limit", -5), /app.memory_limit must be an integer 0-1048576, got -5/],
  ["sticky_sessions not bool", withApp("sticky_sessions", "on"), /app.sticky_sessions must be a boolean/],
  ["cookie name with a space", withApp("sticky_sessions_cookie_name", "a b"), /app.sticky_sessions_cookie_name must be a cookie name token/],
  ["env odd", withKey("env", ["A"]), /env must be a flat array/],
  ["env name with =", withKey("env", ["A=B", "c"]), /env\[0\] must be an environment variable name/],
];

for (const [what, map, re] of BAD_HEADS) {
  test(`readModuleHead() rejects a head with ${what}`, (t) => {
    const err = t.throws(() => readModuleHead(map), { instanceOf: ProtocolError });
    t.regex(err.message, re);
    t.regex(err.message, /^Cannot accept request head: /);
  });
}

test("readModuleHead() keeps the raw bytes of a non-ASCII request target", (t) => {
  const { head } = readModuleHead({ ...BASE, uri: "/caf\u00e9/\u{1f600}" });
  t.deepEqual([...Buffer.from(head.uri, "latin1")], [...Buffer.from("/caf\u00e9/\u{1f600}", "utf8")]);
});

test("readModuleHead() ignores a __proto__ key and inherited properties", (t) => {
  const map = JSON.parse('{"v":1,"method":"GET","uri":"/","app":{"app_root":"/a"},"__proto__":{"https":true}}') as WireMap;
  t.false(readModuleHead(map).head.https);
});

test("readModuleHead() reuses the connection's last app options for an equal map and translates a changed one", (t) => {
  const first = readModuleHead(headOf("request_head_full.hex"));
  const again = readModuleHead(headOf("request_head_full.hex"), first.memo);
  t.is(again.app, first.app);
  const map = headOf("request_head_full.hex");
  const changed = readModuleHead({ ...map, app: { ...(map["app"] as WireMap), max_requests: 7 } }, first.memo);
  t.not(changed.app, first.app);
  t.is(changed.app.maxRequests, 7);
  const fewerEnv = readModuleHead({ ...map, env: [] }, first.memo);
  t.not(fewerEnv.app, first.app);
  t.deepEqual(fewerEnv.app.env, {});
});
