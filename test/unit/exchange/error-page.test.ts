import test from "ava";
import { makeAppOptions } from "../../../core/src/config/schema.js";
import { AppCrashedError, QueueFullError, SpawnError } from "../../../core/src/errors.js";
import { escapeHtml, newErrorId, renderErrorPage, wantsJson } from "../../../core/src/exchange/error-page.js";

const spawnError = new SpawnError("Cannot spawn app: exited", { output: "<script>alert(1)</script>\nline 2", step: "load" });

test("escapeHtml() escapes the five HTML specials", (t) => {
  t.is(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
});

test("newErrorId() is 8 hex digits", (t) => {
  t.regex(newErrorId(), /^[0-9a-f]{8}$/);
});

test("wantsJson() follows the request's Content-Type, then Accept", (t) => {
  t.true(wantsJson(["Content-Type", "application/json"]));
  t.true(wantsJson(["Accept", "application/json"]));
  t.false(wantsJson(["Accept", "text/html,application/json;q=0.9"]));
  t.false(wantsJson([]));
});

test("renderErrorPage() friendly: error, escaped app output, app root, env; 500; no-store", (t) => {
  const app = makeAppOptions("/srv/blog", { appEnv: "development", env: { FOO: "bar" } });
  const p = renderErrorPage({ error: spawnError, app, errorId: "abcdef12", requestHeaders: [] });
  const html = p.body.toString();
  t.is(p.status, 500);
  t.true(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
  t.false(html.includes("<script>"));
  t.true(html.includes("/srv/blog"));
  t.true(html.includes("FOO"));
  t.true(html.includes("abcdef12"));
  t.true(p.headers.includes("no-cache, no-store, must-revalidate"));
  t.is(p.headers[p.headers.indexOf("Content-Length") + 1], String(p.body.length));
});

test("renderErrorPage() plain: no details, the error ID", (t) => {
  const app = makeAppOptions("/srv/blog", { appEnv: "production" });
  const html = renderErrorPage({ error: spawnError, app, errorId: "abcdef12", requestHeaders: [] }).body.toString();
  t.false(html.includes("alert"));
  t.false(html.includes("/srv/blog"));
  t.regex(html, /something went wrong/);
  t.regex(html, /Error ID <code id="error-id">abcdef12<\/code>/);
});

test("renderErrorPage() uses the error's status: 503 queue full with Retry-After, 502 crash", (t) => {
  const app = makeAppOptions("/srv/blog");
  const full = renderErrorPage({ error: new QueueFullError("full"), app, errorId: "1", requestHeaders: [] });
  t.is(full.status, 503);
  t.true(full.headers.includes("Retry-After"));
  t.regex(full.body.toString(), /heavy load/);
  t.is(renderErrorPage({ error: new AppCrashedError("x"), app, errorId: "1", requestHeaders: [] }).status, 502);
});

test("renderErrorPage() JSON: status, message, error_id, code; output only when friendly", (t) => {
  const dev = makeAppOptions("/srv/blog", { appEnv: "development" });
  const j = JSON.parse(renderErrorPage({ error: spawnError, app: dev, errorId: "e1", requestHeaders: ["Accept", "application/json"] }).body.toString()) as Record<string, unknown>;
  t.like(j, { status: "error", error_id: "e1", code: "FERRY_ERR_SPAWN" });
  t.regex(String(j["output"]), /alert/);
  const prod = makeAppOptions("/srv/blog");
  const p = JSON.parse(renderErrorPage({ error: spawnError, app: prod, errorId: "e1", requestHeaders: ["Content-Type", "application/json"] }).body.toString()) as Record<string, unknown>;
  t.is(p["output"], undefined);
});

test("renderErrorPage() serves PassengerCustomErrorPage's bytes when friendly pages are off, with the error's status", (t) => {
  const customPage = Buffer.from("<h1>down</h1>\n");
  const app = makeAppOptions("/srv/a", { friendlyErrorPages: false });
  const page = renderErrorPage({ error: new QueueFullError("full"), app, errorId: "abcd1234", requestHeaders: [], customPage });
  t.is(page.status, 503);
  t.deepEqual(page.body, customPage);
  t.regex(page.headers.join(" "), /text\/html/);
  const friendly = renderErrorPage({ error: new QueueFullError("full"), app: makeAppOptions("/srv/a", { friendlyErrorPages: true }), errorId: "abcd1234", requestHeaders: [], customPage });
  t.notDeepEqual(friendly.body, customPage, "friendly pages win");
});

test("renderErrorPage() takes the app's status for a full queue and a failed spawn (nginx's passenger_*_status_code), else the error's", (t) => {
  const app = makeAppOptions("/srv/a", { requestQueueOverflowStatusCode: 429, spawnExceptionStatusCode: 503 });
  const page = (error: SpawnError | QueueFullError | AppCrashedError, a = app): number =>
    renderErrorPage({ error, app: a, errorId: "abcdef12", requestHeaders: [] }).status;
  t.is(page(new QueueFullError("full")), 429);
  t.is(page(spawnError), 503);
  t.is(page(new SpawnError("slow", { timeout: true })), 503);
  t.is(page(new AppCrashedError("gone")), 502);
  t.is(page(new QueueFullError("full"), makeAppOptions("/srv/a")), 503);
  t.is(page(spawnError, makeAppOptions("/srv/a")), 500);
});
