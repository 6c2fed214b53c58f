import test from "ava";
import { ConfigError } from "../../../core/src/errors.js";
import { SERVER_DEFAULTS, makeAppOptions } from "../../../core/src/config/schema.js";
import { STANDALONE_OPTIONS } from "../../../core/src/config/options.js";
import { parseConfigMap, resolveStandaloneConfig } from "../../../core/src/config/standalone-config.js";

test("resolveStandaloneConfig() defaults: 127.0.0.1:3000, development, friendly pages on, pool 6", (t) => {
  const c = resolveStandaloneConfig({ appRoot: "/srv/a" });
  t.deepEqual(c.listen, { port: 3000, address: "127.0.0.1" });
  t.is(c.app.appEnv, "development");
  t.true(c.app.friendlyErrorPages);
  t.is(c.app.appGroupName, "/srv/a (development)");
  t.is(c.server.maxPoolSize, 6);
  t.is(c.server.instanceRegistryDir, "/tmp");
});

test("resolveStandaloneConfig() precedence: defaults < file < PASSENGER_* < flags", (t) => {
  const c = resolveStandaloneConfig({
    appRoot: "/srv/a",
    file: { file: "/srv/a/Passengerfile.json", value: { port: 4000, max_pool_size: 3, min_instances: 2, environment: "staging" } },
    env: { PASSENGER_MAX_POOL_SIZE: "4", PASSENGER_MIN_INSTANCES: "3" },
    flags: { "max-pool-size": "5" },
  });
  t.is(c.listen.port, 4000);
  t.is(c.server.maxPoolSize, 5);
  t.is(c.app.minInstances, 3);
  t.is(c.app.appEnv, "staging");
  t.false(c.app.friendlyErrorPages, "friendly pages default off outside development");
});

test("resolveStandaloneConfig() converts seconds to ms and collects envvars from file and flags", (t) => {
  const c = resolveStandaloneConfig({
    appRoot: "/srv/a",
    file: { file: "ferry.json", value: { pool_idle_time: 2, start_timeout: 1.5, envvars: { A: "1", B: 2 } } },
    flags: { envvar: ["C=3", "A=x=y"], "max-request-time": "10", "sticky-sessions": true },
  });
  t.is(c.server.poolIdleTimeMs, 2000);
  t.is(c.app.startTimeoutMs, 1500);
  t.is(c.app.maxRequestTimeMs, 10_000);
  t.deepEqual(c.app.env, { A: "x=y", B: "2", C: "3" });
  t.true(c.app.stickySessions);
});

test("resolveStandaloneConfig() takes the environment from NODE_ENV when no option says", (t) => {
  t.is(resolveStandaloneConfig({ appRoot: "/a", env: { NODE_ENV: "production" } }).app.appEnv, "production");
  t.is(resolveStandaloneConfig({ appRoot: "/a", env: { NODE_ENV: "production" }, flags: { environment: "development" } }).app.appEnv, "development");
});

test("--no-friendly-error-pages turns them off in development", (t) => {
  t.false(resolveStandaloneConfig({ appRoot: "/a", flags: { "no-friendly-error-pages": true } }).app.friendlyErrorPages);
  t.true(resolveStandaloneConfig({ appRoot: "/a", flags: { "friendly-error-pages": true, environment: "production" } }).app.friendlyErrorPages);
});

const bad: Array<[string, Record<string, unknown>, RegExp]> = [
  ["port out of range", { port: 70000 }, /"port" = 70000: expected an integer 0-65535/],
  ["negative pool", { max_pool_size: 0 }, /"max_pool_size" = 0: expected an integer 1-10000/],
  ["bool as number", { sticky_sessions: 2 }, /"sticky_sessions" = 2: expected true or false/],
  ["bad app type", { app_type: "ruby" }, /"app_type" = "ruby": expected node or generic/],
  ["bad cookie name", { sticky_sessions_cookie_name: "a b" }, /"sticky_sessions_cookie_name".*cookie name/],
  ["bad envvar name", { envvars: { "1X": "a" } }, /"envvars"/],
  ["unknown key", { max_pool_sise: 3 }, /key "max_pool_sise": unknown option/],
  ["log level", { log_level: 9 }, /"log_level" = 9: expected an integer 0-7/],
  ["start_timeout past a timer's reach", { start_timeout: 2_147_484 }, /"start_timeout" = 2147484: expected a number of seconds 1-2147483/],
  ["max_request_time past a timer's reach", { max_request_time: 1e10 }, /"max_request_time" = 10000000000: expected a number of seconds 0-2147483/],
  ["memory_limit above 1 TiB", { memory_limit: 2_000_000 }, /"memory_limit" = 2000000: expected an integer 0-1048576/],
  ["header_timeout zero", { header_timeout: 0 }, /"header_timeout" = 0: expected a number of seconds 1-3600/],
];
for (const [what, value, message] of bad) {
  test(`parseConfigMap() rejects ${what} with a ConfigError naming the key`, (t) => {
    const e = t.throws(() => parseConfigMap(value, "Passengerfile.json"), { instanceOf: ConfigError });
    t.regex(e?.message ?? "", message);
  });
}

test("parseConfigMap() rejects a non-object", (t) => {
  t.throws(() => parseConfigMap([1], "ferry.json"), { instanceOf: ConfigError, message: /expected a JSON object/ });
});

test("a generic app needs app_start_command", (t) => {
  t.throws(() => resolveStandaloneConfig({ appRoot: "/a", flags: { "app-type": "generic" } }), { instanceOf: ConfigError, message: /app_start_command/ });
});

test("app_start_command alone makes a generic app, as in Passenger; an explicit app_type wins", (t) => {
  const fromFile = resolveStandaloneConfig({ appRoot: "/a", file: { file: "/a/Passengerfile.json", value: { app_start_command: "node server.js --port $PORT" } } });
  t.is(fromFile.app.appType, "generic");
  t.is(fromFile.app.appStartCommand, "node server.js --port $PORT");
  t.is(resolveStandaloneConfig({ appRoot: "/a", flags: { "app-start-command": "./run $PORT" } }).app.appType, "generic");
  t.is(resolveStandaloneConfig({ appRoot: "/a", flags: { "app-start-command": "./run $PORT", "app-type": "node" } }).app.appType, "node");
  t.is(resolveStandaloneConfig({ appRoot: "/a" }).app.appType, "node");
});

test("force_max_concurrent_requests_per_process takes Passenger's -1 (not forced) as unlimited", (t) => {
  t.is(resolveStandaloneConfig({ appRoot: "/a", file: { file: "/a/Passengerfile.json", value: { force_max_concurrent_requests_per_process: -1 } } }).app.maxConcurrentRequestsPerProcess, 0);
  t.is(resolveStandaloneConfig({ appRoot: "/a", flags: { "force-max-concurrent-requests-per-process": "4" } }).app.maxConcurrentRequestsPerProcess, 4);
  t.throws(() => resolveStandaloneConfig({ appRoot: "/a", flags: { "force-max-concurrent-requests-per-process": "-2" } }), { instanceOf: ConfigError });
});

test("every option has a distinct key and flag", (t) => {
  t.is(new Set(STANDALONE_OPTIONS.map((o) => o.key)).size, STANDALONE_OPTIONS.length);
  t.is(new Set(STANDALONE_OPTIONS.map((o) => o.flag)).size, STANDALONE_OPTIONS.length);
});

test("every option's field exists in AppOptions / ServerOptions", (t) => {
  const app = makeAppOptions("/x");
  for (const o of STANDALONE_OPTIONS) {
    if (o.target === "app" || o.target === "both") t.true(o.field in app, `${o.key} → app.${o.field}`);
    if (o.target === "server" || o.target === "both") t.true(o.field in SERVER_DEFAULTS, `${o.key} → server.${o.field}`);
    if (o.target === "listen") t.true(o.field === "port" || o.field === "address", o.key);
  }
});

test("resolveStandaloneConfig() skips Passenger Standalone's own keys (engine, daemonize, spawn_method) and lists them", (t) => {
  const c = resolveStandaloneConfig({
    appRoot: "/srv/a",
    file: { file: "/srv/a/Passengerfile.json", value: { engine: "builtin", daemonize: false, spawn_method: "direct", port: 4000 } },
  });
  t.is(c.listen.port, 4000);
  t.deepEqual([...c.ignoredKeys], ["engine", "daemonize", "spawn_method"]);
});

test("resolveStandaloneConfig() serves <app>/public unless static_files_dir, PASSENGER_STATIC_FILES_DIR or --static-files-dir says otherwise", (t) => {
  t.is(resolveStandaloneConfig({ appRoot: "/srv/a" }).server.staticFilesDir, "public");
  const file = { file: "/srv/a/Passengerfile.json", value: { static_files_dir: "assets" } };
  const fromFile = resolveStandaloneConfig({ appRoot: "/srv/a", file });
  t.is(fromFile.server.staticFilesDir, "assets");
  t.deepEqual([...fromFile.ignoredKeys], [], "no longer one of Passenger's ignored keys");
  t.is(resolveStandaloneConfig({ appRoot: "/srv/a", file, env: { PASSENGER_STATIC_FILES_DIR: "dist" } }).server.staticFilesDir, "dist");
  t.is(resolveStandaloneConfig({ appRoot: "/srv/a", file, env: { PASSENGER_STATIC_FILES_DIR: "dist" }, flags: { "static-files-dir": "www" } }).server.staticFilesDir, "www");
  t.throws(() => resolveStandaloneConfig({ appRoot: "/srv/a", file: { file: "/srv/a/Passengerfile.json", value: { static_files_dir: "" } } }), { message: /static_files_dir/ });
});
