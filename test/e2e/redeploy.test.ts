/**
 * End-to-end through a real Apache: what `apachectl graceful` redeploys under
 * PassengerRedeployOnGraceful changed / off (`all` is in lifecycle.test.ts).
 */
import test from "ava";
import path from "node:path";
import { ApacheServer, makeTempRoot, prepareApp, waitFor, type VHostSpec, started, stopAndRemove } from "../helpers/apache.js";
import { getJson } from "../helpers/e2e-http.js";

let server: ApacheServer | undefined;
let root = "";
const apps = { steady: "", edited: "" };

const srv = (): ApacheServer => started(server);

function vhosts(rev: number): VHostSpec[] {
  return [
    { serverName: "steady.test", documentRoot: path.join(apps.steady, "public"), directives: ["SetEnv E2E_REV steady"] },
    { serverName: "edited.test", documentRoot: path.join(apps.edited, "public"), directives: [`SetEnv E2E_REV ${rev}`] },
  ];
}

test.before(async () => {
  root = await makeTempRoot("e2e-redeploy");
  apps.steady = await prepareApp(root, "e2e-app", "steady");
  apps.edited = await prepareApp(root, "e2e-app", "edited");
  server = await ApacheServer.start({ root, global: ["PassengerRedeployOnGraceful changed"], vhosts: vhosts(1) });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(60));
});

async function envOf(host: string): Promise<{ pid: number; rev: string }> {
  const body = (await getJson(srv().port, "/env", host)) as { env: Record<string, string> };
  const pid = (await getJson(srv().port, "/pid", host)) as { pid: number };
  return { pid: pid.pid, rev: body.env.E2E_REV ?? "" };
}

test.serial("PassengerRedeployOnGraceful changed: graceful restarts only the app whose config changed", async (t) => {
  const steady = await envOf("steady.test");
  const edited = await envOf("edited.test");
  t.is(edited.rev, "1");
  const core = srv().corePid();
  await srv().reconfigure({ global: ["PassengerRedeployOnGraceful changed"], vhosts: vhosts(2) });
  await srv().graceful();
  const after = await waitFor(
    async () => {
      const e = await envOf("edited.test");
      return e.rev === "2" ? e : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: "the edited app to run with its new SetEnv" },
  );
  t.not(after.pid, edited.pid);
  const steadyAfter = await envOf("steady.test");
  t.is(steadyAfter.pid, steady.pid);
  t.is(srv().corePid(), core);
});

test.serial("PassengerRedeployOnGraceful off: graceful keeps every app process", async (t) => {
  const steady = await envOf("steady.test");
  const edited = await envOf("edited.test");
  await srv().reconfigure({ global: ["PassengerRedeployOnGraceful off"], vhosts: vhosts(2) });
  await srv().graceful();
  for (let i = 0; i < 5; i++) {
    t.is((await envOf("steady.test")).pid, steady.pid);
    t.is((await envOf("edited.test")).pid, edited.pid);
  }
});

test.serial("a graceful with a broken PassengerRoot keeps the running core and Apache serving", async (t) => {
  const core = srv().corePid();
  const before = await envOf("steady.test");
  await srv().reconfigure({ global: [`PassengerRoot "${path.join(root, "no-ferry-here")}"`], vhosts: vhosts(2) });
  await srv().graceful();
  t.true(srv().isRunning);
  t.is(srv().corePid(), core);
  t.regex(srv().errorLog(), /FERRY0215: Cannot start the ferry core: .*no-ferry-here\/build\/core\/src\/main\.js is missing/);
  t.regex(srv().errorLog(), /FERRY0220: The running ferry core keeps serving/);
  const after = await envOf("steady.test");
  t.is(after.rev, "steady");
  t.true(after.pid > 0 && before.pid > 0);
});
