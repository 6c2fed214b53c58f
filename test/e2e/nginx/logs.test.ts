/**
 * End-to-end through a real nginx: logs with passenger_log_file (the shared
 * cases of test/e2e/shared/logs-cases.ts, run through Apache by
 * test/e2e/logs.test.ts); the rotation's reopen command is `nginx -s reopen`.
 * nginx only, on a second nginx without passenger_log_file (the counterpart
 * of Apache's ErrorLog case in test/e2e/logs.test.ts): the core's lines and
 * the apps' output go to nginx's error_log, and after a move of that file
 * `nginx -s reopen` takes them to the new one, with none in the moved file.
 */
import test from "ava";
import { readFile, rename } from "node:fs/promises";
import path from "node:path";
import { makeTempRoot, prepareApp, waitFor } from "../../helpers/apache.js";
import { getJson } from "../../helpers/e2e-http.js";
import { NginxServer, nginxStarted, stopAndRemoveNginx } from "../../helpers/nginx.js";
import { logsCases } from "../shared/logs-cases.js";

logsCases(test, "nginx");

let root = "";
let plain: NginxServer | undefined;

test.before(async () => {
  root = await makeTempRoot("e2e-nginx-errlog");
  const app = await prepareApp(root, "e2e-app", "plain");
  plain = await NginxServer.start({
    root, servers: [{ serverName: "plain.test", root: path.join(app, "public"), directives: ["passenger_enabled on;"] }],
  });
});

test.after.always(async () => {
  await stopAndRemoveNginx(plain, root);
});

test.afterEach.always((t) => {
  if (!t.passed && plain !== undefined) t.log(plain.errorLogTail(40));
});

test.serial("without passenger_log_file the core and the apps write to nginx's error_log, and follow it to a new file on nginx -s reopen", async (t) => {
  const srv = nginxStarted(plain);
  const before = await getJson(srv.port, "/say?line=before-move", "plain.test");
  await waitFor(() => srv.errorLog().includes(`plain[${String(before["pid"])}]: before-move`), { timeoutMs: 10_000, what: "the app's line in error_log" });
  t.true(srv.errorLog().includes("FERRY0300: Ferry core started"));
  await rename(srv.errorLogPath, `${srv.errorLogPath}.1`);
  await srv.reopenLogs();
  await waitFor(() => srv.errorLog().includes("FERRY0306: Log files reopened"), { timeoutMs: 20_000, what: "the core to reopen nginx's error_log" });
  const after = await getJson(srv.port, "/say?line=after-move", "plain.test");
  await waitFor(() => srv.errorLog().includes(`plain[${String(after["pid"])}]: after-move`), { timeoutMs: 10_000, what: "the app's line in the new error_log" });
  const moved = await readFile(`${srv.errorLogPath}.1`, "utf8");
  t.true(moved.includes("before-move"));
  t.false(moved.includes("FERRY0306"), "the reopen's line in the moved file");
  t.false(moved.includes("after-move"), "a line after the reopen in the moved file");
  // nginx said so (before it reopened: in the moved file).
  t.regex(moved, /reopening logs/);
});
