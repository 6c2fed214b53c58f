/**
 * Which requests mod_ferry claims, and the app options it would send to the
 * core, through a real Apache: the module's config and mapping code built
 * with the stub data path (apache-module/test/map_stub.c), whose handler
 * answers with the msgpack [app, env] of the REQUEST_HEAD.
 *
 * Covers Passenger's mapping rules (reference/passenger.md §1.2): app root =
 * parent of DocumentRoot, PassengerBaseURI (symlinked public dir), app.js
 * autodetection, Passengerfile.json and PassengerAppStartCommand generic
 * apps, Ruby apps left alone, static files and page cache served by Apache,
 * mod_dir kept away, PassengerEnabled and other per-location directives in
 * .htaccess, server-wide directives refused there, the per-app directives
 * hosting panels write into .htaccess bound to the .htaccess owner (app root
 * and startup file must be the owner's, the app runs as the owner), mod_rewrite
 * and SetHandler precedence, SetEnv/PassengerEnvVar passing, and the server
 * options JSON.
 */
import test from "ava";
import { unpack } from "msgpackr";
import http from "node:http";
import { execFileSync } from "node:child_process";
import { chown, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  apacheLayout,
  baseConfig,
  buildStubModule,
  freePort,
  makeTempDir,
  startApache,
  type RunningApache,
} from "../helpers/mod-ferry-stub.js";

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

interface Claimed {
  readonly app: Record<string, unknown>;
  readonly env: Record<string, string>;
}

interface World {
  readonly dir: string;
  readonly apache: RunningApache;
  readonly serverFile: string;
}

/** The tenant of the .htaccess tests: nobody when we are root, else ourselves. */
const TENANT = process.getuid?.() === 0
  ? { name: "nobody", uid: Number(execFileSync("id", ["-u", "nobody"]).toString().trim()) }
  : { name: os.userInfo().username, uid: os.userInfo().uid };

let worldPromise: Promise<World> | undefined;
let tempDir: string | undefined;
let running: RunningApache | undefined;

async function put(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}

async function makeWorld(): Promise<World> {
  const dir = await makeTempDir("mapping");
  tempDir = dir;
  const a = (p: string): string => path.join(dir, "apps", p);
  // node1: a Node app found by app.js in the parent of DocumentRoot.
  await put(a("node1/app.js"), "require('http').createServer().listen(3000)\n");
  await put(a("node1/public/file.txt"), "static\n");
  await put(a("node1/public/about.html"), "<p>cached</p>\n");
  await put(a("node1/public/withindex/index.html"), "index page\n");
  await mkdir(a("node1/public/dir"), { recursive: true });
  await put(a("node1/public/off/.htaccess"), "PassengerEnabled off\n");
  await put(a("node1/public/on/.htaccess"),
    "PassengerStickySessions on\nPassengerBufferResponse on\nPassengerHighPerformance on\n");
  await put(a("node1/public/bad/.htaccess"), "PassengerMaxPoolSize 4\n");
  await put(a("node1/public/bad2/.htaccess"), "PassengerAppGroupName other\n");
  // An admin's (root-owned) .htaccess may point anywhere, as the main config may.
  await put(a("node1/public/admin/.htaccess"),
    `PassengerAppRoot ${a("typed")}\nPassengerAppType node\nPassengerStartupFile server.js\n`);
  // The cPanel "Setup Node.js App" block in a tenant's own .htaccess.
  const cpanel = (root: string, extra = ""): string => `# DO NOT REMOVE. CLOUDLINUX PASSENGER CONFIGURATION BEGIN
PassengerAppRoot "${root}"
PassengerBaseURI "/"
PassengerNodejs "/usr/bin/node"
PassengerAppType node
PassengerStartupFile app.js
PassengerAppEnv production
${extra}# DO NOT REMOVE. CLOUDLINUX PASSENGER CONFIGURATION END
`;
  const own = async (...files: string[]): Promise<void> => {
    for (const f of files) await chown(f, TENANT.uid, -1);
  };
  await put(a("tenant/app.js"), "\n");
  await put(a("tenant/public/.htaccess"), cpanel(a("tenant")));
  await put(a("tenant/public/log/.htaccess"), "PassengerAppLogFile /tmp/tenant.log\n");
  await put(a("tenant/public/log2/.htaccess"), "PassengerAppLogFile logs/app.log\n");
  await own(a("tenant"), a("tenant/app.js"), a("tenant/public"), a("tenant/public/.htaccess"),
    a("tenant/public/log"), a("tenant/public/log/.htaccess"), a("tenant/public/log2"), a("tenant/public/log2/.htaccess"));
  // A tenant pointing its .htaccess at an app it does not own.
  // Another owner's app: node1 (root's) when we are root, else a system dir.
  const isRoot = process.getuid?.() === 0;
  await put(a("evil/public/.htaccess"), cpanel(isRoot ? a("node1") : "/usr"));
  await put(a("evil2/app.js"), "\n");
  await put(a("evil2/public/.htaccess"),
    cpanel(a("evil2")).replace("app.js", isRoot ? "../node1/app.js" : "/usr/bin/env"));
  await own(a("evil"), a("evil/public"), a("evil/public/.htaccess"),
    a("evil2"), a("evil2/app.js"), a("evil2/public"), a("evil2/public/.htaccess"));
  await put(a("node1/public/rw/.htaccess"), "RewriteEngine on\nRewriteRule ^ /file.txt [L]\n");
  // A static site whose /sub is a symlink to another app's public dir.
  await put(path.join(dir, "www/index.html"), "www index\n");
  await put(a("sub/app.js"), "\n");
  await mkdir(a("sub/public"), { recursive: true });
  await symlink(a("sub/public"), path.join(dir, "www/sub"));
  // A Ruby app: not ours.
  await put(a("ruby/config.ru"), "run ->(env) { [200, {}, ['ruby']] }\n");
  await put(a("ruby/public/robots.txt"), "ruby static\n");
  // Generic apps.
  await put(a("gen/Passengerfile.json"),
    '{"app_type": "x", "nested": {"a": ["}", 1, true]}, "app_start_command": "python3 -m http.server \\u0024PORT"}\n');
  await mkdir(a("gen/public"), { recursive: true });
  await mkdir(a("cmd/public"), { recursive: true });
  await mkdir(a("typed/public"), { recursive: true });

  const { httpd, modules } = await apacheLayout();
  const so = await buildStubModule(dir);
  const port = await freePort();
  const serverFile = path.join(dir, "server.json");
  const vhost = (name: string, docroot: string, body: string): string =>
    `<VirtualHost 127.0.0.1:${port}>\n  ServerName ${name}\n  DocumentRoot ${docroot}\n${body}\n</VirtualHost>\n`;
  const conf = `${baseConfig({ serverRoot: dir, modules, ferrySo: so, port, documentRoot: path.join(dir, "www") })}
LoadModule status_module ${modules}/mod_status.so
LogLevel warn ferry:trace2
<Directory ${dir}>
  AllowOverride All
  Options Indexes FollowSymLinks
  Require all granted
</Directory>
DirectoryIndex index.html
PassengerRoot /opt/ferry
PassengerMaxPoolSize 9
PassengerPoolIdleTime 2min
PassengerPreStart http://node1.test/
PassengerUserSwitching off
PassengerDefaultUser nobody
PassengerLogLevel 5
PassengerLogFile ${dir}/ferry.log
PassengerRedeployOnGraceful changed
PassengerNodejs /usr/bin/node
PassengerMaxInstancesPerApp 3
${vhost("node1.test", a("node1/public"), `
  SetEnv MY_VAR hello
  SetEnv no-gzip 1
  SetEnvIf Host . FROM_SETENVIF=yes
  PassengerEnvVar FOO bar
  PassengerEnvVar MY_VAR overridden
  PassengerAppEnv staging
  PassengerMinInstances 2
  PassengerReadTimeout 90
  PassengerMemoryLimit 256
  PassengerStartTimeout 2min
  PassengerShowVersionInHeader off
  <Location /status>
    SetHandler server-status
  </Location>
  <Location /disabled>
    PassengerEnabled off
  </Location>
  <Location /ws>
    PassengerWebSocketIdleTimeout 10min
    PassengerErrorOverride on
  </Location>`)}
${vhost("base.test", path.join(dir, "www"), "  PassengerBaseURI /sub")}
${vhost("ruby.test", a("ruby/public"), "")}
${vhost("rubytype.test", a("ruby/public"), `  PassengerAppRoot ${a("ruby")}\n  PassengerAppType ruby`)}
${vhost("gen.test", a("gen/public"), "")}
${vhost("cmd.test", a("cmd/public"), `  PassengerAppRoot apps/cmd/\n  PassengerAppStartCommand "node server.js"`)}
${vhost("typed.test", a("typed/public"), `  PassengerAppRoot ${a("typed")}\n  PassengerAppType node\n  PassengerStartupFile server.js\n  PassengerAppGroupName typed-group`)}
${vhost("notyped.test", a("typed/public"), "  PassengerAppType node")}
${vhost("tenant.test", a("tenant/public"), "  PassengerUser root")}
${vhost("evil.test", a("evil/public"), "")}
${vhost("evil2.test", a("evil2/public"), "")}
`;
  const confFile = path.join(dir, "httpd.conf");
  await writeFile(confFile, conf);
  const apache = await startApache(httpd, confFile, port, path.join(dir, "error_log"),
    { FERRY_STUB_SERVER_FILE: serverFile });
  running = apache;
  return { dir, apache, serverFile };
}

function world(): Promise<World> {
  worldPromise ??= makeWorld();
  return worldPromise;
}

test.after.always(async () => {
  if (running) await running.stop();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

async function request(host: string, urlPath: string, method = "GET"): Promise<Reply> {
  const w = await world();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port: w.apache.port, path: urlPath, method, headers: { Host: host }, timeout: 20_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`Cannot GET ${host}${urlPath}: no answer after 20000 ms`)));
    req.on("error", reject);
    req.end();
  });
}

function claimed(r: Reply): Claimed | undefined {
  if (r.status !== 200 || r.headers["content-type"] !== "application/x-msgpack") return undefined;
  const decoded: unknown = unpack(r.body);
  if (!Array.isArray(decoded) || decoded.length !== 2) throw new Error("Cannot decode the stub reply: not [app, env]");
  const [app, flat] = decoded as [unknown, unknown];
  if (typeof app !== "object" || app === null || !Array.isArray(flat)) throw new Error("Cannot decode the stub reply: bad types");
  const env: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) env[String(flat[i])] = String(flat[i + 1]);
  return { app: app as Record<string, unknown>, env };
}

async function mustClaim(t: { fail(m: string): void }, host: string, urlPath: string, method = "GET"): Promise<Claimed> {
  const r = await request(host, urlPath, method);
  const c = claimed(r);
  if (!c) {
    t.fail(`${method} ${host}${urlPath} was not claimed: ${r.status} ${r.headers["content-type"] ?? ""} ${r.body.toString().slice(0, 200)}`);
    throw new Error("not claimed");
  }
  return c;
}

test("a Node app under the parent of DocumentRoot is claimed with its per-app options", async (t) => {
  const w = await world();
  const root = path.join(w.dir, "apps/node1");
  const c = await mustClaim(t, "node1.test", "/some/page?q=1");
  t.like(c.app, {
    app_root: root,
    app_type: "node",
    startup_file: "app.js",
    app_env: "staging",
    app_group_name: `${root} (staging)`,
    base_uri: "",
    document_root: path.join(root, "public"),
    nodejs: "/usr/bin/node",
    min_instances: 2,
    max_instances_per_app: 3,
    memory_limit: 256,
    start_timeout: 120,
    show_version_in_header: false,
  });
  t.false("sticky_sessions" in c.app, "unset options are not sent");
});

test("SetEnv, SetEnvIf and PassengerEnvVar reach env; httpd control and CGI variables do not", async (t) => {
  const c = await mustClaim(t, "node1.test", "/");
  t.is(c.env["MY_VAR"], "overridden", "PassengerEnvVar wins over SetEnv");
  t.is(c.env["FOO"], "bar");
  t.is(c.env["FROM_SETENVIF"], "yes");
  t.false("no-gzip" in c.env);
  t.false(Object.keys(c.env).some((k) => k.startsWith("HTTP_") || k === "HTTPS" || k === "DOCUMENT_ROOT"));
});

test("the data-path knobs follow PassengerReadTimeout, WebSocketIdleTimeout and ErrorOverride", async (t) => {
  const r1 = await request("node1.test", "/x");
  t.is(r1.headers["x-ferry-read-timeout"], "90000");
  t.is(r1.headers["x-ferry-ws-idle-timeout"], "60000", "defaults to Apache's Timeout");
  t.is(r1.headers["x-ferry-error-override"], "0");
  t.is(r1.headers["x-ferry-show-version"], "0");
  const r2 = await request("node1.test", "/ws/chat");
  t.is(r2.headers["x-ferry-ws-idle-timeout"], "600000");
  t.is(r2.headers["x-ferry-error-override"], "1");
});

test("existing files and Passenger's page cache are served by Apache", async (t) => {
  const f = await request("node1.test", "/file.txt");
  t.is(f.status, 200);
  t.is(f.body.toString(), "static\n");
  const about = await request("node1.test", "/about");
  t.is(about.body.toString(), "<p>cached</p>\n");
  t.regex(String(about.headers["content-type"]), /text\/html/);
  const idx = await request("node1.test", "/withindex/");
  t.is(idx.body.toString(), "index page\n");
  // Page cache is for GET only.
  await mustClaim(t, "node1.test", "/about", "POST");
});

test("directories without an index go to the app, not to mod_dir or mod_autoindex", async (t) => {
  const noSlash = await mustClaim(t, "node1.test", "/dir");
  t.is(noSlash.app["app_type"], "node");
  await mustClaim(t, "node1.test", "/dir/");
  await mustClaim(t, "node1.test", "/");
});

test("PassengerBaseURI maps a sub-URI to the app behind the symlinked public dir", async (t) => {
  const w = await world();
  const c = await mustClaim(t, "base.test", "/sub/items/1");
  t.is(c.app["app_root"], path.join(w.dir, "apps/sub"));
  t.is(c.app["base_uri"], "/sub");
  t.is(c.app["document_root"], path.join(w.dir, "www"));
  const exact = await mustClaim(t, "base.test", "/sub");
  t.is(exact.app["base_uri"], "/sub");
  const other = await request("base.test", "/subway");
  t.is(other.status, 404, "a prefix without / is not the base URI");
  const home = await request("base.test", "/");
  t.is(home.body.toString(), "www index\n");
});

test("a Ruby app is left to Apache; an explicit PassengerAppType ruby answers 500", async (t) => {
  const w = await world();
  const r = await request("ruby.test", "/anything");
  t.is(r.status, 404);
  t.is((await request("ruby.test", "/robots.txt")).body.toString(), "ruby static\n");
  const typed = await request("rubytype.test", "/anything");
  t.is(typed.status, 500);
  const log = await readFile(w.apache.errorLog, "utf8");
  t.regex(log, /FERRY0006: Cannot serve ruby app .*apps\/ruby: Ferry runs Node\.js and generic/);
});

test("generic apps come from Passengerfile.json or PassengerAppStartCommand (relative app root from ServerRoot)", async (t) => {
  const w = await world();
  const g = await mustClaim(t, "gen.test", "/");
  t.like(g.app, { app_type: "generic", app_start_command: "python3 -m http.server $PORT", app_root: path.join(w.dir, "apps/gen") });
  t.false("startup_file" in g.app);
  const c = await mustClaim(t, "cmd.test", "/x");
  t.like(c.app, { app_type: "generic", app_start_command: "node server.js", app_root: path.join(w.dir, "apps/cmd") });
});

test("PassengerAppType node with PassengerAppRoot takes PassengerStartupFile and PassengerAppGroupName", async (t) => {
  const w = await world();
  const c = await mustClaim(t, "typed.test", "/");
  t.like(c.app, {
    app_type: "node",
    app_root: path.join(w.dir, "apps/typed"),
    startup_file: "server.js",
    app_group_name: "typed-group",
  });
  // Without PassengerAppRoot, the derived root must hold the startup file.
  const r = await request("notyped.test", "/nothing-here");
  t.is(r.status, 404);
});

test("PassengerEnabled off in a Location or .htaccess leaves requests to Apache", async (t) => {
  t.is((await request("node1.test", "/disabled/x")).status, 404);
  t.is((await request("node1.test", "/off/x")).status, 404);
});

test("per-location directives work from .htaccess; server-wide ones and PassengerAppGroupName are refused there", async (t) => {
  const w = await world();
  const r = await request("node1.test", "/on/x");
  const c = claimed(r);
  t.truthy(c, r.body.toString());
  t.is(c?.app["sticky_sessions"], true);
  t.is(r.headers["x-ferry-buffer-response"], "1");
  t.is((await request("node1.test", "/bad/x")).status, 500);
  t.is((await request("node1.test", "/bad2/x")).status, 500);
  const log = await readFile(w.apache.errorLog, "utf8");
  t.regex(log, /PassengerMaxPoolSize not allowed here/);
  t.regex(log, /PassengerAppGroupName not allowed here/);
});

test("the cPanel block in a tenant's .htaccess configures the app, which runs as the .htaccess owner", async (t) => {
  const w = await world();
  const root = path.join(w.dir, "apps/tenant");
  const c = await mustClaim(t, "tenant.test", "/dashboard");
  t.like(c.app, {
    app_root: root,
    app_type: "node",
    startup_file: "app.js",
    app_env: "production",
    nodejs: "/usr/bin/node",
    // The vhost's PassengerUser root does not win over the .htaccess owner.
    user: TENANT.name,
  });
  // PassengerAppLogFile from the tenant's .htaccess: inside the app root only.
  const inRoot = await mustClaim(t, "tenant.test", "/log2/x");
  t.is(inRoot.app["app_log_file"], "logs/app.log");
  t.is((await request("tenant.test", "/log/x")).status, 500);
  const log = await readFile(w.apache.errorLog, "utf8");
  t.regex(log, /FERRY0018: Cannot serve the app configured by \S+\/tenant\/public\/log\/\.htaccess .*PassengerAppLogFile \/tmp\/tenant\.log from an \.htaccess must be inside the app root/);
});

test("an admin's root-owned .htaccess may set per-app directives without a binding", async (t) => {
  const w = await world();
  const c = await mustClaim(t, "node1.test", "/admin/x");
  t.like(c.app, { app_root: path.join(w.dir, "apps/typed"), startup_file: "server.js" });
  t.false("user" in c.app);
});

test("a tenant's .htaccess pointing at an app root or startup file it does not own is refused (500, FERRY0014)", async (t) => {
  const w = await world();
  const r = await request("evil.test", "/x");
  t.is(r.status, 500);
  t.not(r.headers["content-type"], "application/x-msgpack");
  const r2 = await request("evil2.test", "/x");
  t.is(r2.status, 500);
  const log = await readFile(w.apache.errorLog, "utf8");
  const esc = (x: string): string => x.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const isRoot = process.getuid?.() === 0;
  const owner = esc(`(owner ${TENANT.name}, uid ${TENANT.uid})`);
  const otherRoot = isRoot ? path.join(w.dir, "apps/node1") : "/usr";
  const otherStartup = isRoot ? `${w.dir}/apps/evil2/../node1/app.js` : "/usr/bin/env";
  t.regex(log, new RegExp(`FERRY0014: Cannot serve the app configured by ${esc(path.join(w.dir, "apps/evil/public/.htaccess"))} ${owner}: its app root ${esc(otherRoot)} is owned by root \\(uid 0\\), not by the \\.htaccess owner`));
  t.regex(log, new RegExp(`FERRY0014: Cannot serve the app configured by ${esc(path.join(w.dir, "apps/evil2/public/.htaccess"))} ${owner}: its startup file ${esc(otherStartup)} is owned by root \\(uid 0\\)`));
});

test("mod_rewrite in .htaccess and SetHandler take precedence over the app", async (t) => {
  const rw = await request("node1.test", "/rw/anything");
  t.is(rw.body.toString(), "static\n");
  const st = await request("node1.test", "/status");
  t.is(st.status, 200);
  t.regex(st.body.toString(), /Apache Server Status/);
});

test("the server options JSON and daemon accessors reflect the global directives", async (t) => {
  const w = await world();
  const parsed: unknown = JSON.parse(await readFile(w.serverFile, "utf8"));
  t.deepEqual(parsed, {
    server: {
      max_pool_size: 9,
      pool_idle_time: 120,
      max_instances_per_app: 3,
      log_level: 5,
      user_switching: false,
      default_user: "nobody",
      log_file: path.join(w.dir, "ferry.log"),
      prestart: ["http://node1.test/"],
    },
    root: "/opt/ferry",
    instance_registry_dir: null,
    log_file: path.join(w.dir, "ferry.log"),
    nodejs: "/usr/bin/node",
    default_user: "nobody",
    default_group: null,
    user_switching: false,
    log_level: 5,
    redeploy_on_graceful: "changed",
  });
});
