/**
 * End-to-end through a real Apache: what a visitor sees when an app cannot
 * start, with PassengerFriendlyErrorPages on and off.
 */
import test from "ava";
import path from "node:path";
import { ApacheServer, makeTempRoot, prepareApp, started, stopAndRemove } from "../helpers/apache.js";
import { request } from "../helpers/e2e-http.js";

let server: ApacheServer | undefined;
let root = "";
let broken = "";

const srv = (): ApacheServer => started(server);

test.before(async () => {
  root = await makeTempRoot("e2e-errors");
  broken = await prepareApp(root, "e2e-crash-on-start", "broken");
  const docroot = path.join(broken, "public");
  server = await ApacheServer.start({
    root,
    vhosts: [
      { serverName: "friendly.test", documentRoot: docroot, directives: ["PassengerFriendlyErrorPages on", "PassengerStartTimeout 20"] },
      { serverName: "plain.test", documentRoot: docroot, directives: ["PassengerFriendlyErrorPages off", "PassengerStartTimeout 20", "PassengerAppGroupName broken-plain"] },
    ],
  });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(60));
});

test.serial("PassengerFriendlyErrorPages on shows why the app failed to start", async (t) => {
  const res = await request(srv().port, { path: "/", host: "friendly.test", timeoutMs: 60_000 });
  t.true(res.status >= 500 && res.status < 600, String(res.status));
  t.regex(String(res.headers["content-type"]), /text\/html/);
  t.regex(res.text, /E2E-BOOT-MARKER/);
});

test.serial("PassengerFriendlyErrorPages off hides the details", async (t) => {
  const res = await request(srv().port, { path: "/", host: "plain.test", timeoutMs: 60_000 });
  t.true(res.status >= 500 && res.status < 600, String(res.status));
  t.notRegex(res.text, /E2E-BOOT-MARKER/);
  t.notRegex(res.text, /cannot start|about to fail/);
});
