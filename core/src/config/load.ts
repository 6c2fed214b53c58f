/**
 * unknown → validated configuration. One table (STANDALONE_OPTIONS) lists every
 * option `ferry start` takes, under its Passengerfile.json key (snake_case, as
 * `passenger start`), its flag (kebab-case) and its environment variable
 * (PASSENGER_<KEY>). Values from the file, the environment and the command line
 * are checked here; a bad one is a ConfigError naming the key, where it came
 * from, and what it accepts.
 *
 * Precedence (Passenger's): defaults < Passengerfile.json / ferry.json < PASSENGER_* < flags.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { ConfigError } from "../errors.js";
import {
  MAX_MEMORY_LIMIT_MB, MAX_TIMER_SECONDS, SERVER_DEFAULTS, makeAppOptions, type AppOptions, type ServerOptions,
} from "./schema.js";

type Kind =
  | { readonly t: "int"; readonly min: number; readonly max: number }
  /** A duration in seconds (may be fractional), stored in ms. */
  | { readonly t: "seconds"; readonly min: number; readonly max: number }
  | { readonly t: "bool" }
  | { readonly t: "string"; readonly nonEmpty?: boolean; readonly pattern?: RegExp; readonly what?: string }
  | { readonly t: "enum"; readonly values: readonly string[] }
  | { readonly t: "envvars" };

type Target = "listen" | "app" | "server" | "both";

export interface OptionSpec {
  /** Passengerfile.json key. */
  readonly key: string;
  /** Command-line flag without dashes. */
  readonly flag: string;
  readonly target: Target;
  /** Field in AppOptions / ServerOptions / ListenOptions. */
  readonly field: string;
  readonly kind: Kind;
  readonly help: string;
}

const INT_MAX = 2_147_483_647;

export const STANDALONE_OPTIONS: readonly OptionSpec[] = [
  { key: "port", flag: "port", target: "listen", field: "port", kind: { t: "int", min: 0, max: 65535 }, help: "TCP port to listen on (default 3000; 0 = any free port)" },
  { key: "address", flag: "address", target: "listen", field: "address", kind: { t: "string", nonEmpty: true }, help: "address to bind (default 127.0.0.1)" },
  { key: "environment", flag: "environment", target: "app", field: "appEnv", kind: { t: "string", nonEmpty: true }, help: "app environment (default development)" },
  { key: "app_type", flag: "app-type", target: "app", field: "appType", kind: { t: "enum", values: ["node", "generic"] }, help: "node or generic (default node)" },
  { key: "startup_file", flag: "startup-file", target: "app", field: "startupFile", kind: { t: "string", nonEmpty: true }, help: "startup file relative to the app dir (default app.js)" },
  { key: "app_start_command", flag: "app-start-command", target: "app", field: "appStartCommand", kind: { t: "string" }, help: "command for a generic app; $PORT is the port to listen on" },
  { key: "nodejs", flag: "nodejs", target: "app", field: "nodejs", kind: { t: "string" }, help: "node interpreter (default the one running ferry)" },
  { key: "envvars", flag: "envvar", target: "app", field: "env", kind: { t: "envvars" }, help: "environment variable NAME=VALUE for the app (repeatable)" },
  { key: "min_instances", flag: "min-instances", target: "app", field: "minInstances", kind: { t: "int", min: 0, max: 10000 }, help: "processes kept alive (default 1)" },
  { key: "max_pool_size", flag: "max-pool-size", target: "server", field: "maxPoolSize", kind: { t: "int", min: 1, max: 10000 }, help: "maximum processes (default 6)" },
  { key: "max_instances_per_app", flag: "max-instances-per-app", target: "both", field: "maxInstancesPerApp", kind: { t: "int", min: 0, max: 10000 }, help: "maximum processes of the app (0 = pool limit)" },
  { key: "pool_idle_time", flag: "pool-idle-time", target: "server", field: "poolIdleTimeMs", kind: { t: "seconds", min: 0, max: INT_MAX }, help: "seconds before an idle process above the minimum is retired (default 300)" },
  { key: "max_requests", flag: "max-requests", target: "app", field: "maxRequests", kind: { t: "int", min: 0, max: INT_MAX }, help: "recycle a process after this many requests (0 = never)" },
  { key: "max_request_queue_size", flag: "max-request-queue-size", target: "app", field: "maxRequestQueueSize", kind: { t: "int", min: 0, max: INT_MAX }, help: "requests waiting for a process before 503 (default 100; 0 = unbounded)" },
  { key: "max_request_queue_time", flag: "max-request-queue-time", target: "app", field: "maxRequestQueueTimeMs", kind: { t: "seconds", min: 0, max: MAX_TIMER_SECONDS }, help: "seconds a request may wait in the queue before 504 (default 0 = no limit)" },
  { key: "force_max_concurrent_requests_per_process", flag: "force-max-concurrent-requests-per-process", target: "app", field: "maxConcurrentRequestsPerProcess", kind: { t: "int", min: -1, max: INT_MAX }, help: "in-flight requests per process (0 or -1 = unlimited, scale by load)" },
  { key: "start_timeout", flag: "start-timeout", target: "app", field: "startTimeoutMs", kind: { t: "seconds", min: 1, max: MAX_TIMER_SECONDS }, help: "seconds an app may take to start listening (default 90)" },
  { key: "restart_dir", flag: "restart-dir", target: "app", field: "restartDir", kind: { t: "string", nonEmpty: true }, help: "dir of restart.txt, relative to the app dir (default tmp)" },
  { key: "sticky_sessions", flag: "sticky-sessions", target: "app", field: "stickySessions", kind: { t: "bool" }, help: "pin clients to a process with a cookie" },
  { key: "sticky_sessions_cookie_name", flag: "sticky-sessions-cookie-name", target: "app", field: "stickySessionsCookieName", kind: { t: "string", nonEmpty: true, pattern: /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, what: "a cookie name (token characters)" }, help: "sticky cookie name (default _passenger_route)" },
  { key: "sticky_sessions_cookie_attributes", flag: "sticky-sessions-cookie-attributes", target: "app", field: "stickySessionsCookieAttributes", kind: { t: "string", pattern: /^[^\r\n]*$/, what: "cookie attributes on one line" }, help: "sticky cookie attributes (default \"SameSite=Lax\")" },
  { key: "friendly_error_pages", flag: "friendly-error-pages", target: "app", field: "friendlyErrorPages", kind: { t: "bool" }, help: "show errors and app output in error pages (default on in development)" },
  { key: "max_request_time", flag: "max-request-time", target: "app", field: "maxRequestTimeMs", kind: { t: "seconds", min: 0, max: MAX_TIMER_SECONDS }, help: "seconds before a request is cut with 504 and its process recycled (0 = none)" },
  { key: "memory_limit", flag: "memory-limit", target: "app", field: "memoryLimitMB", kind: { t: "int", min: 0, max: MAX_MEMORY_LIMIT_MB }, help: "MB of memory after which a process is recycled (0 = none)" },
  { key: "abort_websockets_on_process_shutdown", flag: "abort-websockets-on-process-shutdown", target: "app", field: "abortWebsocketsOnProcessShutdown", kind: { t: "bool" }, help: "close WebSockets when their process shuts down (default on)" },
  { key: "show_version_in_header", flag: "show-version-in-header", target: "app", field: "showVersionInHeader", kind: { t: "bool" }, help: "X-Powered-By carries the version (default on)" },
  { key: "load_shell_envvars", flag: "load-shell-envvars", target: "app", field: "loadShellEnvvars", kind: { t: "bool" }, help: "start the app through a login shell" },
  { key: "user", flag: "user", target: "app", field: "user", kind: { t: "string" }, help: "run the app as this user (when started as root)" },
  { key: "stat_throttle_rate", flag: "stat-throttle-rate", target: "server", field: "statThrottleRateMs", kind: { t: "seconds", min: 0, max: INT_MAX }, help: "seconds between restart.txt checks (default 1)" },
  { key: "log_level", flag: "log-level", target: "server", field: "logLevel", kind: { t: "int", min: 0, max: 7 }, help: "0 (crit) … 7 (debug3), default 3" },
  { key: "log_file", flag: "log-file", target: "server", field: "logFile", kind: { t: "string" }, help: "log file (default stderr)" },
  { key: "app_log_file", flag: "app-log-file", target: "app", field: "appLogFile", kind: { t: "string" }, help: "the app's stdout/stderr also go to this file (relative to the app dir; opened as the app's user)" },
  { key: "log_format", flag: "log-format", target: "server", field: "logFormat", kind: { t: "enum", values: ["text", "json"] }, help: "text (readable lines, default) or json (one JSON object a line, for log shippers)" },
  { key: "health_check_path", flag: "health-check-path", target: "server", field: "healthCheckPath", kind: { t: "string", pattern: /^(\/[^\s]*)?$/, what: "a path starting with /" }, help: "GET this path on each process every interval; failing processes are replaced (default off)" },
  { key: "health_check_interval", flag: "health-check-interval", target: "server", field: "healthCheckIntervalMs", kind: { t: "seconds", min: 1, max: 86_400 }, help: "seconds between health checks of a process (default 10)" },
  { key: "health_check_timeout", flag: "health-check-timeout", target: "server", field: "healthCheckTimeoutMs", kind: { t: "seconds", min: 1, max: 3_600 }, help: "seconds a health check may take (default 5)" },
  { key: "health_check_failures", flag: "health-check-failures", target: "server", field: "healthCheckFailures", kind: { t: "int", min: 1, max: 1000 }, help: "failed health checks in a row before the process is replaced (default 3)" },
  { key: "health_check_event_loop_timeout", flag: "health-check-event-loop-timeout", target: "server", field: "healthCheckEventLoopTimeoutMs", kind: { t: "seconds", min: 0, max: 86_400 }, help: "seconds without an event-loop report before a Node process counts as stuck and is replaced (default 30; 0 = off)" },
  { key: "metrics_listen", flag: "metrics-listen", target: "server", field: "metricsListen", kind: { t: "string", pattern: /^(\S+:)?\d{1,5}$/, what: "ADDR:PORT or a port" }, help: "serve Prometheus metrics at http://ADDR:PORT/metrics (default off; a bare port binds 127.0.0.1)" },
  { key: "instance_registry_dir", flag: "instance-registry-dir", target: "server", field: "instanceRegistryDir", kind: { t: "string", nonEmpty: true }, help: "where the instance dir (control socket) is created (default $TMPDIR or /tmp)" },
  { key: "header_timeout", flag: "header-timeout", target: "server", field: "headerTimeoutMs", kind: { t: "seconds", min: 1, max: 3_600 }, help: "seconds a client may take to send the request head (default 60)" },
  { key: "request_timeout", flag: "request-timeout", target: "server", field: "requestTimeoutMs", kind: { t: "seconds", min: 0, max: MAX_TIMER_SECONDS }, help: "seconds for the whole request to arrive (else 408) and the app's response head to go out (else 504); 0 = none (default 300)" },
  { key: "connection_handoff", flag: "connection-handoff", target: "server", field: "connectionHandoff", kind: { t: "bool" }, help: "hand client connections to the app processes, which serve them with no proxy hop (Node apps without sticky sessions or a concurrency limit; default on; --no-connection-handoff relays every request)" },
  { key: "admin_group", flag: "admin-group", target: "server", field: "adminGroup", kind: { t: "string", nonEmpty: true }, help: "group whose members may run ferry status (default: root and this user only)" },
  { key: "affinity_redis", flag: "affinity-redis", target: "server", field: "affinityRedis", kind: { t: "string", pattern: /^(redis:\/\/|rediss:\/\/|unix:\/)\S+$/, what: "redis://host:port/db, rediss://host:port/db or unix:/path" }, help: "Redis shared by several hosts for sticky sessions (docs/affinity.md)" },
  { key: "affinity_node_name", flag: "affinity-node-name", target: "server", field: "affinityNodeName", kind: { t: "string", nonEmpty: true }, help: "this host's name in the affinity cluster (default the host name)" },
  { key: "affinity_listen", flag: "affinity-listen", target: "server", field: "affinityListen", kind: { t: "string", pattern: /^\S+:\d{1,5}$/, what: "ADDR:PORT" }, help: "ADDR:PORT where forwarded requests from peer hosts are accepted" },
  { key: "affinity_secret_file", flag: "affinity-secret-file", target: "server", field: "affinitySecretFile", kind: { t: "string", nonEmpty: true }, help: "file with the secret shared by the hosts (required with --affinity-redis)" },
  { key: "affinity_ttl", flag: "affinity-ttl", target: "server", field: "affinityTtlMs", kind: { t: "seconds", min: 1, max: 31_536_000 }, help: "seconds a session stays pinned after its last request (default 1800)" },
  { key: "affinity_redis_timeout", flag: "affinity-redis-timeout", target: "server", field: "affinityRedisTimeoutMs", kind: { t: "int", min: 1, max: 60_000 }, help: "milliseconds a request may wait for Redis (default 50)" },
  { key: "affinity_tls_cert_file", flag: "affinity-tls-cert-file", target: "server", field: "affinityTlsCertFile", kind: { t: "string", nonEmpty: true }, help: "PEM certificate: serve peers over TLS (with --affinity-tls-key-file)" },
  { key: "affinity_tls_key_file", flag: "affinity-tls-key-file", target: "server", field: "affinityTlsKeyFile", kind: { t: "string", nonEmpty: true }, help: "PEM private key of --affinity-tls-cert-file" },
  { key: "affinity_tls_ca_file", flag: "affinity-tls-ca-file", target: "server", field: "affinityTlsCaFile", kind: { t: "string", nonEmpty: true }, help: "PEM CA of the peers' certificates (default the system CAs)" },
];

export interface ListenOptions {
  readonly port: number;
  readonly address: string;
}

export interface StandaloneConfig {
  readonly appRoot: string;
  readonly listen: ListenOptions;
  readonly app: AppOptions;
  readonly server: ServerOptions;
  /** The config file that was read, if any. */
  readonly configFile: string;
  /** Passenger-only keys of that file that Ferry ignored (PASSENGER_IGNORED_KEYS). */
  readonly ignoredKeys: readonly string[];
}

/** Values for one source: key → raw value (file: JSON values; env/flags: strings, booleans, string lists). */
export type RawValues = Readonly<Record<string, unknown>>;

function describe(kind: Kind): string {
  switch (kind.t) {
    case "int": return `an integer ${kind.min}-${kind.max}`;
    case "seconds": return `a number of seconds ${kind.min}-${kind.max}`;
    case "bool": return "true or false";
    case "string": return kind.what ?? (kind.nonEmpty === true ? "a non-empty string" : "a string");
    case "enum": return kind.values.join(" or ");
    case "envvars": return 'an object {"NAME": "value"} or NAME=VALUE strings';
  }
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parse one value of an option; `where` names the source in errors. */
export function parseOptionValue(spec: OptionSpec, raw: unknown, where: string): unknown {
  const bad = (): ConfigError =>
    new ConfigError(`Cannot use ${where} "${spec.key}" = ${JSON.stringify(raw)}: expected ${describe(spec.kind)}`);
  const k = spec.kind;
  switch (k.t) {
    case "int": {
      const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isInteger(n) || n < k.min || n > k.max) throw bad();
      return n;
    }
    case "seconds": {
      const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(n) || n < k.min || n > k.max) throw bad();
      return Math.round(n * 1000);
    }
    case "bool": {
      if (typeof raw === "boolean") return raw;
      if (typeof raw === "string") {
        const s = raw.trim().toLowerCase();
        if (["true", "on", "yes", "1"].includes(s)) return true;
        if (["false", "off", "no", "0"].includes(s)) return false;
      }
      throw bad();
    }
    case "string": {
      if (typeof raw !== "string") throw bad();
      if (k.nonEmpty === true && raw.trim() === "") throw bad();
      if (k.pattern !== undefined && !k.pattern.test(raw)) throw bad();
      return raw;
    }
    case "enum": {
      if (typeof raw !== "string" || !k.values.includes(raw)) throw bad();
      return raw;
    }
    case "envvars": {
      const out: Record<string, string> = {};
      const add = (name: string, value: unknown): void => {
        if (!ENV_NAME.test(name) || (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean")) throw bad();
        out[name] = String(value);
      };
      const addPair = (s: unknown): void => {
        if (typeof s !== "string") throw bad();
        const eq = s.indexOf("=");
        if (eq <= 0) throw bad();
        add(s.slice(0, eq), s.slice(eq + 1));
      };
      if (Array.isArray(raw)) for (const s of raw) addPair(s);
      else if (typeof raw === "string") addPair(raw);
      else if (typeof raw === "object" && raw !== null) for (const [n, v] of Object.entries(raw)) add(n, v);
      else throw bad();
      return out;
    }
  }
}

/**
 * Passenger Standalone's own Passengerfile.json keys that do not apply to Ferry
 * (its Nginx engine, Ruby/Python, daemonizing, SSL termination, Enterprise
 * knobs): an existing Passengerfile keeps working; `ferry start` prints one
 * notice per key instead of failing.
 */
export const PASSENGER_IGNORED_KEYS: ReadonlySet<string> = new Set([
  "engine", "daemonize", "pid_file", "socket", "ssl", "ssl_certificate", "ssl_certificate_key", "ssl_port",
  "nginx_bin", "nginx_version", "nginx_config_template", "binaries_url_root", "dont_install_runtime",
  "runtime_check_only", "spawn_method", "max_preloader_idle_time", "ruby", "python", "rackup",
  "meteor_app_settings", "static_files_dir", "turbocaching", "unlimited_concurrency_path", "data_buffer_dir",
  "concurrency_model", "thread_count", "rolling_restarts", "resist_deployment_errors", "debugger",
  "disable_security_update_check", "security_update_check_proxy", "disable_anonymous_telemetry",
  "anonymous_telemetry_proxy", "admin_panel_url", "admin_panel_auth_type", "admin_panel_username",
  "admin_panel_password", "core_file_descriptor_ulimit", "user", "union_station_key",
  "vary_turbocache_by_cookie", "disable_turbocaching", "spawn_dir", "direct_instance_request_address",
]);

/**
 * Parse a Passengerfile-style map; unknown keys are an error (they are usually
 * typos), except Passenger's own keys that do not apply to Ferry: those are
 * listed in `ignored` (when given) and otherwise skipped.
 */
export function parseConfigMap(
  v: unknown,
  where: string,
  specs: readonly OptionSpec[] = STANDALONE_OPTIONS,
  ignored?: string[],
): Map<OptionSpec, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ConfigError(`Cannot read ${where}: expected a JSON object`);
  }
  const out = new Map<OptionSpec, unknown>();
  for (const [key, raw] of Object.entries(v)) {
    const spec = specs.find((s) => s.key === key);
    if (spec === undefined && PASSENGER_IGNORED_KEYS.has(key)) {
      ignored?.push(key);
      continue;
    }
    if (spec === undefined) {
      throw new ConfigError(`Cannot use ${where} key "${key}": unknown option (known: ${specs.map((s) => s.key).join(", ")})`);
    }
    out.set(spec, parseOptionValue(spec, raw, where));
  }
  return out;
}

/** Values from PASSENGER_<KEY> environment variables. */
export function parseEnvValues(env: Readonly<Record<string, string | undefined>>): Map<OptionSpec, unknown> {
  const out = new Map<OptionSpec, unknown>();
  for (const spec of STANDALONE_OPTIONS) {
    const name = `PASSENGER_${spec.key.toUpperCase()}`;
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    if (spec.kind.t === "envvars") continue;
    out.set(spec, parseOptionValue(spec, raw, `environment variable ${name} for`));
  }
  return out;
}

/** Values from parsed flags (util.parseArgs values keyed by flag name). */
export function parseFlagValues(flags: RawValues): Map<OptionSpec, unknown> {
  const out = new Map<OptionSpec, unknown>();
  for (const spec of STANDALONE_OPTIONS) {
    const raw = flags[spec.flag];
    if (raw === undefined) continue;
    out.set(spec, parseOptionValue(spec, raw, `flag --${spec.flag} for`));
  }
  // Every on/off option also has a --no-<flag> form.
  for (const spec of STANDALONE_OPTIONS) {
    if (spec.kind.t === "bool" && flags[`no-${spec.flag}`] === true) out.set(spec, false);
  }
  return out;
}

/** Read `Passengerfile.json` or `ferry.json` in the app dir (the first that exists). */
export async function readAppConfigFile(appDir: string): Promise<{ file: string; value: unknown } | undefined> {
  for (const name of ["Passengerfile.json", "ferry.json"]) {
    const file = path.join(appDir, name);
    let text: string;
    try {
      text = await fsp.readFile(file, "utf8");
    } catch (e: unknown) {
      if (typeof e === "object" && e !== null && Reflect.get(e, "code") === "ENOENT") continue;
      throw new ConfigError(`Cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    try {
      return { file, value: JSON.parse(text) };
    } catch (e: unknown) {
      throw new ConfigError(`Cannot parse ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  return undefined;
}

export interface ResolveInput {
  /** Absolute app dir. */
  readonly appRoot: string;
  readonly file?: { readonly file: string; readonly value: unknown } | undefined;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly flags?: RawValues;
}

/** Combine the sources (defaults < file < env < flags) into a validated StandaloneConfig. */
export function resolveStandaloneConfig(input: ResolveInput): StandaloneConfig {
  const env = input.env ?? {};
  const layers: Array<Map<OptionSpec, unknown>> = [];
  const ignoredKeys: string[] = [];
  if (input.file !== undefined) layers.push(parseConfigMap(input.file.value, path.basename(input.file.file), STANDALONE_OPTIONS, ignoredKeys));
  layers.push(parseEnvValues(env));
  layers.push(parseFlagValues(input.flags ?? {}));

  const listen: Record<string, unknown> = { port: 3000, address: "127.0.0.1" };
  const app: Record<string, unknown> = {};
  // ferry start hands connections to the app processes unless told not to (docs/standalone.md).
  const server: Record<string, unknown> = { ...SERVER_DEFAULTS, connectionHandoff: true, instanceRegistryDir: defaultRegistryDir(env) };
  const envvars: Record<string, string> = {};
  for (const layer of layers) {
    for (const [spec, value] of layer) {
      if (spec.kind.t === "envvars") {
        Object.assign(envvars, value);
        continue;
      }
      if (spec.target === "listen") listen[spec.field] = value;
      if (spec.target === "app" || spec.target === "both") app[spec.field] = value;
      if (spec.target === "server" || spec.target === "both") server[spec.field] = value;
    }
  }
  // passenger start: the environment comes from the flag/file, else RAILS_ENV/RACK_ENV/NODE_ENV/PASSENGER_APP_ENV, else development.
  if (app["appEnv"] === undefined) {
    app["appEnv"] = env["PASSENGER_APP_ENV"] ?? env["NODE_ENV"] ?? env["RACK_ENV"] ?? env["RAILS_ENV"] ?? "development";
  }
  // Passenger's -1 ("not forced": use the app's own value) is unlimited for Node and generic apps.
  if (app["maxConcurrentRequestsPerProcess"] === -1) app["maxConcurrentRequestsPerProcess"] = 0;
  // As in Passenger (and PassengerAppStartCommand in module mode), a start command makes the app generic.
  if (app["appType"] === undefined && typeof app["appStartCommand"] === "string" && app["appStartCommand"].trim() !== "") {
    app["appType"] = "generic";
  }
  app["env"] = envvars;
  const appOptions = makeAppOptions(input.appRoot, app as Partial<AppOptions>);
  if (appOptions.appType === "generic" && appOptions.appStartCommand === "") {
    throw new ConfigError('Cannot use app_type "generic": app_start_command is required (a command with $PORT)');
  }
  return {
    appRoot: input.appRoot,
    listen: listen as unknown as ListenOptions,
    app: appOptions,
    server: server as unknown as ServerOptions,
    configFile: input.file?.file ?? "",
    ignoredKeys,
  };
}

/** $TMPDIR or /tmp, as Passenger's default instance registry dir. */
export function defaultRegistryDir(env: Readonly<Record<string, string | undefined>>): string {
  const t = env["TMPDIR"];
  return t !== undefined && t !== "" ? t : "/tmp";
}
