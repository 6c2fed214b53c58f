/**
 * ngx_http_ferry_module.so (nginx-module/, built by nginx-module/build.sh
 * against Debian's nginx-dev) loads into a private nginx with
 * `load_module`, and nginx's config test applies its directive table.
 */
import test from "ava";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { makeTempRoot } from "../../helpers/apache.js";
import { NginxServer, nginxConfigTest, nginxStarted, stopAndRemoveNginx } from "../../helpers/nginx.js";

let root = "";
let nginx: NginxServer | undefined;

test.before(async () => {
  root = await makeTempRoot("nginx-module");
  const pub = path.join(root, "site");
  await mkdir(pub, { recursive: true });
  await writeFile(path.join(pub, "hello.txt"), "static hello\n");
  nginx = await NginxServer.start({
    root,
    servers: [{ serverName: "site.test", root: pub, directives: ["location /app/ { passenger_enabled off; }"] }],
  });
});

test.after.always(async () => {
  await stopAndRemoveNginx(nginx, root);
});

test("nginx loads ngx_http_ferry_module.so and serves a static file", async (t) => {
  const res = await fetch(`${nginxStarted(nginx).baseUrl}/hello.txt`);
  t.is(res.status, 200);
  t.is(await res.text(), "static hello\n");
});

test("nginx -t refuses a passenger_enabled value that is not on/off", async (t) => {
  const r = await nginxConfigTest({
    root: path.join(root, "bad"),
    servers: [{ serverName: "bad.test", root, directives: ["passenger_enabled maybe;"] }],
  });
  t.false(r.ok);
  t.regex(r.output, /passenger_enabled/);
});

test("nginx -t takes Passenger's directives in their contexts, with a FERRY0401 notice for an accepted one", async (t) => {
  const r = await nginxConfigTest({
    root: path.join(root, "full"),
    http: ["passenger_max_pool_size 12;", "passenger_pool_idle_time 5m;", "passenger_turbocaching off;",
      "passenger_env_var GREETING hello;", "passenger_redeploy_on_graceful changed;"],
    servers: [{
      serverName: "full.test",
      root,
      directives: ["passenger_app_env development;", "passenger_sticky_sessions on;",
        "location /app { passenger_enabled on; passenger_base_uri /app; passenger_min_instances 0;"
        + " passenger_start_timeout 1m; passenger_force_max_concurrent_requests_per_process -1;"
        + " passenger_env_var OTHER 1; passenger_buffers 8 16k; }",
        // Passenger 6.0.23's nginx directives in a location, each where Passenger takes it
        "location /more { passenger_custom_error_page /srv/down.html; passenger_intercept_errors on;"
        + " passenger_buffer_upload off; passenger_temp_path /tmp; passenger_monitor_log_file /var/log/app.log;"
        + " passenger_direct_instance_request_address 127.0.0.1; passenger_use_global_queue on;"
        + " rails_spawn_method direct; rails_app_spawner_idle_time 0; rails_framework_spawner_idle_time 0; }"],
    }],
  });
  t.true(r.ok, r.output);
  t.regex(r.output, /FERRY0401: "passenger_turbocaching" is accepted and has no effect/);
  t.regex(r.output, /FERRY0401: "passenger_buffer_upload" is accepted and has no effect/);
  t.notRegex(r.output, /FERRY0401: "passenger_(intercept_errors|custom_error_page)"/);
});

for (const [directive, where, message] of [
  ["passenger_max_pool_size 0;", "http", /"passenger_max_pool_size" directive must be an integer 1-10000, got "0"/],
  ["passenger_start_timeout forever;", "server", /"passenger_start_timeout" directive must be a duration 1-2147483 s/],
  ["passenger_max_pool_size 4;", "server", /"passenger_max_pool_size" directive is not allowed here/],
  ["passenger_app_type perl;", "server", /"passenger_app_type" directive must be node, nodejs or generic/],
  ["passenger_app_env a; rails_env b;", "server", /"rails_env" directive is duplicate/],
  ["passenger_base_uri app;", "server", /"passenger_base_uri" directive must be a URI path starting with "\/"/],
  ["passenger_sticky_sessions_cookie_name \"my route\";", "server", /"passenger_sticky_sessions_cookie_name" directive must be a cookie name/],
  ["passenger_intercept_errors yes;", "server", /invalid value "yes" in "passenger_intercept_errors" directive, it must be "on" or "off"/],
] as const) {
  test(`nginx -t refuses ${directive} in ${where}`, async (t) => {
    const r = await nginxConfigTest({
      root: path.join(root, `bad-${directive.replace(/[^a-z0-9]/g, "")}`),
      http: where === "http" ? [directive] : [],
      servers: [{ serverName: "bad.test", root, directives: where === "server" ? [directive] : [] }],
    });
    t.false(r.ok);
    t.regex(r.output, message);
  });
}
