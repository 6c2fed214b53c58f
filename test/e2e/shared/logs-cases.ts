/**
 * End-to-end cases every front end must pass the same way: logs with
 * PassengerLogFile (passenger_log_file) set. The core's lines and the apps'
 * output go to that file as readable lines (an app's line names the app and
 * the pid that wrote it), PassengerAppLogFile (passenger_app_log_file) takes
 * one app's output apart, nothing of it lands in the web server's own error
 * log; a rotation under load followed by what logrotate's postrotate runs
 * (`apachectl graceful` / `nginx -s reopen`) loses no line and writes none
 * to the moved files afterwards; PassengerLogFormat json after a reload
 * switches the core to one JSON object a line. Run through Apache by
 * test/e2e/logs.test.ts (which adds the cases of Apache's error-log shape,
 * with no PassengerLogFile) and through nginx by test/e2e/nginx/logs.test.ts.
 */
import type { TestFn } from "ava";
import { chmod, mkdir, readFile, rename } from "node:fs/promises";
import path from "node:path";
import { prepareApp, waitFor } from "../../helpers/apache.js";
import { getJson, request } from "../../helpers/e2e-http.js";
import { type FrontEnd, type FrontEndConfig, type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

const lines = async (file: string): Promise<string[]> => (await readFile(file, "utf8").catch(() => "")).split("\n").filter((l) => l !== "");
/** `line-N` of an app log line `[time] App <pid> stdout: line-N`. */
const said = (l: string): string => l.replace(/^.*stdout: /, "");

export function logsCases(test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {}): { fe: () => FrontEnd } {
  let logFile = "";
  let appLog = "";
  let config: FrontEndConfig | undefined;
  const { fe, serial } = frontEndSuite(test, kind, "logs", async (root) => {
    const logged = await prepareApp(root, "e2e-app", "logged");
    const plain = await prepareApp(root, "e2e-app", "plain");
    for (const d of ["corelogs", "applogs"]) {
      await mkdir(path.join(root, d), { mode: 0o755 });
      await chmod(path.join(root, d), 0o755);
    }
    logFile = path.join(root, "corelogs", "ferry.log");
    appLog = path.join(root, "applogs", "app.log");
    config = {
      // Server-wide: nginx takes passenger_max_instances_per_app in http{} only.
      server: { LogFile: logFile, MaxInstancesPerApp: 2 },
      sites: [
        { serverName: "logs.test", appRoot: logged, options: { AppLogFile: appLog, MinInstances: 2 } },
        { serverName: "plain.test", appRoot: plain },
      ],
    };
    return config;
  }, opts);

  serial("the core and the apps write readable lines to PassengerLogFile, an app's with its name and pid; PassengerAppLogFile takes an app's output apart", async (t) => {
    const port = fe().port;
    const hello = await getJson(port, "/say?line=hello", "plain.test");
    const apart = await getJson(port, "/say?line=apart", "logs.test");
    const line = await waitFor(async () => (await lines(logFile)).find((l) => l.endsWith("]: hello")),
      { timeoutMs: 10_000, what: "the app's line in PassengerLogFile" });
    t.regex(line, new RegExp(`\\bplain\\[${String(hello["pid"])}\\]: hello$`));
    const app = await waitFor(async () => (await lines(appLog)).find((l) => l.endsWith("stdout: apart")),
      { timeoutMs: 10_000, what: "the line in PassengerAppLogFile" });
    t.regex(app, new RegExp(`App ${String(apart["pid"])} stdout: apart$`));
    const core = await lines(logFile);
    t.false(core.some((l) => l.includes("apart")), "PassengerAppLogFile takes the app's output apart from PassengerLogFile");
    t.truthy(core.find((l) => l.includes("FERRY0300: Ferry core started")));
    t.false(core.some((l) => l.startsWith("{")), "no raw JSON line");
    const serverLog = fe().server.errorLog();
    t.false(serverLog.includes("]: hello") || serverLog.includes("apart"), "no app output in the web server's error log");
  });

  serial("a rotation under load, then the reopen command: no line lost, none written to the moved files after the reopen", async (t) => {
    const port = fe().port;
    let seq = 0;
    let stop = false;
    const sent: number[] = [];
    const client = async (): Promise<void> => {
      while (!stop) {
        const n = seq++;
        const r = await request(port, { path: `/say?line=line-${n}`, host: "logs.test" });
        if (r.status !== 200) throw new Error(`request ${n}: ${r.status}`);
        sent.push(n);
      }
    };
    const clients = Array.from({ length: 4 }, () => client());
    try {
      await waitFor(() => seq > 100, { timeoutMs: 30_000, intervalMs: 10, what: "100 lines" });
      await rename(appLog, `${appLog}.1`);
      await rename(logFile, `${logFile}.1`);
      t.log(fe().reopenLogsCommand);
      await fe().reopenLogs();
      await waitFor(async () => (await lines(logFile)).some((l) => l.includes("FERRY0306: Log files reopened")),
        { timeoutMs: 20_000, what: "the core to reopen its logs" });
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
      // The core's own lines follow PassengerLogFile to the new file.
      const oldCore = await lines(`${logFile}.1`);
      t.false(oldCore.some((l) => l.includes("FERRY0306")));
      t.false(oldCore.some((l) => l.includes("line-")), "app output stays out of PassengerLogFile");
    } finally {
      stop = true;
      await Promise.allSettled(clients);
    }
  });

  serial("PassengerLogFormat json: after a reload the core writes one JSON object a line", async (t) => {
    if (config === undefined) return t.fail("no config");
    await fe().reconfigure({ ...config, server: { ...config.server, LogFormat: "json" } });
    await fe().reload();
    await waitFor(async () => (await lines(logFile)).some((l) => l.includes('"msg":"Log files reopened"')),
      { timeoutMs: 20_000, what: "a JSON line from the core" });
    const said = await getJson(fe().port, "/say?line=as-json", "plain.test");
    const line = await waitFor(async () => (await lines(logFile)).find((l) => l.includes('"msg":"as-json"')),
      { timeoutMs: 10_000, what: "the app line as JSON" });
    const rec = JSON.parse(line) as Record<string, unknown>;
    t.is(rec["stream"], "stdout");
    t.is(rec["pid"], said["pid"]);
    t.regex(String(rec["app"]), /plain/);
  });

  return { fe };
}
