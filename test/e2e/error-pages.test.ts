/**
 * End-to-end through a real Apache: what a visitor sees when an app cannot
 * start, with PassengerFriendlyErrorPages on and off.
 */
import test from "ava";
import { writeFile } from "node:fs/promises";
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
  const customPage = path.join(root, "app-down.html");
  await writeFile(customPage, "<html><body><h1>CUSTOM-DOWN-PAGE</h1></body></html>\n", { mode: 0o644 });
  server = await ApacheServer.start({
    root,
    vhosts: [
      { serverName: "friendly.test", documentRoot: docroot, directives: ["PassengerFriendlyErrorPages on", "PassengerStartTimeout 20"] },
      { serverName: "plain.test", documentRoot: docroot, directives: ["PassengerFriendlyErrorPages off", "PassengerStartTimeout 20", "PassengerAppGroupName broken-plain"] },
      {
        serverName: "custom.test", documentRoot: docroot,
        directives: ["PassengerFriendlyErrorPages off", "PassengerStartTimeout 20", "PassengerAppGroupName broken-custom", `PassengerCustomErrorPage ${customPage}`],
      },
      {
        serverName: "custom-friendly.test", documentRoot: docroot,
        directives: ["PassengerFriendlyErrorPages on", "PassengerStartTimeout 20", "PassengerAppGroupName broken-custom-friendly", `PassengerCustomErrorPage ${customPage}`],
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

test.serial("PassengerCustomErrorPage replaces the error page when friendly pages are off (Passenger 6.0.23), same status", async (t) => {
  const res = await request(srv().port, { path: "/", host: "custom.test", timeoutMs: 60_000 });
  t.true(res.status >= 500 && res.status < 600, String(res.status));
  t.regex(String(res.headers["content-type"]), /text\/html/);
  t.is(res.text, "<html><body><h1>CUSTOM-DOWN-PAGE</h1></body></html>\n");
});

test.serial("PassengerCustomErrorPage leaves the friendly page alone when friendly pages are on", async (t) => {
  const res = await request(srv().port, { path: "/", host: "custom-friendly.test", timeoutMs: 60_000 });
  t.true(res.status >= 500 && res.status < 600, String(res.status));
  t.regex(res.text, /E2E-BOOT-MARKER/);
  t.notRegex(res.text, /CUSTOM-DOWN-PAGE/);
});
