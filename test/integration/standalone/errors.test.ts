/** An app that throws at startup: friendly page in development, plain page with an error ID in production. */
import test from "ava";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { FIXTURE_APPS, req, startApp, waitFor, type Running } from "../../helpers/standalone.js";

const running: Running[] = [];
test.after.always(async () => { await Promise.all(running.map((r) => r.stop())); });

async function start(flags: Record<string, unknown>): Promise<Running> {
  const r = await startApp(path.join(FIXTURE_APPS, "h3-throws"), flags);
  running.push(r);
  return r;
}

test("development: the friendly page shows the error, the app's output (escaped) and the app root", async (t) => {
  const r = await start({ environment: "development" });
  const res = await req(r.port, "/");
  t.is(res.status, 500);
  t.regex(String(res.headers["content-type"]), /text\/html/);
  t.is(res.headers["cache-control"], "no-cache, no-store, must-revalidate");
  t.regex(res.text, /Web application could not be started/);
  t.true(res.text.includes("h3-throws: about to fail &lt;boom &amp; co&gt;"), "the app's output, HTML-escaped");
  t.true(res.text.includes("h3-throws failed on purpose"));
  t.true(res.text.includes(path.join(FIXTURE_APPS, "h3-throws")));
  t.false(res.text.includes("<boom"), "nothing unescaped");
});

test("production: a plain page with an error ID that is also in the log", async (t) => {
  const r = await start({ environment: "production" });
  const res = await req(r.port, "/");
  t.is(res.status, 500);
  t.regex(res.text, /something went wrong/);
  t.false(res.text.includes("boom"), "no app output in production");
  t.false(res.text.includes("failed on purpose"));
  const id = /Error ID <code id="error-id">([0-9a-f]{8})<\/code>/.exec(res.text)?.[1];
  t.truthy(id);
  const line = await waitFor("the error ID in the log", async () => {
    const log = await fsp.readFile(r.logFile, "utf8").catch(() => "");
    return log.split("\n").find((l) => id !== undefined && l.includes(id));
  }, 15_000);
  t.regex(line, /Could not spawn process for application/);
});

test("production with --friendly-error-pages shows the details; development with --no-friendly-error-pages hides them", async (t) => {
  const on = await start({ environment: "production", "friendly-error-pages": true });
  t.regex((await req(on.port, "/")).text, /failed on purpose/);
  const off = await start({ environment: "development", "no-friendly-error-pages": true });
  const res = await req(off.port, "/");
  t.is(res.status, 500);
  t.false(res.text.includes("failed on purpose"));
  t.regex(res.text, /Error ID/);
});

test("a JSON request gets the spawn error as JSON", async (t) => {
  const r = await start({ environment: "development" });
  const res = await req(r.port, "/", { headers: { Accept: "application/json" } });
  t.is(res.status, 500);
  const body = JSON.parse(res.text) as Record<string, unknown>;
  t.is(body["status"], "error");
  t.is(body["code"], "FERRY_ERR_SPAWN");
  t.regex(String(body["output"]), /about to fail/);
});
