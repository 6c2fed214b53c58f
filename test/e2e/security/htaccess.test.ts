/**
 * Issue 4, per-app directives in a tenant's .htaccess, through a real Apache
 * and core run as root with two test users (tenants A and B), cPanel layout:
 * the vhost's DocumentRoot is A's public_html (no app next to it) and the
 * "Setup Node.js App" block in A's .htaccess points PassengerAppRoot at A's
 * app elsewhere. A's app is served, as A, with A's SetEnv. An .htaccess of A
 * pointing PassengerAppRoot at B's app is refused (500, FERRY0014 naming the
 * .htaccess, its owner and the app root's owner) and B's app is not spawned.
 */
import test from "ava";
import { chmod, chown, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { ApacheServer, REPO_ROOT, makeTempRoot, processesUnder, started, stopAndRemove } from "../../helpers/apache.js";
import { request } from "../../helpers/e2e-http.js";
import { ensureUser, prepareTenantApp, removeUser, type TestUser } from "../../helpers/users.js";

const FIXTURE = path.join(REPO_ROOT, "test/fixtures/apps/tenant-app");
const USER_A = "ferrytest-ha";
const USER_B = "ferrytest-hb";

let root = "";
let server: ApacheServer | undefined;
let tenantA: TestUser;
let tenantB: TestUser;
let appA = "";
let appB = "";
let htaccessEvil = "";

const srv = (): ApacheServer => started(server);

/** The block cPanel's "Setup Node.js App" (CloudLinux) writes. */
function cpanelBlock(appRoot: string, extra: string): string {
  return `# DO NOT REMOVE. CLOUDLINUX PASSENGER CONFIGURATION BEGIN
PassengerAppRoot "${appRoot}"
PassengerBaseURI "/"
PassengerNodejs "${process.execPath}"
PassengerAppType node
PassengerStartupFile app.js
PassengerAppEnv production
# DO NOT REMOVE. CLOUDLINUX PASSENGER CONFIGURATION END
${extra}`;
}

async function ownedDir(dir: string, owner: TestUser): Promise<void> {
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755);
  await chown(dir, owner.uid, owner.gid);
}

async function ownedFile(file: string, text: string, owner: TestUser): Promise<void> {
  await writeFile(file, text, { mode: 0o644 });
  await chown(file, owner.uid, owner.gid);
}

test.before(async () => {
  root = await makeTempRoot("sec-htaccess");
  tenantA = await ensureUser(USER_A);
  tenantB = await ensureUser(USER_B);
  appA = await prepareTenantApp(root, FIXTURE, "a", tenantA);
  appB = await prepareTenantApp(root, FIXTURE, "b", tenantB);
  // A's home: public_html is the vhost's DocumentRoot; the app lives elsewhere.
  const home = path.join(root, "home", "a");
  await mkdir(path.dirname(home), { recursive: true, mode: 0o755 });
  await ownedDir(home, tenantA);
  const docroot = path.join(home, "public_html");
  await ownedDir(docroot, tenantA);
  await ownedFile(path.join(docroot, ".htaccess"), cpanelBlock(appA, "SetEnv TENANT_NOTE from-a\n"), tenantA);
  // The attack: A's .htaccess aims at B's app, with A's SetEnv.
  await ownedDir(path.join(docroot, "evil"), tenantA);
  htaccessEvil = path.join(docroot, "evil", ".htaccess");
  await ownedFile(htaccessEvil, cpanelBlock(appB, "SetEnv NODE_OPTIONS --title=pwned-by-a\n"), tenantA);
  server = await ApacheServer.start({
    root,
    logLevel: "warn ferry:info",
    vhosts: [
      { serverName: "a.test", documentRoot: docroot },
      { serverName: "b.test", documentRoot: path.join(appB, "public") },
    ],
  });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
  await removeUser(USER_A).catch(() => undefined);
  await removeUser(USER_B).catch(() => undefined);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(40));
});

test.serial("an .htaccess pointing PassengerAppRoot at another tenant's app is refused and that app is not spawned", async (t) => {
  const res = await request(srv().port, { path: "/evil/id", host: "a.test" });
  t.is(res.status, 500, res.text.slice(0, 300));
  t.notRegex(res.text, /pwned|"uid"/);
  const esc = (x: string): string => x.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  t.regex(srv().errorLog(), new RegExp(
    `FERRY0014: Cannot serve the app configured by ${esc(htaccessEvil)} \\(owner ${USER_A}, uid ${tenantA.uid}\\): ` +
    `its app root ${esc(appB)} is owned by ${USER_B} \\(uid ${tenantB.uid}\\), not by the \\.htaccess owner`));
  // Nothing of B's runs: the request never reached the core.
  t.deepEqual(processesUnder(appB), []);
});

test.serial("the cPanel block in a tenant's .htaccess serves its app, as the tenant, with its SetEnv", async (t) => {
  const res = await request(srv().port, { path: "/id", host: "a.test" });
  t.is(res.status, 200, res.text.slice(0, 300));
  const body = JSON.parse(res.text) as { uid: number; gid: number; cwd: string; env: Record<string, string> };
  t.is(body.uid, tenantA.uid);
  t.is(body.gid, tenantA.gid);
  t.is(body.cwd, appA);
  t.is(body.env["TENANT_NOTE"], "from-a");
  t.is(body.env["NODE_ENV"], "production");
  // B's own vhost still serves B's app, as B.
  const resB = await request(srv().port, { path: "/id", host: "b.test" });
  t.is(resB.status, 200, resB.text.slice(0, 300));
  const bodyB = JSON.parse(resB.text) as { uid: number; env: Record<string, string> };
  t.is(bodyB.uid, tenantB.uid);
  t.is(bodyB.env["NODE_OPTIONS"], undefined);
});
