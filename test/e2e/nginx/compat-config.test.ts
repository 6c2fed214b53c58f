/**
 * Black-box compatibility: nginx configurations as Passenger's nginx docs
 * and its users write them, through a real nginx + ngx_http_ferry_module,
 * with an app (test/fixtures/apps/compat-app) we treat as unseen (the
 * counterpart of test/e2e/compat/config.test.ts). One nginx, one server
 * block per scenario: inheritance across http / server / location / `if`,
 * several apps in one nginx, sub-URI apps as Passenger's "deploying to a
 * sub-URI" guide sets them up (a regex location with `alias`,
 * passenger_base_uri, passenger_document_root), `root` with variables,
 * `rewrite` and `try_files` before the app, passenger_app_start_command
 * alone, passenger_app_type nodejs, no app under the root (nginx serves),
 * passenger_base_uri at two levels, passenger_set_header,
 * passenger_max_request_queue_time,
 * passenger_intercept_errors with error_page, passenger_custom_error_page,
 * passenger_spawn_exception_status_code.
 */
import test from "ava";
import { mkdir, rename, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { makeTempRoot, prepareApp, waitFor } from "../../helpers/apache.js";
import { request, type HttpResult } from "../../helpers/e2e-http.js";
import { ferryStatus } from "../../helpers/ferry-status.js";
import { NginxServer, nginxStarted, stopAndRemoveNginx, type NginxServerSpec } from "../../helpers/nginx.js";

let nginx: NginxServer | undefined;
let root = "";
const apps: Record<string, string> = {};
const dir = (n: string): string => apps[n] ?? "";

const CUSTOM_PAGE = "<html><body><h1>NGX-CUSTOM-DOWN</h1></body></html>\n";

function get(host: string, p: string): Promise<HttpResult> {
  return request(nginxStarted(nginx).port, { path: p, host, timeoutMs: 45_000 });
}

function jsonOf(res: HttpResult): Record<string, unknown> {
  const v: unknown = JSON.parse(res.text);
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`Cannot parse: not an object: ${res.text}`);
  return v as Record<string, unknown>;
}

async function envOf(host: string, name: string, prefix = ""): Promise<unknown> {
  const res = await get(host, `${prefix}/env?name=${name}`);
  if (res.status !== 200) throw new Error(`Cannot read ${name} on ${host}: ${res.status} ${res.text}`);
  return jsonOf(res).value;
}

/** nginx answered, not the app. */
function fromNginx(t: { is: (a: unknown, b: unknown, m?: string) => void }, res: HttpResult, status: number): void {
  t.is(res.status, status, res.text);
  t.is(res.headers["x-powered-by"], undefined, "no app answered");
}

test.before(async () => {
  root = await makeTempRoot("nginx-compat-config");
  for (const n of ["inh", "inh2", "sub", "sub2", "var", "rw", "gen", "nodejs", "int", "cep", "base"]) {
    apps[n] = await prepareApp(root, "compat-app", n);
  }
  // inh2's startup file is app.js: its server overrides http{}'s server.js
  await rename(path.join(dir("inh2"), "server.js"), path.join(dir("inh2"), "app.js"));
  for (const n of ["sub", "sub2"]) await writeFile(path.join(dir(n), "public", "robots.txt"), `robots of ${n}\n`);
  await writeFile(path.join(dir("int"), "public", "oops.html"), "nginx error_page oops\n");
  await writeFile(path.join(dir("inh"), "public", "oops.html"), "nginx error_page oops\n");
  await writeFile(path.join(dir("inh"), "public", "robots.txt"), "User-agent: *\n");
  await mkdir(path.join(root, "protected"), { recursive: true });
  await writeFile(path.join(root, "protected", "secret.txt"), "protected file\n", { mode: 0o644 });
  const customPage = path.join(root, "down.html");
  await writeFile(customPage, CUSTOM_PAGE, { mode: 0o644 });
  // A static site with no app above its root.
  const site = path.join(root, "site", "www");
  await mkdir(site, { recursive: true });
  await writeFile(path.join(site, "index.html"), "static root website\n");
  // "var": root is <root>/vhosts/<name>/public through a variable.
  await mkdir(path.join(root, "vhosts"), { recursive: true });
  await symlink(dir("var"), path.join(root, "vhosts", "var"));

  const servers: NginxServerSpec[] = [
    {
      // Inherits the http{} values; a location overrides; `if` turns it off.
      serverName: "inh.test",
      root: path.join(dir("inh"), "public"),
      directives: [
        "passenger_enabled on;",
        "passenger_env_var LEVEL server;",
        "error_page 503 /oops.html;",
        "location = /env {",
        "    passenger_app_group_name inh-env;",
        "    passenger_env_var LEVEL location;",
        "    passenger_env_var LOC_ONLY 1;",
        "    passenger_app_env loc-env;",
        "}",
        "location /off/ { passenger_enabled off; }",
        "location /slash/ { passenger_enabled on; }",
        "location /iff { if ($arg_static) { passenger_enabled off; } }",
      ],
    },
    {
      serverName: "inh2.test",
      root: path.join(dir("inh2"), "public"),
      directives: [
        "passenger_enabled on;",
        "passenger_startup_file app.js;",
        "passenger_env_var LEVEL server;",
        // as New Relic's and Scout's queue-time docs write it
        'passenger_set_header X-Request-Start "t=${msec}";',
        "passenger_set_header X-Host-Seen $host;",
        'passenger_set_header X-Drop "";',
        `location /protected/ { internal; alias ${root}/protected/; }`,
      ],
    },
    {
      // Passenger's nginx sub-URI guide: a regex location, alias to the
      // app's public/, passenger_base_uri + passenger_app_root +
      // passenger_document_root; and without passenger_app_root.
      serverName: "sub.test",
      root: site,
      directives: [
        "passenger_enabled on;",
        "location ~ ^/subapp(/.*|$) {",
        `    alias ${dir("sub")}/public$1;`,
        "    passenger_base_uri /subapp;",
        `    passenger_app_root ${dir("sub")};`,
        `    passenger_document_root ${dir("sub")}/public;`,
        "    passenger_enabled on;",
        "}",
        "location ~ ^/docroot(/.*|$) {",
        `    alias ${dir("sub2")}/public$1;`,
        "    passenger_base_uri /docroot;",
        `    passenger_document_root ${dir("sub2")}/public;`,
        "    passenger_enabled on;",
        "}",
      ],
    },
    {
      serverName: "var.test",
      root: `${root}/vhosts/$vhost/public`,
      directives: ["set $vhost var;", "passenger_enabled on;"],
    },
    {
      // The app behind try_files and a rewrite, no passenger_enabled at the
      // server level.
      serverName: "rw.test",
      root: path.join(dir("rw"), "public"),
      directives: [
        "rewrite ^/old/(.*)$ /echo?from=$1 last;",
        "location / { try_files $uri @app; }",
        "location @app { passenger_enabled on; }",
      ],
    },
    {
      serverName: "gen.test",
      root: path.join(dir("gen"), "public"),
      directives: ["passenger_enabled on;", "passenger_app_start_command 'node server.js --port=$PORT';"],
    },
    {
      serverName: "nodejs.test",
      root: path.join(dir("nodejs"), "public"),
      // relative to nginx's prefix (<root>/nginx), as `root` is
      directives: ["passenger_enabled on;", "passenger_app_type nodejs;", "passenger_app_root ../apps/nodejs/;"],
    },
    {
      serverName: "static.test",
      root: site,
      directives: ["passenger_enabled on;"],
    },
    {
      serverName: "int.test",
      root: path.join(dir("int"), "public"),
      directives: ["passenger_enabled on;", "passenger_intercept_errors on;", "error_page 502 503 /oops.html;"],
    },
    {
      // A location's passenger_base_uri adds to its server's (Passenger's merge).
      serverName: "base.test",
      root: path.join(dir("base"), "public"),
      directives: [
        "passenger_enabled on;",
        `passenger_app_root ${dir("base")};`,
        "passenger_base_uri /outer;",
        "location /outer { passenger_base_uri /other; }",
      ],
    },
    {
      // one request at a time in one process: the second one queues
      serverName: "qt.test",
      root: path.join(dir("inh"), "public"),
      directives: [
        "passenger_enabled on;",
        "passenger_app_group_name inh-queue;",
        "passenger_force_max_concurrent_requests_per_process 1;",
        "passenger_max_request_queue_time 1;",
      ],
    },
    {
      serverName: "limit.test",
      root: path.join(dir("inh"), "public"),
      directives: ["passenger_enabled on;", "client_max_body_size 1k;", "passenger_ignore_headers X-Accel-Redirect;"],
    },
    {
      serverName: "rack.test",
      root: path.join(dir("inh"), "public"),
      directives: ["passenger_enabled on;", "passenger_app_type rack;", `passenger_app_root ${dir("inh")};`],
    },
    {
      serverName: "cep.test",
      root: path.join(dir("cep"), "public"),
      directives: [
        "passenger_enabled on;",
        "passenger_env_var COMPAT_CRASH_ON_START 1;",
        `passenger_custom_error_page ${customPage};`,
        "passenger_start_timeout 20;",
        "passenger_spawn_exception_status_code 503;",
      ],
    },
  ];
  nginx = await NginxServer.start({
    root,
    servers,
    http: [
      "passenger_max_pool_size 14;",
      "passenger_max_instances_per_app 1;",
      "passenger_app_env staging;",
      "passenger_startup_file server.js;",
      "passenger_env_var FROM_HTTP yes;",
      "passenger_env_var LEVEL http;",
    ],
  });
});

test.after.always(async () => {
  await stopAndRemoveNginx(nginx, root);
});

test.afterEach.always((t) => {
  if (!t.passed && nginx !== undefined) t.log(nginx.errorLogTail(40));
});

test.serial("http{} values apply to every server; a server's and a location's own win; env vars merge", async (t) => {
  const top = jsonOf(await get("inh.test", "/"));
  t.is(top.nodeEnv, "staging");
  t.is(await envOf("inh2.test", "LEVEL"), "server");
  t.is(await envOf("inh2.test", "FROM_HTTP"), "yes");
  t.is(await envOf("inh2.test", "NODE_ENV"), "staging");
  // location = /env: its own group, env and app env, the outer variables kept
  t.is(await envOf("inh.test", "LEVEL"), "location");
  t.is(await envOf("inh.test", "LOC_ONLY"), "1");
  t.is(await envOf("inh.test", "FROM_HTTP"), "yes");
  t.is(await envOf("inh.test", "NODE_ENV"), "loc-env");
});

test.serial("passenger_set_header: values with nginx variables reach the app; an empty one drops the client's header", async (t) => {
  const res = await request(nginxStarted(nginx).port, { path: "/echo", host: "inh2.test", headers: { "X-Drop": "client", "X-Keep": "client" } });
  t.is(res.status, 200, res.text);
  const headers = jsonOf(res).headers as Record<string, unknown>;
  t.regex(String(headers["x-request-start"]), /^t=\d+\.\d{3}$/);
  t.is(headers["x-host-seen"], "inh2.test");
  t.is(headers["x-drop"], undefined);
  t.is(headers["x-keep"], "client");
});

test.serial("X-Accel-Redirect from the app: nginx serves the internal location it names (hidden from the client); passenger_ignore_headers turns it off", async (t) => {
  const res = await get("inh2.test", "/accel?to=/protected/secret.txt");
  t.is(res.status, 200, res.text);
  t.is(res.text, "protected file\n");
  t.is(res.headers["x-accel-redirect"], undefined);
  fromNginx(t, await get("inh2.test", "/protected/secret.txt"), 404);
  const ignored = await get("limit.test", "/accel?to=/protected/secret.txt");
  t.is(ignored.status, 200);
  t.is(ignored.text, "");
  t.is(ignored.headers["x-accel-redirect"], undefined);
  t.notRegex(nginxStarted(nginx).errorLog(), /ended with app_error \(GET \/accel/);
});

test.serial("two server blocks serve two apps, each its own processes", async (t) => {
  const a = jsonOf(await get("inh.test", "/"));
  const b = jsonOf(await get("inh2.test", "/"));
  t.not(a.pid, b.pid);
  const roots = new Set((await ferryStatus(nginxStarted(nginx))).groups.map((g) => g.appRoot));
  t.true(roots.has(dir("inh")) && roots.has(dir("inh2")), [...roots].join(" "));
});

test.serial("passenger_enabled off in a location, and in an `if` inside one, leaves the request to nginx", async (t) => {
  fromNginx(t, await get("inh.test", "/off/missing"), 404);
  const app = await get("inh.test", "/iff");
  t.is(app.status, 404);
  t.truthy(app.headers["x-powered-by"], "the app's own 404");
  fromNginx(t, await get("inh.test", "/iff?static=1"), 404);
});

test.serial("passenger_enabled on in `location /slash/` redirects /slash to /slash/ (nginx's auto_redirect, as Passenger sets it)", async (t) => {
  const res = await get("inh.test", "/slash?q=1");
  fromNginx(t, res, 301);
  t.regex(String(res.headers.location), /\/slash\/\?q=1$/);
});

test.serial("a file under public/ is nginx's whatever the method (POST: nginx's 405), as Passenger leaves it", async (t) => {
  const port = nginxStarted(nginx).port;
  const file = await get("inh.test", "/robots.txt");
  fromNginx(t, file, 200);
  t.is(file.text, "User-agent: *\n");
  fromNginx(t, await request(port, { path: "/robots.txt", method: "POST", host: "inh.test", body: Buffer.from("a=1") }), 405);
});

test.serial("error_page does not replace an app's response without passenger_intercept_errors", async (t) => {
  const res = await get("inh.test", "/fail?code=503");
  t.is(res.status, 503);
  t.is(res.text, "app error page 503\n");
});

test.serial("passenger_intercept_errors on: nginx's error_page replaces the app's error response, same status", async (t) => {
  const res = await get("int.test", "/fail?code=503");
  t.is(res.status, 503);
  t.is(res.text, "nginx error_page oops\n");
  // a status without an error_page stays the app's
  const other = await get("int.test", "/fail?code=500");
  t.is(other.status, 500);
  t.is(other.text, "app error page 500\n");
  t.is((await get("int.test", "/")).status, 200);
  // the app answered: no failed exchange for the core
  t.notRegex(nginxStarted(nginx).errorLog(), /ended with app_error \(GET \/fail/);
});

test.serial("sub-URI as Passenger's nginx guide writes it (regex location, alias, base URI, document root)", async (t) => {
  const res = await get("sub.test", "/subapp/?x=1");
  t.is(res.status, 200, res.text);
  const body = jsonOf(res);
  t.is(body.url, "/subapp/?x=1");
  t.is(body.base, "/subapp");
  const bare = await get("sub.test", "/subapp");
  t.is(bare.status, 200, bare.text);
  t.is(jsonOf(bare).url, "/subapp");
  const file = await get("sub.test", "/subapp/robots.txt");
  t.is(file.text, "robots of sub\n");
  t.is(file.headers["x-powered-by"], undefined);
  const site = await get("sub.test", "/");
  t.is(site.text, "static root website\n");
  fromNginx(t, await get("sub.test", "/application"), 404);
});

test.serial("a location's passenger_base_uri adds to the server's: both still match", async (t) => {
  const res = await get("base.test", "/outer/?z=1");
  t.is(res.status, 200, res.text);
  const body = jsonOf(res);
  t.is(body.base, "/outer");
  t.is(body.url, "/outer/?z=1");
});

test.serial("passenger_document_root with a base URI makes the app root (no passenger_app_root)", async (t) => {
  const res = await get("sub.test", "/docroot/?y=2");
  t.is(res.status, 200, res.text);
  const body = jsonOf(res);
  t.is(body.url, "/docroot/?y=2");
  t.is(body.base, "/docroot");
  const roots = (await ferryStatus(nginxStarted(nginx))).groups.map((g) => g.appRoot);
  t.true(roots.includes(dir("sub2")), roots.join(" "));
});

test.serial("root with a variable: the app root is its parent, evaluated per request", async (t) => {
  const res = await get("var.test", "/");
  t.is(res.status, 200, res.text);
  t.is(typeof jsonOf(res).pid, "number");
  const roots = (await ferryStatus(nginxStarted(nginx))).groups.map((g) => g.appRoot);
  t.true(roots.includes(path.join(root, "vhosts", "var")), roots.join(" "));
});

test.serial("rewrite and try_files before the app: the app gets nginx's new URI; an unchanged one keeps the client's bytes", async (t) => {
  const rewritten = await get("rw.test", "/old/abc?x=1");
  t.is(rewritten.status, 200, rewritten.text);
  t.is(jsonOf(rewritten).url, "/echo?from=abc&x=1");
  const named = await get("rw.test", "/echo?y=%2F&z=a+b");
  t.is(named.status, 200, named.text);
  t.is(jsonOf(named).url, "/echo?y=%2F&z=a+b");
  const encoded = await get("rw.test", "/a%20b?y=%2F");
  t.is(jsonOf(encoded).url, "/a%20b?y=%2F");
});

test.serial("passenger_app_start_command alone makes a generic app on $PORT", async (t) => {
  const res = await get("gen.test", "/");
  t.is(res.status, 200, res.text);
  const body = jsonOf(res);
  t.deepEqual(body.argv, [`--port=${String(body.port)}`]);
  t.regex(String(body.port), /^\d+$/);
});

test.serial("passenger_app_type nodejs with a relative passenger_app_root (startup file inherited from http{})", async (t) => {
  const res = await get("nodejs.test", "/");
  t.is(res.status, 200, res.text);
  t.is(jsonOf(res).nodeEnv, "staging");
  const roots = (await ferryStatus(nginxStarted(nginx))).groups.map((g) => g.appRoot);
  t.true(roots.includes(`${root}/nginx/../apps/nodejs`), roots.join(" "));
});

test.serial("passenger_enabled on where no app is found: nginx serves the site (no spawn error)", async (t) => {
  const index = await get("static.test", "/");
  t.is(index.text, "static root website\n");
  fromNginx(t, await get("static.test", "/missing"), 404);
  const roots = (await ferryStatus(nginxStarted(nginx))).groups.map((g) => g.appRoot);
  t.false(roots.includes(path.join(root, "site")), roots.join(" "));
});

test.serial("passenger_max_request_queue_time: a request queued longer gets 504, the one running finishes", async (t) => {
  t.is((await get("qt.test", "/")).status, 200);
  const slow = get("qt.test", "/slow");
  await waitFor(
    async () => (await ferryStatus(nginxStarted(nginx))).groups.find((g) => g.name === "inh-queue")?.processes.some((p) => p.inFlight > 0),
    { timeoutMs: 10_000, intervalMs: 50, what: "the slow request in the app" },
  );
  const queued = await get("qt.test", "/");
  t.is(queued.status, 504, queued.text);
  t.is((await slow).status, 200);
});

test.serial("client_max_body_size: a larger body gets nginx's 413, with a length or chunked", async (t) => {
  const port = nginxStarted(nginx).port;
  const body = Buffer.alloc(4096, "x");
  fromNginx(t, await request(port, { path: "/upload", method: "POST", host: "limit.test", body }), 413);
  fromNginx(t, await request(port, { path: "/upload", method: "POST", host: "limit.test", body: Readable.from([body]) }), 413);
  const small = await request(port, { path: "/upload", method: "POST", host: "limit.test", body: Buffer.alloc(100, "y") });
  t.is(small.status, 200, small.text);
  t.is(jsonOf(small).bytes, 100);
});

test.serial("passenger_app_type rack (a language Ferry does not run): 500 and FERRY0457 in nginx's error log", async (t) => {
  const res = await get("rack.test", "/");
  t.is(res.status, 500);
  t.is(res.headers["x-powered-by"], undefined);
  t.regex(nginxStarted(nginx).errorLog(), /FERRY0457: Cannot serve rack app \S+\/apps\/inh: Ferry runs Node.js and generic/);
});

test.serial("passenger_custom_error_page and passenger_spawn_exception_status_code: an app that cannot start gets that page with that status", async (t) => {
  const res = await get("cep.test", "/");
  t.is(res.status, 503);
  t.is(res.text, CUSTOM_PAGE);
});
