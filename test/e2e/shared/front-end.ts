/**
 * One description of what a shared end-to-end case needs from a front end
 * (apps, each under a host name, with Passenger options), rendered either as
 * an Apache config (test/helpers/apache.ts) or as an nginx config
 * (test/helpers/nginx.ts). The Apache directive ↔ nginx directive mapping
 * lives here and nowhere else:
 *
 *   option "MinInstances": 2   → PassengerMinInstances 2   | passenger_min_instances 2;
 *   env { K: "v" }             → SetEnv K v                | passenger_env_var K v;
 *   app root /a (public/ in it)→ DocumentRoot /a/public    | root /a/public; passenger_enabled on;
 *   app under a sub-URI /sub   → <Location /sub>           | location /sub { passenger_enabled on;
 *                                PassengerBaseURI /sub       |   passenger_base_uri /sub; … }
 *   server-wide options        → the server config         | http {}
 *
 * Both fronts take Passenger's directive names (docs/apache.md,
 * docs/nginx.md), so an option name is the directive's name without the
 * prefix, in CamelCase. Values are the same in both (numbers are seconds or
 * counts, flags on/off).
 */
import type { ExecutionContext, TestFn } from "ava";
import { ApacheServer, makeTempRoot, stopAndRemove } from "../../helpers/apache.js";
import { NginxServer } from "../../helpers/nginx.js";
import type { WebServerProcess } from "../../helpers/web-server.js";

export type FrontEndKind = "apache" | "nginx";

export type OptionValue = string | number;

/** One app served under one host name. */
export interface AppSite {
  /** The Host header that selects it. */
  readonly serverName: string;
  /** More host names of the site (ServerAlias / further server_name names). */
  readonly aliases?: readonly string[];
  /** The app root; the server's document root is its public/. */
  readonly appRoot: string;
  /** Per-app Passenger options, e.g. { MinInstances: 2, StickySessions: "on" }. */
  readonly options?: Readonly<Record<string, OptionValue>>;
  /** Environment variables of the app. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Serve the app under this sub-URI (PassengerBaseURI / passenger_base_uri)
   * of a static site whose root is `siteRoot` (which holds a symlink
   * <siteRoot><baseUri> → the app's public/, as Passenger's docs set it up).
   */
  readonly baseUri?: { readonly path: string; readonly siteRoot: string };
  /** Lines only one front end understands (for that front end's own cases, never a shared one). */
  readonly raw?: { readonly apache?: readonly string[]; readonly nginx?: readonly string[] };
}

export interface FrontEndConfig {
  readonly sites: readonly AppSite[];
  /** Server-wide Passenger options, e.g. { PoolIdleTime: 3, RedeployOnGraceful: "changed" }. */
  readonly server?: Readonly<Record<string, OptionValue>>;
  /**
   * Environment of the server process (and so of its module and core), e.g.
   * FERRY_DATA_PATH; nginx passes each to its workers (`env NAME;`).
   */
  readonly serverEnv?: Readonly<Record<string, string>>;
}

/** A running front end as the shared cases see it. */
export interface FrontEnd {
  readonly kind: FrontEndKind;
  /** The server process (Apache's parent or nginx's master) and its logs. */
  readonly server: WebServerProcess;
  readonly port: number;
  /** What a user runs to reload the configuration ("apachectl graceful" / "nginx -s reload"). */
  readonly reloadCommand: string;
  /** Write a new configuration; it takes effect on the next reload(). */
  reconfigure(config: FrontEndConfig): Promise<void>;
  /** apachectl graceful / nginx -s reload, resolved once it took effect. */
  reload(): Promise<void>;
  /** What a user runs after moving the log files away (logrotate's postrotate): "apachectl graceful" / "nginx -s reopen". */
  readonly reopenLogsCommand: string;
  /** Run it (resolved once the server itself took it; the core reopens its files soon after). */
  reopenLogs(): Promise<void>;
}

/** "MinInstances" → "min_instances"; an acronym is one word: "AffinityTTL" → "affinity_ttl". */
function camelToSnake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/([A-Z])([A-Z][a-z])/g, "$1_$2").toLowerCase();
}

function quoted(v: OptionValue): string {
  const s = String(v);
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** The Apache directive of option `name`: "MinInstances" → "PassengerMinInstances 2". */
export function apacheDirective(name: string, value: OptionValue): string {
  return `Passenger${name} ${quoted(value)}`;
}

/** The nginx directive of option `name`: "MinInstances" → "passenger_min_instances 2;". */
export function nginxDirective(name: string, value: OptionValue): string {
  return `passenger_${camelToSnake(name)} ${quoted(value)};`;
}

function apacheSite(s: AppSite): { serverName: string; documentRoot: string; directives: string[] } {
  if (s.baseUri !== undefined) {
    return {
      serverName: s.serverName,
      documentRoot: s.baseUri.siteRoot,
      directives: [
        "DirectoryIndex index.html",
        `<Directory "${s.appRoot}/public">`,
        "    Require all granted",
        "</Directory>",
        `<Location ${s.baseUri.path}>`,
        `    PassengerBaseURI ${s.baseUri.path}`,
        `    PassengerAppRoot "${s.appRoot}"`,
        ...Object.entries(s.env ?? {}).map(([k, v]) => `    SetEnv ${k} ${quoted(v)}`),
        ...Object.entries(s.options ?? {}).map(([k, v]) => `    ${apacheDirective(k, v)}`),
        "</Location>",
      ],
    };
  }
  return {
    serverName: s.serverName,
    documentRoot: `${s.appRoot}/public`,
    directives: [
      ...(s.aliases?.length ? [`ServerAlias ${s.aliases.join(" ")}`] : []),
      ...Object.entries(s.env ?? {}).map(([k, v]) => `SetEnv ${k} ${quoted(v)}`),
      ...Object.entries(s.options ?? {}).map(([k, v]) => apacheDirective(k, v)),
      ...(s.raw?.apache ?? []),
    ],
  };
}

function nginxSite(s: AppSite): { serverName: string; root: string; directives: string[] } {
  if (s.baseUri !== undefined) {
    return {
      serverName: s.serverName,
      root: s.baseUri.siteRoot,
      directives: [
        "index index.html;",
        `location ${s.baseUri.path} {`,
        "    passenger_enabled on;",
        `    passenger_base_uri ${s.baseUri.path};`,
        `    passenger_app_root ${quoted(s.appRoot)};`,
        "    client_max_body_size 0;",
        ...Object.entries(s.env ?? {}).map(([k, v]) => `    passenger_env_var ${k} ${quoted(v)};`),
        ...Object.entries(s.options ?? {}).map(([k, v]) => `    ${nginxDirective(k, v)}`),
        "}",
      ],
    };
  }
  return {
    // server_name takes every name of the site, the first one its own
    serverName: [s.serverName, ...(s.aliases ?? [])].join(" "),
    root: `${s.appRoot}/public`,
    directives: [
      "passenger_enabled on;",
      "client_max_body_size 0;",
      ...Object.entries(s.env ?? {}).map(([k, v]) => `passenger_env_var ${k} ${quoted(v)};`),
      ...Object.entries(s.options ?? {}).map(([k, v]) => nginxDirective(k, v)),
      ...(s.raw?.nginx ?? []),
    ],
  };
}

function apacheOptions(c: FrontEndConfig): { vhosts: ReturnType<typeof apacheSite>[]; global: string[] } {
  return {
    vhosts: c.sites.map(apacheSite),
    global: Object.entries(c.server ?? {}).map(([k, v]) => apacheDirective(k, v)),
  };
}

function nginxOptions(c: FrontEndConfig): { servers: ReturnType<typeof nginxSite>[]; http: string[]; main: string[] } {
  return {
    main: Object.keys(c.serverEnv ?? {}).map((k) => `env ${k};`),
    servers: c.sites.map(nginxSite),
    http: Object.entries(c.server ?? {}).map(([k, v]) => nginxDirective(k, v)),
  };
}

/** Start a private front end of `kind` serving `config` from the test's temp root. */
export async function startFrontEnd(kind: FrontEndKind, root: string, config: FrontEndConfig): Promise<FrontEnd> {
  if (kind === "apache") {
    const server = await ApacheServer.start({ root, ...apacheOptions(config), env: config.serverEnv ?? {} });
    return {
      kind,
      server,
      port: server.port,
      reloadCommand: "apachectl graceful",
      reconfigure: (c) => server.reconfigure(apacheOptions(c)),
      reload: () => server.graceful(),
      reopenLogsCommand: "apachectl graceful",
      reopenLogs: () => server.graceful(),
    };
  }
  const server = await NginxServer.start({ root, ...nginxOptions(config), env: config.serverEnv ?? {} });
  return {
    kind,
    server,
    port: server.port,
    reloadCommand: "nginx -s reload",
    reconfigure: (c) => server.reconfigure(nginxOptions(c)),
    reload: () => server.reload(),
    reopenLogsCommand: "nginx -s reopen",
    reopenLogs: () => server.reopenLogs(),
  };
}

/** The temp root of a test file running cases through `kind`. */
export function frontEndTempRoot(kind: FrontEndKind, name: string): Promise<string> {
  return makeTempRoot(`e2e-${kind}-${name}`);
}

/** The front end a test file started in `before`, or a clear failure when it did not start. */
export function frontEndStarted(fe: FrontEnd | undefined): FrontEnd {
  if (fe === undefined) throw new Error("Cannot run: the front end did not start");
  return fe;
}

/** Stop a test file's front end (nothing left under its root) and remove the root. */
export async function stopFrontEnd(fe: FrontEnd | undefined, root: string): Promise<void> {
  await fe?.server.kill();
  await stopAndRemove(undefined, root);
}

/** Which shared cases a test file expects to fail through its front end, each with why. */
export interface SharedCaseOptions {
  /**
   * Case title → the reason it fails today (a feature being built, named in
   * /work/coord/NOTES.md); registered with ava's test.failing, so it turns
   * red the day it passes and the entry must go.
   */
  readonly failing?: Readonly<Record<string, string>>;
  /**
   * Sites a front end's own (non-shared) cases add to the suite's config,
   * e.g. Apache-only directives; called with the file's temp root.
   */
  readonly moreSites?: (root: string) => Promise<readonly AppSite[]>;
  /**
   * Case title → why this front end does not run it yet (a feature not
   * built, not yet confirmed in progress). The case is not registered; the
   * test file's header names it.
   */
  readonly notYet?: Readonly<Record<string, string>>;
}

export type CaseBody = (t: ExecutionContext) => Promise<void> | void;

/**
 * A test file's front end: started in `before` from the config `setup`
 * builds in the file's temp root, stopped after; the error log's tail is
 * logged for a failed case. Returns the registrar of the file's serial cases
 * (honouring `opts.failing`) and the accessor of the running front end.
 */
export function frontEndSuite(
  test: TestFn,
  kind: FrontEndKind,
  name: string,
  setup: (root: string) => Promise<FrontEndConfig>,
  opts: SharedCaseOptions = {},
): { fe: () => FrontEnd; root: () => string; serial: (title: string, body: CaseBody) => void } {
  let fe: FrontEnd | undefined;
  let root = "";
  const registered = new Set<string>();
  test.before(async () => {
    root = await frontEndTempRoot(kind, name);
    const config = await setup(root);
    const more = (await opts.moreSites?.(root)) ?? [];
    fe = await startFrontEnd(kind, root, { ...config, sites: [...config.sites, ...more] });
  });
  test.after.always(async () => {
    await stopFrontEnd(fe, root);
  });
  test.afterEach.always((t) => {
    if (!t.passed && fe !== undefined) t.log(fe.server.errorLogTail(60));
  });
  // A stale "failing" entry (a renamed case) must not hide silently.
  test.after("every case marked failing or not yet exists", (t) => {
    t.deepEqual(Object.keys({ ...opts.failing, ...opts.notYet }).filter((title) => !registered.has(title)), []);
  });
  return {
    fe: () => frontEndStarted(fe),
    root: () => root,
    serial: (title, body) => {
      registered.add(title);
      if (opts.notYet?.[title] !== undefined) return;
      if (opts.failing?.[title] !== undefined) test.serial.failing(title, body);
      else test.serial(title, body);
    },
  };
}
