/**
 * Every directive mod_ferry registers passes `apache2 -t` with a valid value
 * (Passenger's aliases and obsolete ones included), bad values fail the
 * configtest with a message naming the directive and what it accepts, and
 * inert directives are reported with one FERRYnnnn notice each.
 *
 * Uses the real config code built with the stub data path
 * (test/helpers/mod-ferry-stub.ts); needs apxs and apache2.
 */
import test from "ava";
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import {
  REPO_ROOT,
  apacheLayout,
  baseConfig,
  buildStubModule,
  configTest,
  makeTempDir,
} from "../helpers/mod-ferry-stub.js";

/** A valid sample argument string for every directive. */
const SAMPLES: Readonly<Record<string, string>> = {
  PassengerRoot: "/opt/ferry",
  PassengerCtl: "foo 1",
  PassengerDumpConfigManifest: "/tmp/manifest.json",
  PassengerDefaultRuby: "/usr/bin/ruby",
  PassengerLogLevel: "4",
  PassengerLogFile: "/tmp/ferry.log",
  PassengerDebugLogFile: "/tmp/ferry.log",
  PassengerDisableLogPrefix: "on",
  PassengerSocketBacklog: "1024",
  PassengerFileDescriptorLogFile: "/tmp/fd.log",
  PassengerMaxPoolSize: "8",
  RailsMaxPoolSize: "8",
  PassengerPoolIdleTime: "5min",
  RailsPoolIdleTime: "300",
  PassengerResponseBufferHighWatermark: "134217728",
  PassengerUserSwitching: "off",
  RailsUserSwitching: "off",
  PassengerDefaultUser: "nobody",
  RailsDefaultUser: "nobody",
  PassengerDefaultGroup: "nogroup",
  PassengerAdminGroup: "nogroup",
  PassengerDataBufferDir: "/tmp",
  PassengerInstanceRegistryDir: "/tmp",
  PassengerSpawnDir: "/tmp",
  PassengerDisableSecurityUpdateCheck: "on",
  PassengerSecurityUpdateCheckProxy: "http://proxy:8080",
  PassengerDisableAnonymousTelemetry: "on",
  PassengerAnonymousTelemetryProxy: "http://proxy:8080",
  PassengerStatThrottleRate: "10",
  PassengerPreStart: "http://localhost/",
  PassengerTurbocaching: "off",
  PassengerOldRouting: "off",
  PassengerShowVersionInHeader: "off",
  PassengerAdminPanelUrl: "wss://panel.example/connect",
  PassengerAdminPanelAuthType: "basic",
  PassengerAdminPanelUsername: "admin",
  PassengerAdminPanelPassword: "secret",
  PassengerFlyWith: "/tmp/fly.sock",
  PassengerRedeployOnGraceful: "changed",
  PassengerRuby: "/usr/bin/ruby",
  RailsRuby: "/usr/bin/ruby",
  PassengerPython: "/usr/bin/python3",
  PassengerMeteorAppSettings: "/tmp/settings.json",
  PassengerNodejs: "/usr/bin/node",
  PassengerBaseURI: "/app",
  RailsBaseURI: "/rails",
  RackBaseURI: "/rack",
  PassengerAppEnv: "staging",
  RailsEnv: "staging",
  RackEnv: "staging",
  PassengerAppType: "node",
  PassengerAppStartCommand: '"node server.js --port=$PORT"',
  PassengerStartupFile: "server.js",
  PassengerMinInstances: "2",
  PassengerMaxInstancesPerApp: "4",
  RailsMaxInstancesPerApp: "4",
  PassengerUser: "nobody",
  PassengerGroup: "!STARTUP_FILE!",
  PassengerMaxRequests: "1000",
  PassengerStartTimeout: "2min",
  PassengerAppConnectTimeout: "30",
  PassengerMaxRequestQueueSize: "50",
  PassengerMaxPreloaderIdleTime: "0",
  RailsAppSpawnerIdleTime: "0",
  PassengerLoadShellEnvvars: "off",
  PassengerPreloadBundler: "off",
  PassengerSpawnMethod: "direct",
  RailsSpawnMethod: "smart-lv2",
  PassengerDirectInstanceRequestAddress: "127.0.0.1",
  PassengerFriendlyErrorPages: "on",
  PassengerCustomErrorPage: "/tmp/error.html",
  PassengerRestartDir: "tmp",
  PassengerAppGroupName: "shop",
  PassengerMonitorLogFile: "/tmp/app.log",
  PassengerForceMaxConcurrentRequestsPerProcess: "-1",
  PassengerAppRoot: "/srv/app",
  PassengerLveMinUid: "500",
  PassengerMemoryLimit: "512",
  PassengerMaxInstances: "3",
  PassengerRollingRestarts: "on",
  PassengerResistDeploymentErrors: "on",
  PassengerDebugger: "off",
  PassengerAppLogFile: "/tmp/app.log",
  PassengerAppFileDescriptorUlimit: "4096",
  PassengerEnvVar: "API_URL http://api.local",
  PassengerEnabled: "on",
  PassengerErrorOverride: "on",
  PassengerHighPerformance: "on",
  PassengerBufferUpload: "off",
  PassengerBufferResponse: "on",
  PassengerStickySessions: "on",
  PassengerStickySessionsCookieName: "route_id",
  PassengerStickySessionsCookieAttributes: '"SameSite=Strict; Secure"',
  PassengerAllowEncodedSlashes: "on",
  PassengerMaxRequestTime: "30",
  PassengerMaxRequestQueueTime: "10",
  PassengerConcurrencyModel: "process",
  PassengerThreadCount: "1",
  PassengerReadTimeout: "90s",
  PassengerWebSocketIdleTimeout: "10min",
  PassengerAbortWebsocketsOnProcessShutdown: "off",
  PassengerAffinityRedis: "redis://127.0.0.1:6379/0",
  PassengerAffinityNodeName: "web1",
  PassengerAffinityListen: "127.0.0.1:7400",
  PassengerMetricsListen: "127.0.0.1:9464",
  PassengerLogFormat: "json",
  PassengerHealthCheckPath: "/health",
  PassengerHealthCheckInterval: "10",
  PassengerHealthCheckTimeout: "5",
  PassengerHealthCheckFailures: "3",
  PassengerHealthCheckEventLoopTimeout: "30",
  PassengerAffinitySecretFile: "/etc/ferry/affinity.secret",
  PassengerAffinityTTL: "1800",
  PassengerAffinityRedisTimeout: "50",
  PassengerAffinityTLSCertFile: "/etc/ferry/peer.crt",
  PassengerAffinityTLSKeyFile: "/etc/ferry/peer.key",
  PassengerAffinityTLSCAFile: "/etc/ferry/ca.crt",
  RailsSpawnServer: "/opt/passenger/bin/spawn-server",
  RailsAllowModRewrite: "on",
  RailsFrameworkSpawnerIdleTime: "0",
  PassengerUseGlobalQueue: "on",
  UnionStationGatewayAddress: "gateway.unionstationapp.com",
  UnionStationGatewayPort: "443",
  UnionStationGatewayCert: "/tmp/cert.pem",
  UnionStationProxyAddress: "http://proxy:8080",
  PassengerAnalyticsLogUser: "nobody",
  PassengerAnalyticsLogGroup: "nogroup",
  UnionStationKey: "abc",
  UnionStationFilter: '"uri == /"',
  UnionStationSupport: "off",
};

interface Ctx {
  readonly dir: string;
  readonly httpd: string;
  readonly base: string;
}

let ctxPromise: Promise<Ctx> | undefined;
let tempDir: string | undefined;

/** Build the module once for the whole file (tests run concurrently). */
function setup(): Promise<Ctx> {
  ctxPromise ??= (async () => {
    const dir = await makeTempDir("directives");
    tempDir = dir;
    const { httpd, modules } = await apacheLayout();
    const so = await buildStubModule(dir);
    return { dir, httpd, base: baseConfig({ serverRoot: dir, modules, ferrySo: so }) };
  })();
  return ctxPromise;
}

test.after.always(async () => {
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

async function registeredDirectives(): Promise<string[]> {
  const src = await readFile(path.join(REPO_ROOT, "apache-module/ferry_config.c"), "utf8");
  return [...src.matchAll(/AP_INIT_[A-Z0-9]+\("([A-Za-z]+)"/g)].map((m) => m[1] ?? "");
}

test("every registered directive has a sample and all of them pass apache2 -t together", async (t) => {
  const c = await setup();
  const names = await registeredDirectives();
  t.true(names.length >= 110, `only ${names.length} directives found`);
  const missing = names.filter((n) => SAMPLES[n] === undefined);
  t.deepEqual(missing, [], "directives without a sample in this test");
  const lines = names.map((n) => `${n} ${SAMPLES[n] ?? ""}`);
  const res = await configTest(c.httpd, c.dir, "all", `${c.base}\n${lines.join("\n")}\n`);
  t.true(res.ok, res.output);
  t.regex(res.output, /Syntax OK/);
});

test("per-application and per-location directives pass inside VirtualHost, Directory and Location", async (t) => {
  const c = await setup();
  const conf = `${c.base}
<VirtualHost 127.0.0.1:1>
  ServerName app.test
  PassengerAppRoot /srv/app
  PassengerAppType nodejs
  PassengerBaseURI /sub
  PassengerEnvVar A 1
  <Directory /srv/app/public>
    PassengerAppEnv development
    PassengerEnabled off
    PassengerMemoryLimit 256
  </Directory>
  <Location /ws>
    PassengerWebSocketIdleTimeout 120
    PassengerStickySessions on
    PassengerMaxRequestTime 0
  </Location>
</VirtualHost>
`;
  const res = await configTest(c.httpd, c.dir, "contexts", conf);
  t.true(res.ok, res.output);
});

const BAD: ReadonlyArray<readonly [string, RegExp]> = [
  ["PassengerMaxPoolSize 0", /PassengerMaxPoolSize must be an integer 1-10000/],
  ["PassengerMaxPoolSize many", /PassengerMaxPoolSize must be an integer 1-10000/],
  ["RailsMaxPoolSize 20000", /RailsMaxPoolSize must be an integer 1-10000/],
  ["PassengerLogLevel 8", /PassengerLogLevel must be an integer 0-7/],
  ["PassengerLogFormat yaml", /PassengerLogFormat must be text or json/],
  ["PassengerHealthCheckPath health", /PassengerHealthCheckPath must be a path starting with \//],
  ["PassengerMetricsListen localhost:http", /PassengerMetricsListen must be ADDR:PORT with a port 0-65535/],
  ["PassengerMinInstances -1", /PassengerMinInstances must be an integer 0-10000/],
  ["PassengerMaxRequestQueueSize 1.5", /PassengerMaxRequestQueueSize must be an integer >= 0/],
  ["PassengerForceMaxConcurrentRequestsPerProcess -2", /PassengerForceMaxConcurrentRequestsPerProcess must be an integer >= -1/],
  ["PassengerStartTimeout 0", /PassengerStartTimeout must be a duration 1-2147483 s/],
  ["PassengerStartTimeout 2147484", /PassengerStartTimeout must be a duration 1-2147483 s/],
  ["PassengerMaxRequestTime 30d", /PassengerMaxRequestTime must be a duration 0-2147483 s/],
  ["PassengerMemoryLimit 1048577", /PassengerMemoryLimit must be an integer 0-1048576/],
  ["PassengerStartTimeout soon", /PassengerStartTimeout must be a duration/],
  ["PassengerPoolIdleTime -5", /PassengerPoolIdleTime must be a duration 0-31536000 s/],
  ["PassengerReadTimeout 0", /PassengerReadTimeout must be a duration 1-31536000 s/],
  ["PassengerBaseURI app", /PassengerBaseURI must start with a slash/],
  ["PassengerBaseURI /app/", /PassengerBaseURI must not end with a slash/],
  ['PassengerBaseURI ""', /PassengerBaseURI takes one argument/],
  ["RackBaseURI app", /RackBaseURI must start with a slash/],
  ["PassengerAppType php", /PassengerAppType must be node, nodejs or generic/],
  ["PassengerRedeployOnGraceful sometimes", /PassengerRedeployOnGraceful must be all, changed or off/],
  ["PassengerSpawnMethod fancy", /PassengerSpawnMethod must be one of: smart, smart-lv2, direct, conservative/],
  ["PassengerConcurrencyModel fiber", /PassengerConcurrencyModel must be one of: process, thread/],
  ["PassengerThreadCount lots", /PassengerThreadCount must be an integer >= 0/],
  ["PassengerEnabled maybe", /PassengerEnabled must be On or Off/],
  ["PassengerEnvVar 1ABC x", /PassengerEnvVar: variable name '1ABC' must start with a letter or _/],
  ["PassengerEnvVar ONLY_NAME", /PassengerEnvVar takes two arguments/],
  ["PassengerPreStart ftp://host/", /PassengerPreStart must be an http:\/\/ or https:\/\/ URL/],
  ["PassengerPreStart http://", /PassengerPreStart must be an http:\/\/ or https:\/\/ URL/],
  ["PassengerSocketBacklog 0", /PassengerSocketBacklog must be an integer 1-65535/],
  ["PassengerStickySessionsCookieName a;b", /PassengerStickySessionsCookieName must be a cookie name/],
  ["PassengerMemoryLimit -1", /PassengerMemoryLimit must be an integer 0-1048576/],
  ['PassengerAppEnv ""', /PassengerAppEnv takes one argument/],
];

for (const [line, message] of BAD) {
  test(`apache2 -t fails readably for "${line}"`, async (t) => {
    const c = await setup();
    const res = await configTest(c.httpd, c.dir, `bad-${BAD.findIndex((b) => b[0] === line)}`, `${c.base}\n${line}\n`);
    t.false(res.ok, res.output);
    t.regex(res.output, message);
  });
}

test("per-application directives are refused inside <Files>", async (t) => {
  const c = await setup();
  const res = await configTest(c.httpd, c.dir, "files",
    `${c.base}\n<Directory /srv>\n<Files app.js>\nPassengerAppRoot /srv/app\n</Files>\n</Directory>\n`);
  t.false(res.ok, res.output);
  t.regex(res.output, /PassengerAppRoot cannot occur within <Files> section/);
});

test("a server-wide directive inside <VirtualHost> is accepted with a FERRY0004 warning", async (t) => {
  const c = await setup();
  const res = await configTest(c.httpd, c.dir, "vhost-global",
    `${c.base}\n<VirtualHost 127.0.0.1:1>\nPassengerMaxPoolSize 3\n</VirtualHost>\n`);
  t.true(res.ok, res.output);
  t.regex(res.output, /FERRY0004: PassengerMaxPoolSize \(.*:\d+\) is a server-wide directive/);
});

test("inert, obsolete and always-on directives get exactly one tagged notice each", async (t) => {
  const c = await setup();
  const res = await configTest(c.httpd, c.dir, "notices", `${c.base}
PassengerDefaultRuby /usr/bin/ruby
<VirtualHost 127.0.0.1:1>
  PassengerRuby /usr/bin/ruby
  PassengerRuby /usr/bin/ruby3
</VirtualHost>
RailsSpawnServer /x
PassengerRollingRestarts on
PassengerAppType ruby
PassengerMaxPoolSize 4
`);
  t.true(res.ok, res.output);
  t.regex(res.output, /FERRY0001: PassengerDefaultRuby \(.*notices\.conf:\d+\) is accepted for compatibility and has no effect/);
  t.is(res.output.match(/FERRY0001: PassengerRuby /g)?.length, 1, res.output);
  t.regex(res.output, /FERRY0002: RailsSpawnServer .* is obsolete and ignored/);
  t.regex(res.output, /FERRY0003: PassengerRollingRestarts .*: rolling restarts are always on in Ferry/);
  t.regex(res.output, /FERRY0005: PassengerAppType ruby .*: Ferry runs Node\.js and generic/);
  t.notRegex(res.output, /PassengerMaxPoolSize/, "implemented directives are silent");
});

test("conf/ferry.conf and conf/app-vhost.conf.example pass apache2 -t and ferry.conf is read", async (t) => {
  const c = await setup();
  const ferryConf = await readFile(path.join(REPO_ROOT, "conf/ferry.conf"), "utf8");
  const vhost = await readFile(path.join(REPO_ROOT, "conf/app-vhost.conf.example"), "utf8");
  const res = await configTest(c.httpd, c.dir, "shipped", `${c.base}\n${ferryConf}\n${vhost}\n`);
  t.true(res.ok, res.output);
  // <IfModule mod_ferry.c> matched: a bad value inside it must now fail.
  const broken = ferryConf.replace(/^(\s*)# PassengerMaxPoolSize 6$/m, "$1PassengerMaxPoolSize 0");
  t.not(broken, ferryConf);
  const res2 = await configTest(c.httpd, c.dir, "shipped-broken", `${c.base}\n${broken}\n`);
  t.false(res2.ok);
  t.regex(res2.output, /PassengerMaxPoolSize must be an integer 1-10000/);
});
