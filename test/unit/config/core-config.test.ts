import test from "ava";
import { parseCoreConfig, unknownServerKeys } from "../../../core/src/config/core-config.js";
import { ConfigError } from "../../../core/src/errors.js";
import { SERVER_DEFAULTS } from "../../../core/src/config/schema.js";

const BASE = {
  version: 1,
  generation: 3,
  instance_dir: "/var/run/ferry/ferry-1234",
  module_socket: "/var/run/ferry/ferry-1234/module.sock",
  control_socket: "/var/run/ferry/ferry-1234/control.sock",
  apache_uid: 33,
  apache_gid: 33,
  parent_pid: 1234,
  lifeline_fd: -1,
  redeploy_on_graceful: "all",
};

test("parseCoreConfig() reads the documented example and converts seconds to ms", (t) => {
  const c = parseCoreConfig({
    ...BASE,
    server: {
      max_pool_size: 6, pool_idle_time: 300, max_instances_per_app: 0, stat_throttle_rate: 1, user_switching: true,
      default_user: "nobody", default_group: "", log_level: 3, log_file: "", socket_backlog: 2048, prestart: ["http://example.com/"],
    },
  });
  t.is(c.generation, 3);
  t.is(c.apacheUid, 33);
  t.is(c.redeployOnGraceful, "all");
  t.is(c.integrationMode, "apache", "a file without integration_mode is Apache's");
  t.is(c.server.poolIdleTimeMs, 300_000);
  t.is(c.server.statThrottleRateMs, 1_000);
  t.is(c.server.instanceRegistryDir, "/var/run/ferry");
  t.deepEqual(c.prestart, ["http://example.com/"]);
});

test("parseCoreConfig() fills server defaults and socket paths", (t) => {
  const { module_socket: _m, control_socket: _c, ...rest } = BASE;
  const c = parseCoreConfig({ ...rest, redeploy_on_graceful: undefined });
  t.is(c.moduleSocket, "/var/run/ferry/ferry-1234/module.sock");
  t.is(c.controlSocket, "/var/run/ferry/ferry-1234/control.sock");
  t.is(c.redeployOnGraceful, "all");
  t.is(c.frontPidFile, "", "no front_pid_file: none (Apache names its parent by parent_pid)");
  t.is(parseCoreConfig({ ...BASE, front_pid_file: "/run/nginx.pid" }).frontPidFile, "/run/nginx.pid");
  // header/request timeouts are ferry start's own (the module front has Apache's).
  const { headerTimeoutMs: _h, requestTimeoutMs: _r, ...moduleDefaults } = SERVER_DEFAULTS;
  t.deepEqual({ ...c.server, instanceRegistryDir: "" }, { ...moduleDefaults, instanceRegistryDir: "" });
});

const BAD: ReadonlyArray<readonly [string, unknown, RegExp]> = [
  ["not an object", [], /must hold a JSON object/],
  ["wrong version", { ...BASE, version: 2 }, /version must be an integer 1-1, got 2/],
  ["relative instance_dir", { ...BASE, instance_dir: "run/x" }, /instance_dir must be an absolute path/],
  ["missing apache_uid", { ...BASE, apache_uid: undefined }, /apache_uid must be an integer/],
  ["bad integration mode", { ...BASE, integration_mode: "lighttpd" }, /integration_mode must be one of apache, nginx, got "lighttpd"/],
  ["bad redeploy mode", { ...BASE, redeploy_on_graceful: "sometimes" }, /redeploy_on_graceful must be one of all, changed, off, got "sometimes"/],
  ["string pool size", { ...BASE, server: { max_pool_size: "6" } }, /server.max_pool_size must be an integer 1-10000, got "6"/],
  ["zero pool size", { ...BASE, server: { max_pool_size: 0 } }, /server.max_pool_size/],
  ["negative idle time", { ...BASE, server: { pool_idle_time: -1 } }, /server.pool_idle_time must be a number of seconds/],
  ["log level 9", { ...BASE, server: { log_level: 9 } }, /server.log_level must be an integer 0-7/],
  ["user_switching string", { ...BASE, server: { user_switching: "yes" } }, /server.user_switching must be true or false/],
  ["prestart not a URL", { ...BASE, server: { prestart: ["example.com"] } }, /server.prestart\[0\] must be an http\(s\) URL/],
  ["server an array", { ...BASE, server: [] }, /server must be an object/],
  ["relative front_pid_file", { ...BASE, front_pid_file: "logs/nginx.pid" }, /front_pid_file must be an absolute path/],
];

for (const [what, raw, re] of BAD) {
  test(`parseCoreConfig() rejects ${what} with a ConfigError naming the key`, (t) => {
    const err = t.throws(() => parseCoreConfig(raw), { instanceOf: ConfigError });
    t.regex(err.message, re);
  });
}

test("parseCoreConfig() takes the directives' whole duration range (up to a year) and no more", (t) => {
  const year = 31_536_000;
  const c = parseCoreConfig({ ...BASE, server: { pool_idle_time: year, affinity_ttl: year, stat_throttle_rate: 86_400 } });
  t.is(c.server.poolIdleTimeMs, year * 1000);
  t.is(c.server.affinityTtlMs, year * 1000);
  t.is(c.server.statThrottleRateMs, 86_400_000);
  t.throws(() => parseCoreConfig({ ...BASE, server: { pool_idle_time: year + 1 } }), { instanceOf: ConfigError, message: /pool_idle_time must be a number of seconds 0-31536000/ });
  // Bounded by what a timer takes: it is waited for with setTimeout().
  t.throws(() => parseCoreConfig({ ...BASE, server: { process_shutdown_timeout: year } }), { instanceOf: ConfigError, message: /process_shutdown_timeout/ });
});

test("unknownServerKeys() lists keys a newer module may send", (t) => {
  t.deepEqual(unknownServerKeys({ ...BASE, server: { max_pool_size: 2, turbo: true } }), ["turbo"]);
  t.deepEqual(unknownServerKeys({ ...BASE }), []);
});
