/** A process that dies mid-request: 502 for that request, service continues on a new pid. */
import test from "ava";
import { promises as fsp } from "node:fs";
import http from "node:http";
import path from "node:path";
import { FIXTURE_APPS, pidGone, pidOf, req, startApp, waitFor, type Running } from "../../helpers/standalone.js";

const running: Running[] = [];

/** Wait until the crashed process is gone and a new one answers /pid (the core has seen the exit). */
async function servedByAnother(port: number, crashed: number): Promise<number> {
  await waitFor(`pid ${crashed} gone`, () => (pidGone(crashed) ? true : undefined));
  return waitFor(`a process other than ${crashed} to answer`, async () => {
    const pid = await pidOf(port).catch(() => undefined);
    return pid !== undefined && pid !== crashed ? pid : undefined;
  }, 30_000);
}
test.after.always(async () => { await Promise.all(running.map((r) => r.stop())); });

for (const [mode, flags] of [["", {}], [" (relay)", { "connection-handoff": false }]] as const) {
  test(`crash while handling a request → 502 page for it, next requests served by a new pid${mode}`, async (t) => {
    // On a handed-off connection (the default) the loader answers the relay's page as the process exits.
    const r = await startApp(path.join(FIXTURE_APPS, "h3-app"), { environment: "production", ...flags });
    running.push(r);
    const before = await pidOf(r.port);
    const crashed = await req(r.port, "/crash");
    t.is(crashed.status, 502);
    const id = /Error ID <code id="error-id">([0-9a-f]{8})<\/code>/.exec(crashed.text)?.[1];
    t.truthy(id, crashed.text);
    t.regex(crashed.text, /Incomplete response received from application/);
    t.is(crashed.headers["cache-control"], "no-cache, no-store, must-revalidate");
    t.regex(String(crashed.headers["x-powered-by"]), /^Ferry/);
    // The next request once the core has seen the crash (a new process serves): a request sent in the
    // moment a process dies, before the core has seen it exit, may still be routed to it and fail
    // (docs/standalone.md, the handoff differences).
    const after = await servedByAnother(r.port, before);
    const asJson = await req(r.port, "/crash", { headers: { Accept: "application/json" } });
    t.is(asJson.status, 502);
    t.is((JSON.parse(asJson.text) as { code: string }).code, "FERRY_ERR_APP_CRASHED");
    await servedByAnother(r.port, after);
    t.is((await req(r.port, "/")).status, 200);
    // The administrator finds the error id in the log, as with every error page.
    await waitFor(`Error ID ${id ?? ""} in the log`, async () => ((await fsp.readFile(r.logFile, "utf8")).includes(`Error ID: ${id ?? "-"}`) ? true : undefined), 10_000);
  });
}

test("crash after the response head went out → the client connection is cut", async (t) => {
  const r = await startApp(path.join(FIXTURE_APPS, "h3-app"), { environment: "production" });
  running.push(r);
  const pid = await pidOf(r.port);
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
  await servedByAnother(r.port, pid);
  t.is((await req(r.port, "/")).status, 200);
});
