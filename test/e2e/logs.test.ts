/**
 * End-to-end through a real Apache: with PassengerLogFile, the shared cases
 * of test/e2e/shared/logs-cases.ts (nginx runs them in
 * test/e2e/nginx/logs.test.ts). Apache-only, on a second Apache without
 * PassengerLogFile: the core's lines are in Apache's error-log shape
 * (`[ferry:notice] [pid N] FERRYnnnn: …`) in its ErrorLog, app output goes to
 * PassengerAppLogFile, a rotation under load followed by `apachectl graceful`
 * (what conf/logrotate.d/ferry does) loses no line and writes none to the
 * moved files afterwards (ErrorLog included), and PassengerLogFormat json
 * switches the core to JSON lines there.
 */
import test from "ava";
import { chmod, mkdir, readFile, rename } from "node:fs/promises";
import path from "node:path";
import { ApacheServer, makeTempRoot, prepareApp, started, stopAndRemove, waitFor } from "../helpers/apache.js";
import { request } from "../helpers/e2e-http.js";
import { logsCases } from "./shared/logs-cases.js";

logsCases(test, "apache");

let server: ApacheServer | undefined;
let root = "";
let appRoot = "";
let plainRoot = "";
let appLog = "";

const vhosts = (): Array<{ serverName: string; documentRoot: string; directives: string[] }> => [{
  serverName: "logs.test", documentRoot: path.join(appRoot, "public"),
  directives: [`PassengerAppLogFile ${appLog}`, "PassengerMinInstances 2", "PassengerMaxInstancesPerApp 2"],
}, { serverName: "plain.test", documentRoot: path.join(plainRoot, "public"), directives: [] }];

test.before(async () => {
  root = await makeTempRoot("e2e-logs");
  appRoot = await prepareApp(root, "e2e-app", "logged");
  plainRoot = await prepareApp(root, "e2e-app", "plain");
  await mkdir(path.join(root, "applogs"), { mode: 0o755 });
  await chmod(path.join(root, "applogs"), 0o755);
  appLog = path.join(root, "applogs", "app.log");
  server = await ApacheServer.start({ root, vhosts: vhosts() });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(60));
});

const lines = async (file: string): Promise<string[]> => (await readFile(file, "utf8").catch(() => "")).split("\n").filter((l) => l !== "");
/** `line-N` of an app log line `[time] App <pid> stdout: line-N`. */
const said = (l: string): string => l.replace(/^.*stdout: /, "");
const APACHE_SHAPE = /^\[\w{3} \w{3} \d\d \d\d:\d\d:\d\d\.\d{6} \d{4}\] \[ferry:(notice|warn|error|crit|debug)\] \[pid \d+\] /;

test.serial("the core writes Apache's error-log shape with the ferry module tag and FERRY numbers", async (t) => {
  const srv = started(server);
  t.is((await request(srv.port, { path: "/say?line=hello", host: "plain.test" })).status, 200);
  t.is((await request(srv.port, { path: "/say?line=apart", host: "logs.test" })).status, 200);
  await waitFor(() => srv.errorLog().includes("]: hello"), { timeoutMs: 10_000, what: "the app's line in the error log" });
  await waitFor(async () => (await lines(appLog)).some((l) => l.endsWith("stdout: apart")), { timeoutMs: 10_000, what: "the line in PassengerAppLogFile" });
  t.false(srv.errorLog().includes("apart"), "PassengerAppLogFile takes the app's output apart from the error log");
  const log = srv.errorLog().split("\n");
  const core = log.find((l) => l.includes("FERRY0300: Ferry core started"));
  t.truthy(core);
  t.regex(core ?? "", APACHE_SHAPE);
  t.regex(log.find((l) => l.endsWith("]: hello")) ?? "", /\[ferry:notice\] \[pid \d+\] plain\[\d+\]: hello$/);
  t.false(log.some((l) => l.startsWith("{")), "no raw JSON line");
});

test.serial("a rotation under load, then apachectl graceful: no line lost, none written to the moved files after the reopen", async (t) => {
  const srv = started(server);
  let seq = 0;
  let stop = false;
  const sent: number[] = [];
  const client = async (): Promise<void> => {
    while (!stop) {
      const n = seq++;
      const r = await request(srv.port, { path: `/say?line=line-${n}`, host: "logs.test" });
      if (r.status !== 200) throw new Error(`request ${n}: ${r.status}`);
      sent.push(n);
    }
  };
  const clients = Array.from({ length: 4 }, () => client());
  try {
    await waitFor(() => seq > 100, { timeoutMs: 30_000, intervalMs: 10, what: "100 lines" });
    await rename(appLog, `${appLog}.1`);
    await rename(srv.errorLogPath, `${srv.errorLogPath}.1`);
    await srv.graceful();
    await waitFor(() => srv.errorLog().includes("FERRY0306: Log files reopened"), { timeoutMs: 20_000, what: "the core to reopen its logs" });
    const afterReopen = seq; // requests numbered from here on started after the reopen
    await waitFor(() => seq > afterReopen + 100, { timeoutMs: 30_000, intervalMs: 10, what: "100 more lines" });
    stop = true;
    await Promise.all(clients);

    const want = new Set(sent.map((x) => `line-${x}`));
    await waitFor(async () => [...await lines(`${appLog}.1`), ...await lines(appLog)].filter((l) => want.has(said(l))).length >= want.size,
      { timeoutMs: 15_000, what: "every line in the app logs" });
    const old = (await lines(`${appLog}.1`)).map(said).filter((l) => l.startsWith("line-"));
    const cur = (await lines(appLog)).map(said).filter((l) => l.startsWith("line-"));
    t.is(old.length + cur.length, want.size, "each line exactly once");
    const byNumber = (a: string, b: string): number => Number(a.slice(5)) - Number(b.slice(5));
    t.deepEqual([...new Set([...old, ...cur])].sort(byNumber), [...want].sort(byNumber));
    t.deepEqual(old.filter((l) => Number(l.slice(5)) >= afterReopen), [], "app lines after the reopen in the moved file");
    t.true(cur.length > 0);
    // The core's own lines follow Apache's ErrorLog to the new file.
    const oldErr = await lines(`${srv.errorLogPath}.1`);
    t.false(oldErr.some((l) => l.includes("FERRY0306")));
    t.false(oldErr.some((l) => l.includes("line-")), "app output stays out of the error log");
  } finally {
    stop = true;
    await Promise.allSettled(clients);
  }
});

test.serial("PassengerLogFormat json: after a graceful the core writes one JSON object a line", async (t) => {
  const srv = started(server);
  await srv.reconfigure({ global: ["PassengerLogFormat json"], vhosts: vhosts() });
  await srv.graceful();
  await waitFor(() => srv.errorLog().includes('"msg":"Log files reopened"'), { timeoutMs: 20_000, what: "a JSON line from the core" });
  t.is((await request(srv.port, { path: "/say?line=as-json", host: "plain.test" })).status, 200);
  const line = await waitFor(() => srv.errorLog().split("\n").find((l) => l.includes('"msg":"as-json"')), { timeoutMs: 10_000, what: "the app line as JSON" });
  const rec = JSON.parse(line) as Record<string, unknown>;
  t.is(rec["stream"], "stdout");
  t.is(typeof rec["pid"], "number");
  t.regex(String(rec["app"]), /plain/);
});
