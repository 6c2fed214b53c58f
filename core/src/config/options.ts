/**
 * The one table of Ferry's options: for each, its snake_case key, the field it
 * sets in AppOptions / ServerOptions / ListenOptions, its type and range, and
 * where it is read. Defaults are schema.ts's (APP_DEFAULTS, SERVER_DEFAULTS).
 *
 * Three readers serve from it, each with its source's error wording:
 * - `ferry start` (config/standalone-config.ts): Passengerfile.json key, `--flag`, PASSENGER_<KEY>;
 * - the core config file mod_ferry writes (config/core-config.ts): the `server` map (`core`);
 * - the app map of every REQUEST_HEAD (config/app-wire.ts): its key there (`wire`).
 * The Apache and nginx modules check their directives to the same ranges
 * (apache-module/ferry_config.c, nginx-module/ngx_http_ferry_config.c).
 */
import { MAX_MEMORY_LIMIT_MB, MAX_TIMER_SECONDS } from "./schema.js";

export type Kind =
  | { readonly t: "int"; readonly min: number; readonly max: number }
  /** A duration in seconds, stored in ms (fractional from `ferry start` and the core config; whole on the wire). */
  | { readonly t: "seconds"; readonly min: number; readonly max: number }
  | { readonly t: "bool" }
  /**
   * `nonEmpty`: `ferry start` refuses "", the wire takes "" as "not set".
   * `pattern` is checked on `ferry start` input and on the wire; the core
   * config's strings are the directives' own, checked by the module.
   */
  | { readonly t: "string"; readonly nonEmpty?: boolean; readonly pattern?: RegExp; readonly what?: string }
  | { readonly t: "enum"; readonly values: readonly string[] }
  | { readonly t: "envvars" };

export type Target = "listen" | "app" | "server" | "both";

export interface OptionSpec {
  /** Passengerfile.json key, and the core config's `server` key. */
  readonly key: string;
  readonly target: Target;
  /** Field in AppOptions / ServerOptions / ListenOptions. */
  readonly field: string;
  readonly kind: Kind;
  /** `ferry start` flag without dashes; absent: not a `ferry start` option. */
  readonly flag?: string;
  /** `ferry start --help` text (with a flag). */
  readonly help?: string;
  /** A key of the core config's `server` map (docs/core-config.md). */
  readonly core?: true;
  /** Its key in a REQUEST_HEAD's `app` map (docs/protocol.md, "App options"). */
  readonly wire?: string;
}

/** An option `ferry start` takes. */
export type StandaloneOptionSpec = OptionSpec & { readonly flag: string; readonly help: string };

const INT_MAX = 2_147_483_647;
/** The directives' longest duration: one year. */
const YEAR_SECONDS = 31_536_000;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export const OPTIONS: readonly OptionSpec[] = [
  { key: "port", flag: "port", target: "listen", field: "port", kind: { t: "int", min: 0, max: 65535 }, help: "TCP port to listen on (default 3000; 0 = any free port)" },
  { key: "address", flag: "address", target: "listen", field: "address", kind: { t: "string", nonEmpty: true }, help: "address to bind (default 127.0.0.1)" },
  { key: "environment", wire: "app_env", flag: "environment", target: "app", field: "appEnv", kind: { t: "string", nonEmpty: true }, help: "app environment (default development)" },
  { key: "app_type", wire: "app_type", flag: "app-type", target: "app", field: "appType", kind: { t: "enum", values: ["node", "generic"] }, help: "node or generic (default node)" },
  { key: "startup_file", wire: "startup_file", flag: "startup-file", target: "app", field: "startupFile", kind: { t: "string", nonEmpty: true }, help: "startup file relative to the app dir (default app.js)" },
  { key: "app_start_command", wire: "app_start_command", flag: "app-start-command", target: "app", field: "appStartCommand", kind: { t: "string" }, help: "command for a generic app; $PORT is the port to listen on" },
  { key: "nodejs", wire: "nodejs", flag: "nodejs", target: "app", field: "nodejs", kind: { t: "string" }, help: "node interpreter (default the one running ferry)" },
  { key: "envvars", flag: "envvar", target: "app", field: "env", kind: { t: "envvars" }, help: "environment variable NAME=VALUE for the app (repeatable)" },
  { key: "min_instances", wire: "min_instances", flag: "min-instances", target: "app", field: "minInstances", kind: { t: "int", min: 0, max: 10000 }, help: "processes kept alive (default 1)" },
  { key: "max_pool_size", core: true, flag: "max-pool-size", target: "server", field: "maxPoolSize", kind: { t: "int", min: 1, max: 10000 }, help: "maximum processes (default 6)" },
  { key: "max_instances_per_app", core: true, wire: "max_instances_per_app", flag: "max-instances-per-app", target: "both", field: "maxInstancesPerApp", kind: { t: "int", min: 0, max: 10000 }, help: "maximum processes of the app (0 = pool limit)" },
  { key: "pool_idle_time", core: true, flag: "pool-idle-time", target: "server", field: "poolIdleTimeMs", kind: { t: "seconds", min: 0, max: YEAR_SECONDS }, help: "seconds before an idle process above the minimum is retired (default 300)" },
  { key: "max_requests", wire: "max_requests", flag: "max-requests", target: "app", field: "maxRequests", kind: { t: "int", min: 0, max: INT_MAX }, help: "recycle a process after this many requests (0 = never)" },
  { key: "max_request_queue_size", wire: "max_request_queue_size", flag: "max-request-queue-size", target: "app", field: "maxRequestQueueSize", kind: { t: "int", min: 0, max: INT_MAX }, help: "requests waiting for a process before 503 (default 100; 0 = unbounded)" },
  { key: "max_request_queue_time", wire: "max_request_queue_time", flag: "max-request-queue-time", target: "app", field: "maxRequestQueueTimeMs", kind: { t: "seconds", min: 0, max: MAX_TIMER_SECONDS }, help: "seconds a request may wait in the queue before 504 (default 0 = no limit)" },
  { key: "force_max_concurrent_requests_per_process", wire: "force_max_concurrent_requests_per_process", flag: "force-max-concurrent-requests-per-process", target: "app", field: "maxConcurrentRequestsPerProcess", kind: { t: "int", min: -1, max: INT_MAX }, help: "in-flight requests per process (0 or -1 = unlimited, scale by load)" },
  { key: "start_timeout", wire: "start_timeout", flag: "start-timeout", target: "app", field: "startTimeoutMs", kind: { t: "seconds", min: 1, max: MAX_TIMER_SECONDS }, help: "seconds an app may take to start listening (default 90)" },
  { key: "restart_dir", wire: "restart_dir", flag: "restart-dir", target: "app", field: "restartDir", kind: { t: "string", nonEmpty: true }, help: "dir of restart.txt, relative to the app dir (default tmp)" },
  { key: "sticky_sessions", wire: "sticky_sessions", flag: "sticky-sessions", target: "app", field: "stickySessions", kind: { t: "bool" }, help: "pin clients to a process with a cookie" },
  { key: "sticky_sessions_cookie_name", wire: "sticky_sessions_cookie_name", flag: "sticky-sessions-cookie-name", target: "app", field: "stickySessionsCookieName", kind: { t: "string", pattern: TOKEN, what: "a cookie name token" }, help: "sticky cookie name (default _passenger_route)" },
  { key: "sticky_sessions_cookie_attributes", wire: "sticky_sessions_cookie_attributes", flag: "sticky-sessions-cookie-attributes", target: "app", field: "stickySessionsCookieAttributes", kind: { t: "string", pattern: /^[^\r\n\0]*$/, what: "a string without CR, LF or NUL" }, help: "sticky cookie attributes (default \"SameSite=Lax\")" },
  { key: "friendly_error_pages", wire: "friendly_error_pages", flag: "friendly-error-pages", target: "app", field: "friendlyErrorPages", kind: { t: "bool" }, help: "show errors and app output in error pages (default on in development)" },
  { key: "max_request_time", wire: "max_request_time", flag: "max-request-time", target: "app", field: "maxRequestTimeMs", kind: { t: "seconds", min: 0, max: MAX_TIMER_SECONDS }, help: "seconds before a request is cut with 504 and its process recycled (0 = none)" },
  { key: "memory_limit", wire: "memory_limit", flag: "memory-limit", target: "app", field: "memoryLimitMB", kind: { t: "int", min: 0, max: MAX_MEMORY_LIMIT_MB }, help: "MB of memory after which a process is recycled (0 = none)" },
  { key: "abort_websockets_on_process_shutdown", wire: "abort_websockets_on_process_shutdown", flag: "abort-websockets-on-process-shutdown", target: "app", field: "abortWebsocketsOnProcessShutdown", kind: { t: "bool" }, help: "close WebSockets when their process shuts down (default on)" },
  { key: "show_version_in_header", wire: "show_version_in_header", flag: "show-version-in-header", target: "app", field: "showVersionInHeader", kind: { t: "bool" }, help: "X-Powered-By carries the version (default on)" },
  { key: "load_shell_envvars", wire: "load_shell_envvars", flag: "load-shell-envvars", target: "app", field: "loadShellEnvvars", kind: { t: "bool" }, help: "start the app through a login shell" },
  { key: "user", wire: "user", flag: "user", target: "app", field: "user", kind: { t: "string" }, help: "run the app as this user (when started as root)" },
  { key: "stat_throttle_rate", core: true, flag: "stat-throttle-rate", target: "server", field: "statThrottleRateMs", kind: { t: "seconds", min: 0, max: 86_400 }, help: "seconds between restart.txt checks (default 1)" },
  { key: "log_level", core: true, flag: "log-level", target: "server", field: "logLevel", kind: { t: "int", min: 0, max: 7 }, help: "0 (crit) … 7 (debug3), default 3" },
  { key: "log_file", core: true, flag: "log-file", target: "server", field: "logFile", kind: { t: "string" }, help: "log file (default stderr)" },
  { key: "app_log_file", wire: "app_log_file", flag: "app-log-file", target: "app", field: "appLogFile", kind: { t: "string" }, help: "the app's stdout/stderr also go to this file (relative to the app dir; opened as the app's user)" },
  { key: "log_format", core: true, flag: "log-format", target: "server", field: "logFormat", kind: { t: "enum", values: ["text", "json"] }, help: "text (readable lines, default) or json (one JSON object a line, for log shippers)" },
  { key: "health_check_path", core: true, flag: "health-check-path", target: "server", field: "healthCheckPath", kind: { t: "string", pattern: /^(\/[^\s]*)?$/, what: "a path starting with /" }, help: "GET this path on each process every interval; failing processes are replaced (default off)" },
  { key: "health_check_interval", core: true, flag: "health-check-interval", target: "server", field: "healthCheckIntervalMs", kind: { t: "seconds", min: 1, max: 86_400 }, help: "seconds between health checks of a process (default 10)" },
  { key: "health_check_timeout", core: true, flag: "health-check-timeout", target: "server", field: "healthCheckTimeoutMs", kind: { t: "seconds", min: 1, max: 3_600 }, help: "seconds a health check may take (default 5)" },
  { key: "health_check_failures", core: true, flag: "health-check-failures", target: "server", field: "healthCheckFailures", kind: { t: "int", min: 1, max: 1000 }, help: "failed health checks in a row before the process is replaced (default 3)" },
  { key: "health_check_event_loop_timeout", core: true, flag: "health-check-event-loop-timeout", target: "server", field: "healthCheckEventLoopTimeoutMs", kind: { t: "seconds", min: 0, max: 86_400 }, help: "seconds without an event-loop report before a Node process counts as stuck and is replaced (default 30; 0 = off)" },
  { key: "metrics_listen", core: true, flag: "metrics-listen", target: "server", field: "metricsListen", kind: { t: "string", pattern: /^(\S+:)?\d{1,5}$/, what: "ADDR:PORT or a port" }, help: "serve Prometheus metrics at http://ADDR:PORT/metrics (default off; a bare port binds 127.0.0.1)" },
  { key: "instance_registry_dir", flag: "instance-registry-dir", target: "server", field: "instanceRegistryDir", kind: { t: "string", nonEmpty: true }, help: "where the instance dir (control socket) is created (default $TMPDIR or /tmp)" },
  { key: "header_timeout", flag: "header-timeout", target: "server", field: "headerTimeoutMs", kind: { t: "seconds", min: 1, max: 3_600 }, help: "seconds a client may take to send the request head (default 60)" },
  { key: "request_timeout", flag: "request-timeout", target: "server", field: "requestTimeoutMs", kind: { t: "seconds", min: 0, max: MAX_TIMER_SECONDS }, help: "seconds for the whole request to arrive (else 408) and the app's response head to go out (else 504); 0 = none (default 300)" },
  { key: "static_files_dir", flag: "static-files-dir", target: "server", field: "staticFilesDir", kind: { t: "string", nonEmpty: true }, help: "dir whose files are served for GET/HEAD without reaching the app, relative to the app dir (default public)" },
  { key: "connection_handoff", flag: "connection-handoff", target: "server", field: "connectionHandoff", kind: { t: "bool" }, help: "hand client connections to the app processes, which serve them with no proxy hop (Node apps without sticky sessions or a concurrency limit; default on; --no-connection-handoff relays every request)" },
  { key: "admin_group", core: true, flag: "admin-group", target: "server", field: "adminGroup", kind: { t: "string", nonEmpty: true }, help: "group whose members may run ferry status (default: root and this user only)" },
  { key: "affinity_redis", core: true, flag: "affinity-redis", target: "server", field: "affinityRedis", kind: { t: "string", pattern: /^(redis:\/\/|rediss:\/\/|unix:\/)\S+$/, what: "redis://host:port/db, rediss://host:port/db or unix:/path" }, help: "Redis shared by several hosts for sticky sessions (docs/affinity.md)" },
  { key: "affinity_node_name", core: true, flag: "affinity-node-name", target: "server", field: "affinityNodeName", kind: { t: "string", nonEmpty: true }, help: "this host's name in the affinity cluster (default the host name)" },
  { key: "affinity_listen", core: true, flag: "affinity-listen", target: "server", field: "affinityListen", kind: { t: "string", pattern: /^\S+:\d{1,5}$/, what: "ADDR:PORT" }, help: "ADDR:PORT where forwarded requests from peer hosts are accepted" },
  { key: "affinity_secret_file", core: true, flag: "affinity-secret-file", target: "server", field: "affinitySecretFile", kind: { t: "string", nonEmpty: true }, help: "file with the secret shared by the hosts (required with --affinity-redis)" },
  { key: "affinity_ttl", core: true, flag: "affinity-ttl", target: "server", field: "affinityTtlMs", kind: { t: "seconds", min: 1, max: YEAR_SECONDS }, help: "seconds a session stays pinned after its last request (default 1800)" },
  { key: "affinity_redis_timeout", core: true, flag: "affinity-redis-timeout", target: "server", field: "affinityRedisTimeoutMs", kind: { t: "int", min: 1, max: 60_000 }, help: "milliseconds a request may wait for Redis (default 50)" },
  { key: "affinity_tls_cert_file", core: true, flag: "affinity-tls-cert-file", target: "server", field: "affinityTlsCertFile", kind: { t: "string", nonEmpty: true }, help: "PEM certificate: serve peers over TLS (with --affinity-tls-key-file)" },
  { key: "affinity_tls_key_file", core: true, flag: "affinity-tls-key-file", target: "server", field: "affinityTlsKeyFile", kind: { t: "string", nonEmpty: true }, help: "PEM private key of --affinity-tls-cert-file" },
  { key: "affinity_tls_ca_file", core: true, flag: "affinity-tls-ca-file", target: "server", field: "affinityTlsCaFile", kind: { t: "string", nonEmpty: true }, help: "PEM CA of the peers' certificates (default the system CAs)" },

  // Module mode only: server-wide directives (the core config's `server` map).
  { key: "user_switching", core: true, target: "server", field: "userSwitching", kind: { t: "bool" } },
  { key: "default_user", core: true, target: "server", field: "defaultUser", kind: { t: "string" } },
  { key: "default_group", core: true, target: "server", field: "defaultGroup", kind: { t: "string" } },
  { key: "socket_backlog", core: true, target: "server", field: "socketBacklog", kind: { t: "int", min: 1, max: 65_535 } },
  /** Bounded by what a timer takes: retired processes are waited for with setTimeout(). */
  { key: "process_shutdown_timeout", core: true, target: "server", field: "processShutdownTimeoutMs", kind: { t: "seconds", min: 0, max: MAX_TIMER_SECONDS } },
  { key: "error_log", core: true, target: "server", field: "errorLog", kind: { t: "string" } },

  // Module mode only: per-app directives (a REQUEST_HEAD's `app` map). app_root,
  // base_uri and document_root have readers of their own in config/app-wire.ts.
  { key: "app_group_name", wire: "app_group_name", target: "app", field: "appGroupName", kind: { t: "string", nonEmpty: true } },
  { key: "group", wire: "group", target: "app", field: "group", kind: { t: "string" } },
  { key: "custom_error_page", wire: "custom_error_page", target: "app", field: "customErrorPage", kind: { t: "string", pattern: /^(\/[\s\S]*)?$/, what: "an absolute path" } },
  { key: "app_file_descriptor_ulimit", wire: "app_file_descriptor_ulimit", target: "app", field: "fileDescriptorUlimit", kind: { t: "int", min: 0, max: INT_MAX } },
  // nginx only (Passenger's nginx directives; Apache has no form of them).
  { key: "request_queue_overflow_status_code", wire: "request_queue_overflow_status_code", target: "app", field: "requestQueueOverflowStatusCode", kind: { t: "int", min: 400, max: 599 } },
  { key: "spawn_exception_status_code", wire: "spawn_exception_status_code", target: "app", field: "spawnExceptionStatusCode", kind: { t: "int", min: 400, max: 599 } },
];

function isStandalone(o: OptionSpec): o is StandaloneOptionSpec {
  return o.flag !== undefined && o.help !== undefined;
}

/** The options `ferry start` takes, in `--help` order. */
export const STANDALONE_OPTIONS: readonly StandaloneOptionSpec[] = OPTIONS.filter(isStandalone);

/** The keys of the core config's `server` map. */
export const CORE_OPTIONS: readonly OptionSpec[] = OPTIONS.filter((o) => o.core === true);

/** The options a REQUEST_HEAD's `app` map carries, by wire key. */
export const WIRE_OPTIONS: readonly (OptionSpec & { readonly wire: string })[] =
  OPTIONS.filter((o): o is OptionSpec & { readonly wire: string } => o.wire !== undefined);

/** What a value of this kind must be, for error messages. */
export function describeKind(kind: Kind): string {
  switch (kind.t) {
    case "int": return `an integer ${kind.min}-${kind.max}`;
    case "seconds": return `a number of seconds ${kind.min}-${kind.max}`;
    case "bool": return "true or false";
    case "string": return kind.what ?? (kind.nonEmpty === true ? "a non-empty string" : "a string");
    case "enum": return kind.values.join(" or ");
    case "envvars": return 'an object {"NAME": "value"} or NAME=VALUE strings';
  }
}
