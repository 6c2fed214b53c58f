/**
 * End-to-end through a real Apache (event MPM) + mod_ferry + the core: how a
 * request and its response look to a client. One Apache for the whole file,
 * several VirtualHosts in it.
 */
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { ApacheServer, makeTempRoot, prepareApp, started, stopAndRemove } from "../helpers/apache.js";
import { getJson, request } from "../helpers/e2e-http.js";
import { sharedHttpCases } from "./shared/http-cases.js";

let server: ApacheServer | undefined;
let root = "";
const apps = { main: "", alpha: "", beta: "", env: "", sub: "", owned: "" };

const srv = (): ApacheServer => started(server);

test.before(async () => {
  root = await makeTempRoot("e2e-http");
  apps.main = await prepareApp(root, "e2e-app", "main");
  apps.alpha = await prepareApp(root, "e2e-app", "alpha");
  apps.beta = await prepareApp(root, "e2e-app", "beta");
  apps.env = await prepareApp(root, "e2e-app", "envapp");
  apps.sub = await prepareApp(root, "e2e-app", "subapp");
  apps.owned = await prepareApp(root, "e2e-app", "owned");
  if (process.getuid?.() === 0) execFileSync("chown", ["-R", "daemon:daemon", apps.owned]);
  // A static site that hosts the sub-URI app under /sub.
  const site = path.join(root, "site");
  await mkdir(site, { recursive: true });
  await writeFile(path.join(site, "index.html"), "static root website\n");
  await writeFile(path.join(apps.main, "public", "static.txt"), "served by apache\n");
  await symlink(path.join(apps.sub, "public"), path.join(site, "sub"));
  server = await ApacheServer.start({
    root,
    vhosts: [
      { serverName: "main.test", documentRoot: path.join(apps.main, "public") },
      { serverName: "alpha.test", documentRoot: path.join(apps.alpha, "public") },
      { serverName: "beta.test", documentRoot: path.join(apps.beta, "public") },
      {
        serverName: "env.test",
        documentRoot: path.join(apps.env, "public"),
        directives: ["SetEnv E2E_SETENV hello-from-setenv", "PassengerAppEnv staging"],
      },
      { serverName: "owned.test", documentRoot: path.join(apps.owned, "public") },
      {
        serverName: "sub.test",
        documentRoot: site,
        directives: [
          "DirectoryIndex index.html",
          `<Directory "${path.join(apps.sub, "public")}">`,
          "    Require all granted",
          "</Directory>",
          "<Location /sub>",
          "    PassengerBaseURI /sub",
          `    PassengerAppRoot "${apps.sub}"`,
          "</Location>",
        ],
      },
    ],
  });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(60));
});

sharedHttpCases(test, () => ({ port: srv().port, host: "main.test" }));

test.serial("a static file under the DocumentRoot is served by Apache, not the app", async (t) => {
  const res = await request(srv().port, { path: "/static.txt", host: "main.test" });
  t.is(res.status, 200);
  t.is(res.text, "served by apache\n");
});

test.serial("SetEnv and PassengerAppEnv reach the app's environment", async (t) => {
  const body = (await getJson(srv().port, "/env", "env.test")) as { env: Record<string, string> };
  t.is(body.env.E2E_SETENV, "hello-from-setenv");
  t.is(body.env.NODE_ENV, "staging");
  t.is(body.env.PASSENGER_APP_ENV, "staging");
});

test.serial("apps run as the owner of their startup file, nobody when that is root", async (t) => {
  const me = process.getuid?.() ?? -1;
  const isRoot = me === 0;
  const main = (await getJson(srv().port, "/env", "main.test")) as { uid: number };
  const owned = (await getJson(srv().port, "/env", "owned.test")) as { uid: number };
  t.is(main.uid, isRoot ? 65534 : me);
  t.is(owned.uid, isRoot ? 1 : me); // uid 1 = daemon
});

test.serial("two VirtualHosts serve two different apps", async (t) => {
  const a = (await getJson(srv().port, "/pid", "alpha.test")) as { pid: number; cwd: string };
  const b = (await getJson(srv().port, "/pid", "beta.test")) as { pid: number; cwd: string };
  t.is(a.cwd, apps.alpha);
  t.is(b.cwd, apps.beta);
  t.not(a.pid, b.pid);
});

test.serial("PassengerBaseURI serves the app under /sub and leaves the root site alone", async (t) => {
  const app = (await getJson(srv().port, "/sub/url?q=1", "sub.test")) as { url: string; base: string };
  t.is(app.url, "/sub/url?q=1");
  t.is(app.base, "/sub");
  const home = await request(srv().port, { path: "/", host: "sub.test" });
  t.is(home.status, 200);
  t.is(home.text, "static root website\n");
});
