/**
 * PassengerHighPerformance through a real Apache (one server, two
 * VirtualHosts on the same app, the directive on in one of them): an app
 * request is claimed in map_to_storage, before core's directory walk, so
 * `<Directory>` sections and .htaccess files no longer apply to app URIs;
 * static files, `<Location>` sections (Require, PassengerEnabled off) and
 * TRACE stay Apache's. With the
 * directive off (the default), and inside a `<Directory>`, nothing changes.
 */
import test from "ava";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { ApacheServer, makeTempRoot, prepareApp, started, stopAndRemove } from "../helpers/apache.js";
import { request } from "../helpers/e2e-http.js";

let server: ApacheServer | undefined;
let root = "";

const HP = "hp.test";
const OFF = "off.test";

test.before(async () => {
  root = await makeTempRoot("e2e-hiperf");
  const appRoot = await prepareApp(root, "e2e-app", "hp");
  const pub = path.join(appRoot, "public");
  await writeFile(path.join(pub, "file.txt"), "static file\n");
  // Directories under public/ named like app routes (/version, /headers):
  // one denied by a <Directory> section, one by its own .htaccess.
  await mkdir(path.join(pub, "version"), { mode: 0o755 });
  await writeFile(path.join(pub, "version", "notes.txt"), "release notes\n");
  await mkdir(path.join(pub, "headers"), { mode: 0o755 });
  await writeFile(path.join(pub, "headers", ".htaccess"), "Require all denied\n");
  const denyVersion = (extra: string[]): string[] => [
    `<Directory "${path.join(pub, "version")}">`, ...extra.map((d) => `    ${d}`), "    Require all denied", "</Directory>",
  ];
  server = await ApacheServer.start({
    root,
    vhosts: [
      {
        serverName: HP, documentRoot: pub,
        directives: ["PassengerHighPerformance on", ...denyVersion([]),
          "<Location /pid>", "    Require all denied", "</Location>",
          "<Location /url>", "    PassengerEnabled off", "</Location>"],
      },
      // Inside <Directory> the directive is accepted and has no effect.
      { serverName: OFF, documentRoot: pub, directives: denyVersion(["PassengerHighPerformance on"]) },
    ],
  });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(40));
});

test.serial("PassengerHighPerformance on: an app URI is served by the app although a <Directory> section or .htaccess denies it", async (t) => {
  const srv = started(server);
  const home = await request(srv.port, { path: "/", host: HP });
  t.is(home.status, 200);
  t.regex(home.text, /^hello from e2e-app/);
  const version = await request(srv.port, { path: "/version", host: HP });
  t.is(version.status, 200, version.text);
  t.is((JSON.parse(version.text) as { version?: unknown }).version, "v1");
  const headers = await request(srv.port, { path: "/headers", host: HP });
  t.is(headers.status, 200, headers.text);
  t.is((JSON.parse(headers.text) as { method?: unknown }).method, "GET");
});

test.serial("PassengerHighPerformance on: static files, <Directory> on them, <Location> and TRACE stay Apache's", async (t) => {
  const srv = started(server);
  const file = await request(srv.port, { path: "/file.txt", host: HP });
  t.is(file.status, 200);
  t.is(file.text, "static file\n");
  t.is((await request(srv.port, { path: "/version/notes.txt", host: HP })).status, 403, "a static file still goes through the directory walk");
  t.is((await request(srv.port, { path: "/pid", host: HP })).status, 403, "<Location> still applies to app URIs");
  t.is((await request(srv.port, { path: "/url", host: HP })).status, 404, "PassengerEnabled off in <Location>: Apache's 404, not the app's /url");
  const trace = await request(srv.port, { path: "/version", method: "TRACE", host: HP });
  t.is(trace.status, 200);
  t.regex(String(trace.headers["content-type"]), /^message\/http/, "Apache answers TRACE (TraceEnable), not the app");
});

test.serial("PassengerHighPerformance off (the default, or set inside <Directory>): <Directory> and .htaccess deny app URIs", async (t) => {
  const srv = started(server);
  t.is((await request(srv.port, { path: "/version", host: OFF })).status, 403);
  t.is((await request(srv.port, { path: "/headers", host: OFF })).status, 403);
  const file = await request(srv.port, { path: "/file.txt", host: OFF });
  t.is(file.status, 200);
  t.is(file.text, "static file\n");
  t.regex(srv.errorLog(), /FERRY0001: PassengerHighPerformance \(\S+:\d+\) is accepted for compatibility and has no effect: inside <Directory>/);
});
