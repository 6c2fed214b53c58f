/**
 * unknown → typed: the REQUEST_HEAD map of docs/protocol.md into a RequestHead,
 * the app options (wire keys in directive units) into AppOptions, or a
 * ProtocolError naming the bad field. Unknown keys are ignored (room for
 * growth within a protocol version).
 */
import { ProtocolError } from "../errors.js";
import { makeAppOptions, type AppOptions, type AppType } from "../config/schema.js";
import type { RequestHead } from "../server/exchange.js";
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, type WireMap } from "./frames.js";

/** A validated REQUEST_HEAD. */
export interface ValidatedRequestHead {
  readonly head: RequestHead;
  readonly app: AppOptions;
  /** The module's configuration generation (`gen`). */
  readonly generation: number;
  /** The protocol version of the head (`v`): 2 lets the connection carry further exchanges, 3 takes leases. */
  readonly version: number;
  /** v3: ids of the idle app connections the module holds for this app (LEASE `reuse`). */
  readonly held: readonly string[];
}

/** The most `held` ids a head may carry (docs/protocol.md, "REQUEST_HEAD additions"). */
export const MAX_HELD = 16;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Header values: no CR, LF or NUL (other controls and obs-text pass, as Apache lets them).
const BAD_VALUE = /[\r\n\0]/;
// Request target: no whitespace or control characters.
const BAD_URI = /[\x00-\x20\x7f]/;

const ASCII = /^[\x00-\x7f]*$/;

/**
 * A wire str (UTF-8) as a Node "byte string": one char per byte (latin1), the
 * form Node's HTTP parser produces and its HTTP writer expects, so non-ASCII
 * bytes in the request target and header values reach the app unchanged.
 */
export function toByteString(s: string): string {
  return ASCII.test(s) ? s : Buffer.from(s, "utf8").toString("latin1");
}

/** The inverse of toByteString(): a Node byte string as the str to put on the wire. */
export function fromByteString(s: string): string {
  return ASCII.test(s) ? s : Buffer.from(s, "latin1").toString("utf8");
}

function has(map: WireMap, key: string): boolean {
  return Object.hasOwn(map, key) && map[key] !== undefined && map[key] !== null;
}

function fail(field: string, expected: string, value: unknown): never {
  let shown: string;
  if (typeof value === "string") shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  else if (typeof value === "number" || typeof value === "boolean") shown = String(value);
  else if (Array.isArray(value)) shown = "an array";
  else if (value instanceof Uint8Array) shown = "bin";
  else if (value === null || value === undefined) shown = "missing";
  else shown = "a map";
  return fail0(`Cannot accept request head: ${field} must be ${expected}, got ${shown}`);
}

function fail0(message: string): never {
  throw new ProtocolError(message);
}

function str(map: WireMap, key: string, field: string, dflt?: string): string {
  if (!has(map, key)) {
    if (dflt !== undefined) return dflt;
    return fail(field, "a string", undefined);
  }
  const v = map[key];
  if (typeof v !== "string") return fail(field, "a string", v);
  return v;
}

function int(map: WireMap, key: string, field: string, min: number, dflt?: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!has(map, key)) {
    if (dflt !== undefined) return dflt;
    return fail(field, "an integer", undefined);
  }
  const v = map[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    return fail(field, `an integer ${min}-${max === Number.MAX_SAFE_INTEGER ? "…" : String(max)}`, v);
  }
  return v;
}

function bool(map: WireMap, key: string, field: string, dflt: boolean): boolean {
  if (!has(map, key)) return dflt;
  const v = map[key];
  if (typeof v !== "boolean") return fail(field, "a boolean", v);
  return v;
}

function pairs(map: WireMap, key: string, field: string): string[] {
  if (!has(map, key)) return [];
  const v = map[key];
  if (!Array.isArray(v) || v.length % 2 !== 0 || !v.every((s) => typeof s === "string")) {
    return fail(field, "a flat array of name/value strings", v);
  }
  return [...(v as string[])];
}

function subMap(map: WireMap, key: string, field: string): WireMap {
  const v = map[key];
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) return fail(field, "a map", v);
  return v as WireMap;
}

/** Validate a REQUEST_HEAD map (docs/protocol.md §REQUEST_HEAD). */
export function validateRequestHead(map: WireMap): ValidatedRequestHead {
  const v = map["v"];
  if (typeof v !== "number" || !Number.isInteger(v) || v < MIN_PROTOCOL_VERSION || v > PROTOCOL_VERSION) {
    fail0(`Cannot accept request head: protocol version ${typeof v === "number" ? String(v) : "missing"} is not ${MIN_PROTOCOL_VERSION}-${PROTOCOL_VERSION}`);
  }
  const method = str(map, "method", "method");
  if (!TOKEN.test(method)) fail("method", "a token", method);
  const uri = str(map, "uri", "uri");
  if (uri === "" || BAD_URI.test(uri)) fail("uri", "a request target without spaces or control characters", uri);
  const proto = str(map, "proto", "proto", "HTTP/1.1");
  if (proto !== "HTTP/1.1" && proto !== "HTTP/1.0") fail("proto", "HTTP/1.1 or HTTP/1.0", proto);
  const headers = pairs(map, "headers", "headers");
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] ?? "";
    const value = headers[i + 1] ?? "";
    if (!TOKEN.test(name)) fail(`headers[${i}]`, "a header name token", name);
    if (BAD_VALUE.test(value)) fail(`headers[${i + 1}]`, "a header value without CR, LF or NUL", value);
    headers[i + 1] = toByteString(value);
  }
  const head: RequestHead = {
    method,
    uri: toByteString(uri),
    proto,
    headers,
    remoteAddr: str(map, "remote_addr", "remote_addr", ""),
    remotePort: int(map, "remote_port", "remote_port", 0, 0, 65535),
    serverName: str(map, "server_name", "server_name", ""),
    serverPort: int(map, "server_port", "server_port", 0, 0, 65535),
    https: bool(map, "https", "https", false),
    hasBody: bool(map, "has_body", "has_body", false),
    upgrade: bool(map, "upgrade", "upgrade", false),
  };
  const generation = int(map, "gen", "gen", 0, 0);
  if (!has(map, "app")) fail("app", "a map", undefined);
  const env = pairs(map, "env", "env");
  const app = cachedAppOptions(subMap(map, "app", "app"), env);
  const held = has(map, "held") ? heldIds(map["held"]) : NO_HELD;
  return { head, app, generation, version: v, held };
}

const NO_HELD: readonly string[] = [];

function heldIds(v: unknown): readonly string[] {
  if (!Array.isArray(v) || v.length > MAX_HELD || !v.every((s) => typeof s === "string")) {
    return fail("held", `an array of at most ${MAX_HELD} strings`, v);
  }
  return v.length === 0 ? NO_HELD : (v as string[]);
}

/** Validated app options by their wire form: every request of a vhost carries the same `app` map. */
const appOptionsCache = new Map<string, AppOptions>();
const APP_OPTIONS_CACHE_MAX = 512;

/** validateAppOptions(), memoised on the wire map and env (AppOptions are read-only, so sharing is safe). */
function cachedAppOptions(app: WireMap, env: readonly string[]): AppOptions {
  const key = JSON.stringify(env.length === 0 ? app : [app, env]);
  const hit = appOptionsCache.get(key);
  if (hit !== undefined) return hit;
  const opts = validateAppOptions(app, env);
  if (appOptionsCache.size >= APP_OPTIONS_CACHE_MAX) appOptionsCache.clear();
  appOptionsCache.set(key, opts);
  return opts;
}

/**
 * Validate the `app` map and translate wire keys (snake_case, directive units)
 * into AppOptions. `env` is the flat [name, value, …] list of the request.
 */
export function validateAppOptions(app: WireMap, env: readonly string[] = []): AppOptions {
  const appRoot = str(app, "app_root", "app.app_root");
  if (!appRoot.startsWith("/")) fail("app.app_root", "an absolute path", appRoot);
  const given: Partial<Mutable<AppOptions>> = {};
  const optStr = (key: string, set: (s: string) => void): void => {
    if (has(app, key)) set(str(app, key, `app.${key}`));
  };
  const optInt = (key: string, min: number, set: (n: number) => void): void => {
    if (has(app, key)) set(int(app, key, `app.${key}`, min));
  };
  const optBool = (key: string, set: (b: boolean) => void): void => {
    if (has(app, key)) set(bool(app, key, `app.${key}`, false));
  };

  optStr("app_group_name", (s) => {
    if (s !== "") given.appGroupName = s;
  });
  optStr("app_type", (s) => {
    if (s !== "node" && s !== "generic") fail("app.app_type", "node or generic", s);
    given.appType = s satisfies AppType;
  });
  optStr("startup_file", (s) => {
    if (s !== "") given.startupFile = s;
  });
  optStr("app_start_command", (s) => (given.appStartCommand = s));
  optStr("app_env", (s) => {
    if (s !== "") given.appEnv = s;
  });
  optStr("nodejs", (s) => (given.nodejs = s));
  optStr("base_uri", (s) => {
    const b = s.replace(/\/+$/, "");
    if (b !== "" && !b.startsWith("/")) fail("app.base_uri", "empty or a path starting with /", s);
    given.baseURI = b;
  });
  optStr("document_root", () => undefined);
  optInt("min_instances", 0, (n) => (given.minInstances = n));
  optInt("max_instances_per_app", 0, (n) => (given.maxInstancesPerApp = n));
  optInt("max_requests", 0, (n) => (given.maxRequests = n));
  optInt("max_request_queue_size", 0, (n) => (given.maxRequestQueueSize = n));
  optInt("force_max_concurrent_requests_per_process", -1, (n) => (given.maxConcurrentRequestsPerProcess = n === -1 ? 0 : n));
  optInt("start_timeout", 1, (n) => (given.startTimeoutMs = n * 1000));
  optStr("restart_dir", (s) => {
    if (s !== "") given.restartDir = s;
  });
  optBool("sticky_sessions", (b) => (given.stickySessions = b));
  optStr("sticky_sessions_cookie_name", (s) => {
    if (!TOKEN.test(s)) fail("app.sticky_sessions_cookie_name", "a cookie name token", s);
    given.stickySessionsCookieName = s;
  });
  optStr("sticky_sessions_cookie_attributes", (s) => {
    if (BAD_VALUE.test(s)) fail("app.sticky_sessions_cookie_attributes", "a string without CR, LF or NUL", s);
    given.stickySessionsCookieAttributes = s;
  });
  optBool("friendly_error_pages", (b) => (given.friendlyErrorPages = b));
  optStr("user", (s) => (given.user = s));
  optStr("group", (s) => (given.group = s));
  optBool("load_shell_envvars", (b) => (given.loadShellEnvvars = b));
  optInt("memory_limit", 0, (n) => (given.memoryLimitMB = n));
  optInt("max_request_time", 0, (n) => (given.maxRequestTimeMs = n * 1000));
  optStr("app_log_file", (s) => (given.appLogFile = s));
  optInt("app_file_descriptor_ulimit", 0, (n) => (given.fileDescriptorUlimit = n));
  optBool("abort_websockets_on_process_shutdown", (b) => (given.abortWebsocketsOnProcessShutdown = b));
  optBool("show_version_in_header", (b) => (given.showVersionInHeader = b));

  if (env.length > 0) {
    const vars: Record<string, string> = {};
    for (let i = 0; i < env.length; i += 2) {
      const name = env[i] ?? "";
      if (name === "" || name.includes("=") || name.includes("\0")) fail(`env[${i}]`, "an environment variable name", name);
      const value = env[i + 1] ?? "";
      if (value.includes("\0")) fail(`env[${i + 1}]`, "a value without NUL", value);
      Object.defineProperty(vars, name, { value, enumerable: true, writable: true, configurable: true });
    }
    given.env = vars;
  }
  return makeAppOptions(appRoot, given);
}
