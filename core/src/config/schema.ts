/**
 * The single source of truth for Ferry's configuration: the typed per-app and
 * server-wide options, their defaults, and the wire keys the Apache module uses
 * for them in a request head's `app` map (docs/protocol.md §"App options").
 *
 * Per-app options arrive with each request (Passenger's `!~` headers): the
 * first request for an app group creates the group with them. Server-wide
 * options come from the core's config file (written by mod_ferry) or from
 * `ferry start` flags.
 */

/** How an app is started. */
export type AppType = "node" | "generic";

/** Options of one application group (Passenger's per-app and per-location directives). */
export interface AppOptions {
  /** Absolute app root (PassengerAppRoot, or the parent of DocumentRoot). */
  readonly appRoot: string;
  /** Group key (PassengerAppGroupName); default `"<appRoot> (<appEnv>)"`. */
  readonly appGroupName: string;
  readonly appType: AppType;
  /** Startup file relative to appRoot (PassengerStartupFile); default app.js. */
  readonly startupFile: string;
  /** Generic app command with `$PORT` (PassengerAppStartCommand); "" = none. */
  readonly appStartCommand: string;
  /** PassengerAppEnv; default production (development for `ferry start`). */
  readonly appEnv: string;
  /** PassengerNodejs: the node interpreter; default the core's own node. */
  readonly nodejs: string;
  /** PassengerBaseURI that matched this request, "" when the app is at the root. */
  readonly baseURI: string;
  readonly minInstances: number;
  /** PassengerMaxInstancesPerApp; 0 = only bounded by the pool. */
  readonly maxInstancesPerApp: number;
  /** PassengerMaxRequests; 0 = never recycle. */
  readonly maxRequests: number;
  /** PassengerMaxRequestQueueSize; 0 = unbounded. */
  readonly maxRequestQueueSize: number;
  /** PassengerMaxRequestQueueTime: a request queued longer gets 504, ms; 0 = no limit. */
  readonly maxRequestQueueTimeMs: number;
  /** PassengerForceMaxConcurrentRequestsPerProcess; 0 = unlimited (scale by load policy). */
  readonly maxConcurrentRequestsPerProcess: number;
  /** PassengerStartTimeout in milliseconds. */
  readonly startTimeoutMs: number;
  /** PassengerRestartDir, relative to appRoot or absolute; default tmp. */
  readonly restartDir: string;
  readonly stickySessions: boolean;
  readonly stickySessionsCookieName: string;
  /** Extra cookie attributes after `Path=`; default `SameSite=Lax` (plus `Secure` on HTTPS). */
  readonly stickySessionsCookieAttributes: string;
  /** PassengerFriendlyErrorPages; default on only when appEnv is development. */
  readonly friendlyErrorPages: boolean;
  /** PassengerUser / PassengerGroup; "" = owner of the startup file (issue 4). */
  readonly user: string;
  readonly group: string;
  /** PassengerLoadShellEnvvars. */
  readonly loadShellEnvvars: boolean;
  /** PassengerMemoryLimit in MB; 0 = none. */
  readonly memoryLimitMB: number;
  /** PassengerMaxRequestTime in milliseconds; 0 = none. */
  readonly maxRequestTimeMs: number;
  /** PassengerAppLogFile; "" = the core's log. */
  readonly appLogFile: string;
  /** PassengerCustomErrorPage: absolute path of an HTML file served instead of the non-friendly error page; "" = none. */
  readonly customErrorPage: string;
  /** PassengerAppFileDescriptorUlimit; 0 = inherit. */
  readonly fileDescriptorUlimit: number;
  /** nginx's passenger_request_queue_overflow_status_code: status of a full queue's page; 0 = 503. */
  readonly requestQueueOverflowStatusCode: number;
  /** nginx's passenger_spawn_exception_status_code: status of a failed spawn's page; 0 = 500. */
  readonly spawnExceptionStatusCode: number;
  /** PassengerAbortWebsocketsOnProcessShutdown. */
  readonly abortWebsocketsOnProcessShutdown: boolean;
  /** PassengerShowVersionInHeader: X-Powered-By carries the version. */
  readonly showVersionInHeader: boolean;
  /** Environment variables for the app (Apache SetEnv, `--envvar`). */
  readonly env: Readonly<Record<string, string>>;
}

/** Server-wide options of one core. */
export interface ServerOptions {
  /** PassengerMaxPoolSize: live app processes over all apps. */
  readonly maxPoolSize: number;
  /** PassengerPoolIdleTime in milliseconds; 0 = never retire idle processes. */
  readonly poolIdleTimeMs: number;
  /** PassengerMaxInstancesPerApp (global in Passenger); 0 = unlimited. */
  readonly maxInstancesPerApp: number;
  /** PassengerStatThrottleRate in ms for restart.txt checks; Ferry's default is 1000. */
  readonly statThrottleRateMs: number;
  /** PassengerUserSwitching. */
  readonly userSwitching: boolean;
  readonly defaultUser: string;
  /** "" = primary group of defaultUser. */
  readonly defaultGroup: string;
  /** PassengerLogLevel 0..7 (Passenger numbering). */
  readonly logLevel: number;
  /** PassengerLogFile; "" = stderr. */
  readonly logFile: string;
  /** PassengerLogFormat / --log-format: "text" (readable, default) or "json". */
  readonly logFormat?: "text" | "json";
  /** Apache's main ErrorLog file (Apache mode, when PassengerLogFile is unset): the core writes there and reopens it. */
  readonly errorLog?: string;
  /** Directory holding this core's instance dir. */
  readonly instanceRegistryDir: string;
  /** PassengerSocketBacklog. */
  readonly socketBacklog: number;
  /** Graceful shutdown deadline for retired processes before SIGKILL, ms. */
  readonly processShutdownTimeoutMs: number;
  // Health checks that heal (docs/health.md); optional, absent = the default.
  /** PassengerHealthCheckPath: GET this path on every ready process; "" (default) = no HTTP check. */
  readonly healthCheckPath?: string;
  /** PassengerHealthCheckInterval in ms; default 10 000. */
  readonly healthCheckIntervalMs?: number;
  /** PassengerHealthCheckTimeout in ms; default 5 000. */
  readonly healthCheckTimeoutMs?: number;
  /** PassengerHealthCheckFailures: failed checks in a row before the process is replaced; default 3. */
  readonly healthCheckFailures?: number;
  /** PassengerHealthCheckEventLoopTimeout in ms: no event-loop report this long = stuck; 0 = off; default 30 000. */
  readonly healthCheckEventLoopTimeoutMs?: number;
  /** PassengerMetricsListen / --metrics-listen ADDR:PORT for Prometheus' /metrics; "" (default) = off. */
  readonly metricsListen?: string;
  /** `ferry start --header-timeout`: the complete request head must arrive within it, ms (default 60 000). */
  readonly headerTimeoutMs?: number;
  /** `ferry start --request-timeout`: whole request in (408) and response head out (504) within it, ms; 0 = none (default 300 000). */
  readonly requestTimeoutMs?: number;
  /**
   * `ferry start --connection-handoff`: hand accepted client connections to the
   * app processes (Node apps without sticky sessions or a concurrency limit),
   * which then serve them with no proxy hop (docs/standalone.md); `ferry start` defaults it to true
   * (config/standalone-config.ts), off with --no-connection-handoff; module mode: never.
   */
  readonly connectionHandoff?: boolean;
  /**
   * `ferry start --static-files-dir`: files in this dir (relative to the app
   * root, or absolute) are served for GET/HEAD without reaching the app
   * (loader/static-files.ts); `ferry start` defaults it to `public`; ""
   * (module mode: Apache or nginx serves them) = none.
   */
  readonly staticFilesDir?: string;
  /** PassengerAdminGroup / --admin-group: group (name or gid) that may use the admin socket; "" = root and the core's user only. */
  readonly adminGroup?: string;
  // Shared session affinity (docs/affinity.md); optional, absent = the default.
  /** PassengerAffinityRedis: redis://host:port/db, rediss://…, unix:/path; "" (default) = off. */
  readonly affinityRedis?: string;
  /** PassengerAffinityNodeName; "" (default) = the host name. */
  readonly affinityNodeName?: string;
  /** PassengerAffinityListen ADDR:PORT for forwarded requests; "" (default) = accept none. */
  readonly affinityListen?: string;
  /** PassengerAffinitySecretFile: the shared secret (required when affinityRedis is set). */
  readonly affinitySecretFile?: string;
  /** PassengerAffinityTTL in ms (sliding pin lifetime); default 1 800 000. */
  readonly affinityTtlMs?: number;
  /** PassengerAffinityRedisTimeout in ms: budget of each Redis call; default 50. */
  readonly affinityRedisTimeoutMs?: number;
  /** PassengerAffinityTLSCertFile / KeyFile: serve peers over TLS; "" (default) = plain TCP. */
  readonly affinityTlsCertFile?: string;
  readonly affinityTlsKeyFile?: string;
  /** PassengerAffinityTLSCAFile: CA of the peers' certificates; "" (default) = the system CAs. */
  readonly affinityTlsCaFile?: string;
}

/**
 * Largest duration in seconds for the per-request and start deadlines
 * (start_timeout, max_request_time): the longest a Node timer waits (2^31-1 ms,
 * about 24.8 days); the module's directives and the protocol check the same.
 */
export const MAX_TIMER_SECONDS = 2_147_483;
/** Largest PassengerMemoryLimit / memory_limit, MB (1 TiB). */
export const MAX_MEMORY_LIMIT_MB = 1_048_576;

export const DEFAULT_NODE_STARTUP_FILE = "app.js";
export const DEFAULT_STICKY_COOKIE_NAME = "_passenger_route";
export const DEFAULT_STICKY_COOKIE_ATTRIBUTES = "SameSite=Lax";

/** Defaults of the per-app options that do not depend on the app root. */
export const APP_DEFAULTS = {
  appType: "node",
  startupFile: DEFAULT_NODE_STARTUP_FILE,
  appStartCommand: "",
  appEnv: "production",
  nodejs: "",
  baseURI: "",
  minInstances: 1,
  maxInstancesPerApp: 0,
  maxRequests: 0,
  maxRequestQueueSize: 100,
  maxRequestQueueTimeMs: 0,
  maxConcurrentRequestsPerProcess: 0,
  startTimeoutMs: 90_000,
  restartDir: "tmp",
  stickySessions: false,
  stickySessionsCookieName: DEFAULT_STICKY_COOKIE_NAME,
  stickySessionsCookieAttributes: DEFAULT_STICKY_COOKIE_ATTRIBUTES,
  user: "",
  group: "",
  loadShellEnvvars: false,
  memoryLimitMB: 0,
  maxRequestTimeMs: 0,
  appLogFile: "",
  customErrorPage: "",
  fileDescriptorUlimit: 0,
  requestQueueOverflowStatusCode: 0,
  spawnExceptionStatusCode: 0,
  abortWebsocketsOnProcessShutdown: true,
  showVersionInHeader: true,
} as const;

export const SERVER_DEFAULTS: ServerOptions = {
  maxPoolSize: 6,
  poolIdleTimeMs: 300_000,
  maxInstancesPerApp: 0,
  statThrottleRateMs: 1_000,
  userSwitching: true,
  defaultUser: "nobody",
  defaultGroup: "",
  logLevel: 3,
  logFile: "",
  logFormat: "text",
  errorLog: "",
  instanceRegistryDir: "/tmp",
  socketBacklog: 2048,
  processShutdownTimeoutMs: 30_000,
  metricsListen: "",
  healthCheckPath: "",
  healthCheckIntervalMs: 10_000,
  healthCheckTimeoutMs: 5_000,
  healthCheckFailures: 3,
  healthCheckEventLoopTimeoutMs: 30_000,
  adminGroup: "",
  connectionHandoff: false,
  staticFilesDir: "",
  headerTimeoutMs: 60_000,
  requestTimeoutMs: 300_000,
  affinityRedis: "",
  affinityNodeName: "",
  affinityListen: "",
  affinitySecretFile: "",
  affinityTtlMs: 1_800_000,
  affinityRedisTimeoutMs: 50,
  affinityTlsCertFile: "",
  affinityTlsKeyFile: "",
  affinityTlsCaFile: "",
};

/** The default app group name, as Passenger forms it. */
export function defaultAppGroupName(appRoot: string, appEnv: string): string {
  return `${appRoot} (${appEnv})`;
}

/** Build full AppOptions from an app root and the options given, filling defaults. */
export function makeAppOptions(appRoot: string, given: Partial<AppOptions> = {}): AppOptions {
  const appEnv = given.appEnv ?? APP_DEFAULTS.appEnv;
  return {
    ...APP_DEFAULTS,
    env: {},
    friendlyErrorPages: appEnv === "development",
    appGroupName: given.appGroupName ?? defaultAppGroupName(appRoot, appEnv),
    ...given,
    appRoot,
    appEnv,
  };
}
