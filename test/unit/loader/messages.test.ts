import test from "ava";
import { parseCoreMessage, parseLoaderMessage, parseLoaderOptions, splitLines } from "../../../core/src/loader/messages.js";

test("parseLoaderMessage() accepts each message kind", (t) => {
  t.deepEqual(parseLoaderMessage('{"type":"started","pid":12}'), { type: "started", pid: 12 });
  t.deepEqual(parseLoaderMessage('{"type":"listen-called"}'), { type: "listen-called" });
  t.deepEqual(parseLoaderMessage('{"type":"listening","path":"/s"}'), { type: "listening", path: "/s" });
  t.deepEqual(parseLoaderMessage('{"type":"error","step":"listen","message":"EACCES"}'), { type: "error", step: "listen", message: "EACCES" });
});

test("parseLoaderMessage() rejects malformed lines", (t) => {
  for (const line of ["", "nope", "[]", "null", '{"type":"started"}', '{"type":"started","pid":1.5}', '{"type":"listening"}',
    '{"type":"error","step":"fly","message":"x"}', '{"type":"other"}', `{"type":"listening","path":"${"x".repeat(70_000)}"}`]) {
    t.is(parseLoaderMessage(line), undefined, line.slice(0, 40));
  }
});

test("parseCoreMessage() accepts only shutdown", (t) => {
  t.deepEqual(parseCoreMessage('{"type":"shutdown"}'), { type: "shutdown" });
  t.is(parseCoreMessage('{"type":"reboot"}'), undefined);
});

test("parseLoaderOptions() names a missing field", (t) => {
  t.throws(() => parseLoaderOptions('{"socketPath":"/s"}'), { instanceOf: TypeError, message: /"socketDir"/ });
  t.throws(() => parseLoaderOptions("[1]"), { instanceOf: TypeError });
  t.deepEqual(parseLoaderOptions('{"socketPath":"/s","socketDir":"/d","startupFile":"/a/app.js","appRoot":"/a"}'),
    { socketPath: "/s", socketDir: "/d", startupFile: "/a/app.js", appRoot: "/a" });
  const handoff = {
    poweredBy: "Ferry", headerTimeoutMs: 60_000, requestTimeoutMs: 0, maxRequests: 3, crashPage: { html: "<p>x</p>", json: "{}" },
    maxRequestTimeMs: 1_000, timeoutPage: { html: "<p>y</p>", json: "{}" },
  };
  const base = { socketPath: "/s", socketDir: "/d", startupFile: "/a/app.js", appRoot: "/a" };
  t.deepEqual(parseLoaderOptions(JSON.stringify({ ...base, handoff })), { ...base, handoff });
  t.throws(() => parseLoaderOptions(JSON.stringify({ ...base, handoff: { ...handoff, maxRequests: -1 } })), { instanceOf: TypeError, message: /handoff\.maxRequests/ });
  t.throws(() => parseLoaderOptions(JSON.stringify({ ...base, handoff: { ...handoff, timeoutPage: "x" } })), { instanceOf: TypeError, message: /handoff\.timeoutPage/ });
  const withStatic = { ...handoff, staticFilesDir: "/a/public" };
  t.deepEqual(parseLoaderOptions(JSON.stringify({ ...base, handoff: withStatic })), { ...base, handoff: withStatic });
  t.throws(() => parseLoaderOptions(JSON.stringify({ ...base, handoff: { ...handoff, staticFilesDir: "public" } })), { instanceOf: TypeError, message: /handoff\.staticFilesDir/ });
});

test("splitLines() keeps the incomplete tail and drops blank lines", (t) => {
  t.deepEqual(splitLines('a\n\nb\nc'), { lines: ["a", "b"], rest: "c" });
  t.deepEqual(splitLines(""), { lines: [], rest: "" });
});

test("parseLoaderMessage() accepts a loop report and rejects out-of-range figures", (t) => {
  t.deepEqual(parseLoaderMessage('{"type":"loop","elu":0.5,"delayMeanMs":1.2,"delayP99Ms":30,"delayMaxMs":40,"intervalMs":251}'),
    { type: "loop", elu: 0.5, delayMeanMs: 1.2, delayP99Ms: 30, delayMaxMs: 40, intervalMs: 251 });
  for (const bad of ['"elu":1.5', '"elu":-0.1', '"elu":"0.5"', '"delayP99Ms":-1', '"intervalMs":null']) {
    const fields: Record<string, unknown> = { elu: 0.5, delayMeanMs: 1, delayP99Ms: 2, delayMaxMs: 3, intervalMs: 250 };
    const [k, v] = bad.split(":") as [string, string];
    fields[JSON.parse(k) as string] = JSON.parse(v) as unknown;
    t.is(parseLoaderMessage(JSON.stringify({ type: "loop", ...fields })), undefined, bad);
  }
  t.is(parseLoaderMessage('{"type":"loop","elu":0.5}'), undefined);
});

test("parseLoaderMessage() accepts a reqs message and rejects malformed entries", (t) => {
  t.deepEqual(parseLoaderMessage('{"type":"reqs","inFlight":2,"upgraded":1,"connections":3,"done":[[200,1.5,120],[0,3,0]]}'),
    { type: "reqs", inFlight: 2, upgraded: 1, connections: 3, done: [[200, 1.5, 120], [0, 3, 0]], peak: 2, adopted: 0, fresh: 0, pages: [] });
  const page = { status: 502, code: "FERRY_ERR_APP_CRASHED", errorId: "0badcafe", method: "GET", uri: "/x", message: "m" };
  t.deepEqual(parseLoaderMessage(JSON.stringify({ type: "reqs", inFlight: 0, upgraded: 0, connections: 1, done: [], peak: 4, adopted: 9, fresh: 1, pages: [page] })),
    { type: "reqs", inFlight: 0, upgraded: 0, connections: 1, done: [], peak: 4, adopted: 9, fresh: 1, pages: [page] });
  for (const bad of ['"done":[[200,1]]', '"done":[[1000,1,1]]', '"done":[["200",1,1]]', '"done":{}', '"inFlight":-1,"done":[]',
    '"done":[],"peak":-1', '"done":[],"pages":[{"status":502}]', '"done":[],"pages":{}']) {
    t.is(parseLoaderMessage(`{"type":"reqs","inFlight":0,"upgraded":0,${bad}}`), undefined, bad);
  }
});
