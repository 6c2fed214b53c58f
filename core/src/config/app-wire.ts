/**
 * The app options' wire form (docs/protocol.md, "App options": snake_case
 * directive names in directive units, as mod_ferry sends them in every
 * REQUEST_HEAD) → AppOptions, or a ProtocolError naming the bad key.
 */
import { MAX_MEMORY_LIMIT_MB, MAX_TIMER_SECONDS, makeAppOptions, type AppOptions, type AppType } from "./schema.js";
import type { WireMap } from "../protocol/frames.js";
import { BAD_VALUE, TOKEN, bool, fail, has, int, str } from "../protocol/wire-fields.js";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Validated app options by their wire form: every request of a vhost carries the same `app` map. */
const appOptionsCache = new Map<string, AppOptions>();
const APP_OPTIONS_CACHE_MAX = 512;

/** validateAppOptions(), memoised on the wire map and env (AppOptions are read-only, so sharing is safe). */
export function cachedAppOptions(app: WireMap, env: readonly string[]): AppOptions {
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
  const optInt = (key: string, min: number, set: (n: number) => void, max?: number): void => {
    if (has(app, key)) set(int(app, key, `app.${key}`, min, undefined, max));
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
  optInt("max_request_queue_time", 0, (n) => (given.maxRequestQueueTimeMs = n * 1000), MAX_TIMER_SECONDS);
  optInt("force_max_concurrent_requests_per_process", -1, (n) => (given.maxConcurrentRequestsPerProcess = n === -1 ? 0 : n));
  optInt("start_timeout", 1, (n) => (given.startTimeoutMs = n * 1000), MAX_TIMER_SECONDS);
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
  optInt("memory_limit", 0, (n) => (given.memoryLimitMB = n), MAX_MEMORY_LIMIT_MB);
  optInt("max_request_time", 0, (n) => (given.maxRequestTimeMs = n * 1000), MAX_TIMER_SECONDS);
  optStr("app_log_file", (s) => (given.appLogFile = s));
  optStr("custom_error_page", (s) => {
    if (s !== "" && !s.startsWith("/")) fail("app.custom_error_page", "an absolute path", s);
    given.customErrorPage = s;
  });
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
