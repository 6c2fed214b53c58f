/**
 * formatRecord() (core/src/log-format.ts): pino records as readable lines, in
 * the terminal shape and in Apache's error-log shape with FERRYnnnn tags.
 */
import test from "ava";
import { formatRecord, shortAppName } from "../../core/src/log-format.js";

const T = new Date(2026, 11, 6, 4, 5, 59, 123).getTime();
const rec = (o: Record<string, unknown>): string => JSON.stringify({ level: 30, time: T, corePid: 812, name: "ferry", ...o });

test("formatRecord() terminal: time, level, app, message and the other fields", (t) => {
  t.is(formatRecord(rec({ app: "/srv/blog (production)", component: "pool", pid: 1771, reason: "demand", msg: "Process spawned" }), "terminal"),
    "2026-12-06 04:05:59.123 INFO  blog: Process spawned (pid=1771 reason=demand)\n");
  t.is(formatRecord(rec({ level: 50, msg: "Cannot reopen", err: { type: "Error", message: "EACCES: denied", code: "EACCES" } }), "terminal"),
    "2026-12-06 04:05:59.123 ERROR Cannot reopen: EACCES: denied [EACCES]\n");
});

test("formatRecord() terminal: app output reads app[pid]: line", (t) => {
  t.is(formatRecord(rec({ app: "/srv/blog (production)", pid: 1771, stream: "stdout", msg: "listening on 3000" }), "terminal"),
    "2026-12-06 04:05:59.123       blog[1771]: listening on 3000\n");
  t.is(formatRecord(rec({ level: 40, app: "api", pid: 7, stream: "stderr", msg: "oops" }), "terminal"),
    "2026-12-06 04:05:59.123 ERR   api[7]: oops\n");
});

test("formatRecord() apache: Apache's error-log shape with the ferry module tag and the log number", (t) => {
  t.is(formatRecord(rec({ level: 40, logno: 302, app: "/srv/blog (production)", pid: 1771, code: 1, signal: null, msg: "Process exited unexpectedly" }), "apache"),
    "[Sun Dec 06 04:05:59.123000 2026] [ferry:warn] [pid 812] FERRY0302: blog: Process exited unexpectedly (pid=1771 code=1 signal=null)\n");
  t.is(formatRecord(rec({ app: "/srv/blog (production)", pid: 1771, stream: "stdout", msg: "hi" }), "apache"),
    "[Sun Dec 06 04:05:59.123000 2026] [ferry:notice] [pid 812] blog[1771]: hi\n");
});

test("formatRecord() passes a line that is not JSON through", (t) => {
  t.is(formatRecord("not json", "terminal"), "not json\n");
});

test("shortAppName() shortens only the default group name", (t) => {
  t.is(shortAppName("/srv/blog (production)"), "blog");
  t.is(shortAppName("my-group"), "my-group");
});
