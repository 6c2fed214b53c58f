/** A process that dies mid-request: 502 for that request, service continues on a new pid. */
import test from "ava";
import http from "node:http";
import path from "node:path";
import { FIXTURE_APPS, pidGone, pidOf, req, startApp, waitFor, type Running } from "../../helpers/standalone.js";

const running: Running[] = [];
test.after.always(async () => { await Promise.all(running.map((r) => r.stop())); });

test("crash while handling a request → 502 for it, next requests served by a new pid (relay)", async (t) => {
  // The relay's 502 page; a handed-off connection dies with its process (docs/standalone.md).
  const r = await startApp(path.join(FIXTURE_APPS, "h3-app"), { environment: "production", "connection-handoff": false });
  running.push(r);
  const before = await pidOf(r.port);
  const crashed = await req(r.port, "/crash");
  t.is(crashed.status, 502);
  t.regex(crashed.text, /Error ID/);
  t.is(crashed.headers["cache-control"], "no-cache, no-store, must-revalidate");
  await waitFor(`pid ${before} gone`, () => (pidGone(before) ? true : undefined));
  const after = await pidOf(r.port);
  t.not(after, before);
  t.is((await req(r.port, "/")).status, 200);
});

test("crash after the response head went out → the client connection is cut", async (t) => {
  const r = await startApp(path.join(FIXTURE_APPS, "h3-app"), { environment: "production" });
  running.push(r);
  await pidOf(r.port);
  const outcome = await new Promise<string>((resolve) => {
    const q = http.get({ host: "127.0.0.1", port: r.port, path: "/partial", agent: false, signal: AbortSignal.timeout(20_000) }, (res) => {
      let got = "";
      res.on("data", (c: Buffer) => { got += c.toString(); });
      res.on("end", () => resolve(`complete ${res.statusCode ?? 0} ${got}`));
      res.on("aborted", () => resolve(`aborted ${res.statusCode ?? 0} ${got}`));
      res.on("error", () => resolve(`aborted ${res.statusCode ?? 0} ${got}`));
    });
    q.on("error", (e) => resolve(`error ${e.message}`));
  });
  t.regex(outcome, /^aborted 200 hello$/);
  t.is((await req(r.port, "/")).status, 200);
});
