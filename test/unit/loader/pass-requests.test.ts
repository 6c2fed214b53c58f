/**
 * loader/pass-requests.ts with a real HTTP server in this process: a request
 * the module sent with a pass loses its marker before the app sees it and is
 * counted in the "reqs" reports; any other request is left alone.
 */
import test from "ava";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { once } from "node:events";
import type { LoaderMessage } from "../../../core/src/loader/messages.js";
import { hasPassMarker, watchPassRequests } from "../../../core/src/loader/pass-requests.js";
import { RequestReporter } from "../../../core/src/loader/request-reporter.js";

type Reqs = Extract<LoaderMessage, { type: "reqs" }>;

interface Seen {
  readonly headers: http.IncomingHttpHeaders;
  readonly raw: readonly string[];
  readonly distinct: Record<string, string[] | undefined>;
}

/** An app server with the watcher prepended (as the loader does at listen), recording what the app saw. */
async function start(
  t: { teardown(fn: () => void): void },
  opts: { handedOff?: (s: net.Socket) => boolean; wait?: Promise<void>; readFirst?: boolean } = {},
) {
  const reports: Reqs[] = [];
  const reporter = new RequestReporter((m) => {
    if (m.type === "reqs") reports.push(m);
  });
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ headers: { ...req.headers }, raw: [...req.rawHeaders], distinct: { ...req.headersDistinct } });
    const reply = (): void => {
      res.writeHead(req.url === "/missing" ? 404 : 200, { "Content-Type": "text/plain", "Content-Length": "5" });
      res.end("hello");
    };
    if (opts.wait !== undefined) void opts.wait.then(reply);
    else reply();
  });
  watchPassRequests(server, reporter, opts.handedOff ?? (() => false));
  if (opts.readFirst === true) {
    // A listener that runs before the watcher and builds Node's lazy header objects first.
    server.prependListener("request", (req: http.IncomingMessage) => void [req.headers, req.headersDistinct]);
  }
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  return { reports, seen, port, reporter };
}

/** Send raw requests on one connection and read until `count` responses ended (Content-Length 5 each). */
async function rawRequests(port: number, text: string, count: number): Promise<string> {
  const s = net.connect({ port, host: "127.0.0.1" });
  s.write(text);
  let got = "";
  s.setEncoding("latin1");
  for await (const chunk of s) {
    got += String(chunk);
    if (got.split("\r\n\r\nhello").length - 1 >= count) break;
  }
  s.destroy();
  return got;
}

/** Wait (with a deadline) until the reports add up to `n` finished requests. */
async function finished(reports: readonly Reqs[], n: number): Promise<Array<readonly [number, number, number]>> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const done = reports.flatMap((r) => r.done);
    if (done.length >= n || Date.now() > deadline) return done;
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("hasPassMarker() looks at the last header only, in any case", (t) => {
  t.true(hasPassMarker(["Host", "a", "X-Ferry-Pass", "1"]));
  t.true(hasPassMarker(["x-ferry-pass", "1"]));
  t.false(hasPassMarker(["X-Ferry-Pass", "1", "Host", "a"]));
  t.false(hasPassMarker(["Host", "a"]));
  t.false(hasPassMarker([]));
  t.false(hasPassMarker(["X-Ferry-Passe", "1"]));
});

test("watchPassRequests() strips the marker from headers, headersDistinct and rawHeaders and counts the request", async (t) => {
  const { reports, seen, port } = await start(t);
  await rawRequests(port, "GET /p HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: http\r\nX-Ferry-Pass: 1\r\n\r\n", 1);
  const done = await finished(reports, 1);
  t.is(seen.length, 1);
  const s = seen[0];
  if (s === undefined) return t.fail();
  t.deepEqual(s.raw, ["Host", "a", "X-Forwarded-Proto", "http"]);
  t.is(s.headers["x-ferry-pass"], undefined);
  t.is(s.headers["x-forwarded-proto"], "http");
  t.false("x-ferry-pass" in s.distinct);
  t.deepEqual(s.distinct["host"], ["a"]);
  t.is(done.length, 1);
  const [status, ms, bytes] = done[0] ?? [0, 0, 0];
  t.is(status, 200);
  t.true(ms >= 0);
  t.true(bytes > 5, "the response's bytes (head and body)");
  const last = reports[reports.length - 1];
  t.is(last?.inFlight, 0);
  t.is(last?.connections, 0);
  t.is(last?.adopted, 0);
});

test("watchPassRequests() leaves requests without the marker alone and reports nothing for them", async (t) => {
  const { reports, seen, port, reporter } = await start(t);
  // A marker that is not the last header is not the module's (the head builders drop a client's).
  await rawRequests(port, "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nX-Ferry-Pass: 1\r\nHost: a\r\n\r\n", 2);
  // A counted request would have left a change to report (counting starts before the answer).
  reporter.exiting();
  t.is(seen.length, 2);
  t.deepEqual(seen[1]?.raw, ["X-Ferry-Pass", "1", "Host", "a"]);
  t.deepEqual(reports, []);
});

test("watchPassRequests() counts each pass request of a kept-alive connection with its status, in flight while it runs", async (t) => {
  let release = (): void => undefined;
  const wait = new Promise<void>((r) => { release = r; });
  const { reports, port, reporter } = await start(t, { wait });
  const all = rawRequests(port, "GET /missing HTTP/1.1\r\nHost: a\r\nX-Ferry-Pass: 1\r\n\r\n", 1);
  const deadline = Date.now() + 5_000;
  while (reporter.inFlight === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.is(reporter.inFlight, 1);
  const inFlightReport = await (async () => {
    for (;;) {
      const r = reports.find((x) => x.inFlight === 1);
      if (r !== undefined || Date.now() > deadline) return r;
      await new Promise((res) => setTimeout(res, 5));
    }
  })();
  t.is(inFlightReport?.peak, 1);
  release();
  await all;
  const done = await finished(reports, 1);
  t.is(done[0]?.[0], 404);
  t.is(reporter.inFlight, 0);
});

test("watchPassRequests() does not count a marked request on a handed-off connection (the handoff counts those), but strips it", async (t) => {
  const { reports, seen, port, reporter } = await start(t, { handedOff: () => true });
  await rawRequests(port, "GET /h HTTP/1.1\r\nHost: a\r\nX-Ferry-Pass: 1\r\n\r\n", 1);
  reporter.exiting();
  t.deepEqual(seen[0]?.raw, ["Host", "a"]);
  t.deepEqual(reports, []);
});

test("watchPassRequests() also removes the marker from header objects built before it ran", async (t) => {
  const { reports, seen, port } = await start(t, { readFirst: true });
  await rawRequests(port, "GET /p HTTP/1.1\r\nHost: a\r\nX-Ferry-Pass: 1\r\n\r\n", 1);
  await finished(reports, 1);
  t.deepEqual(seen[0]?.raw, ["Host", "a"]);
  t.is(seen[0]?.headers["x-ferry-pass"], undefined);
  t.false("x-ferry-pass" in (seen[0]?.distinct ?? {}));
  t.is(seen[0]?.headers["host"], "a");
});
