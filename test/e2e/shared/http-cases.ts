/**
 * End-to-end cases every front end must pass the same way: how a request and
 * its response look to a client through a real Apache (test/e2e/http.test.ts)
 * and a real nginx (test/e2e/nginx/http.test.ts): headers, bodies both ways,
 * streaming, malformed requests, static files from the app's public/, the
 * app's environment and user, one app per host name, an app under a sub-URI.
 * Every site serves test/fixtures/apps/e2e-app.
 */
import type { TestFn } from "ava";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { Readable } from "node:stream";
import { prepareApp } from "../../helpers/apache.js";
import { getJson, rawExchange, request, statusOf } from "../../helpers/e2e-http.js";
import { type FrontEnd, type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

interface HttpTarget {
  readonly port: number;
  /** The Host header that selects the e2e-app. */
  readonly host: string;
}

/** GET with the arrival time of the first and the last body byte. */
function timedGet(port: number, p: string, host: string): Promise<{ status: number; type: string; body: string; first: number; end: number; start: number }> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const req = http.get({ host: "127.0.0.1", port, path: p, headers: { Host: host }, agent: false, signal: AbortSignal.timeout(30_000) }, (res) => {
      let first = 0;
      let body = "";
      res.on("data", (c: Buffer) => {
        if (first === 0) first = Date.now();
        body += c.toString("utf8");
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"]), body, first, end: Date.now(), start }));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

export const HTTP_CASES = {
  baseUri: "an app under a sub-URI (base URI) gets the full URI and its base; the site's root stays static",
} as const;

/** Register the shared cases (serial: one server per test file). */
export function httpCases(test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {}): { fe: () => FrontEnd } {
  const apps = { main: "", alpha: "", beta: "", env: "", owned: "", sub: "" };
  const { fe, serial } = frontEndSuite(test, kind, "http", async (root) => {
    apps.main = await prepareApp(root, "e2e-app", "main");
    apps.alpha = await prepareApp(root, "e2e-app", "alpha");
    apps.beta = await prepareApp(root, "e2e-app", "beta");
    apps.env = await prepareApp(root, "e2e-app", "envapp");
    apps.owned = await prepareApp(root, "e2e-app", "owned");
    apps.sub = await prepareApp(root, "e2e-app", "subapp");
    if (process.getuid?.() === 0) execFileSync("chown", ["-R", "daemon:daemon", apps.owned]);
    await writeFile(path.join(apps.main, "public", "static.txt"), "served by the front end\n", { mode: 0o644 });
    // Passenger's page cache: /cached → cached.html, /pages/ → pages/index.html.
    await writeFile(path.join(apps.main, "public", "cached.html"), "page cache file\n", { mode: 0o644 });
    await mkdir(path.join(apps.main, "public", "pages"), { recursive: true, mode: 0o755 });
    await writeFile(path.join(apps.main, "public", "pages", "index.html"), "page cache index\n", { mode: 0o644 });
    // A static site that hosts the sub-URI app under /sub.
    const site = path.join(root, "site");
    await mkdir(site, { recursive: true, mode: 0o755 });
    await writeFile(path.join(site, "index.html"), "static root website\n", { mode: 0o644 });
    await symlink(path.join(apps.sub, "public"), path.join(site, "sub"));
    return {
      sites: [
        { serverName: "main.test", appRoot: apps.main },
        { serverName: "alpha.test", appRoot: apps.alpha },
        { serverName: "beta.test", appRoot: apps.beta },
        { serverName: "env.test", appRoot: apps.env, env: { E2E_SETENV: "hello-from-the-front" }, options: { AppEnv: "staging" } },
        { serverName: "owned.test", appRoot: apps.owned },
        { serverName: "sub.test", appRoot: apps.sub, baseUri: { path: "/sub", siteRoot: site } },
      ],
    };
  }, opts);
  const target = (): HttpTarget => ({ port: fe().port, host: "main.test" });

  serial("GET passes request headers and cookies to the app and returns its headers", async (t) => {
    const res = await request(target().port, {
      path: "/headers?x=1",
      host: target().host,
      headers: { "X-E2E-Test": "abc 123", Cookie: ["a=1", "b=2"], Accept: "application/json" },
    });
    t.is(res.status, 200, res.text);
    const body = JSON.parse(res.text) as { headers: Record<string, string>; method: string };
    t.is(body.method, "GET");
    t.is(body.headers["x-e2e-test"], "abc 123");
    t.regex(body.headers.cookie ?? "", /a=1/);
    t.regex(body.headers.cookie ?? "", /b=2/);
    t.is(body.headers.host, target().host);
    t.is(body.headers["x-forwarded-for"], "127.0.0.1");
    t.is(body.headers["x-forwarded-proto"], "http");
  });

  serial("HEAD gets the app's status and headers and no body", async (t) => {
    const res = await request(target().port, { path: "/headers", method: "HEAD", host: target().host });
    t.is(res.status, 200);
    t.regex(String(res.headers["content-type"]), /application\/json/);
    t.is(res.body.length, 0);
  });

  serial("204 and 304 responses arrive with their status and no body, and the connection stays usable", async (t) => {
    const noContent = await rawExchange(
      target().port,
      `GET /status?code=204 HTTP/1.1\r\nHost: ${target().host}\r\n\r\nGET /status?code=304 HTTP/1.1\r\nHost: ${target().host}\r\n\r\nGET /status?code=201 HTTP/1.1\r\nHost: ${target().host}\r\nConnection: close\r\n\r\n`,
    );
    const statuses = [...noContent.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
    t.deepEqual(statuses, [204, 304, 201], noContent.slice(0, 600));
    // Nothing between the 204/304 heads and the next response: no stray body bytes.
    t.regex(noContent, /^HTTP\/1\.1 204 [^\r]*\r\n(?:[^\r\n]+\r\n)*\r\nHTTP\/1\.1 304 [^\r]*\r\n(?:[^\r\n]+\r\n)*\r\nHTTP\/1\.1 201 /);
    t.notRegex(noContent.split("HTTP/1.1 201")[0] ?? "", /Transfer-Encoding: chunked/i);
  });

  serial("two Set-Cookie headers from the app arrive as two separate headers", async (t) => {
    const res = await request(target().port, { path: "/cookies", host: target().host });
    t.is(res.status, 200, res.text);
    const setCookies: string[] = [];
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      if (res.rawHeaders[i]?.toLowerCase() === "set-cookie") setCookies.push(res.rawHeaders[i + 1] ?? "");
    }
    t.true(setCookies.includes("first=one; Path=/"), JSON.stringify(setCookies));
    t.true(setCookies.includes("second=two; Path=/; HttpOnly"), JSON.stringify(setCookies));
    t.is(res.headers["x-e2e-custom"], "custom-value");
  });

  serial("an 8 MB upload reaches the app byte-exact", async (t) => {
    const body = crypto.randomBytes(8 * 1024 * 1024);
    const res = await request(target().port, {
      path: "/upload",
      method: "POST",
      host: target().host,
      headers: { "Content-Type": "application/octet-stream" },
      body,
      timeoutMs: 60_000,
    });
    t.is(res.status, 200, res.text);
    const got = JSON.parse(res.text) as { bytes: number; sha256: string };
    t.is(got.bytes, body.length);
    t.is(got.sha256, crypto.createHash("sha256").update(body).digest("hex"));
  });

  serial("an 8 MB download arrives byte-exact", async (t) => {
    const size = 8 * 1024 * 1024;
    const expected = crypto.createHash("sha256");
    for (let i = 0, left = size; left > 0; i++) {
      const seed = crypto.createHash("sha256").update(`ferry-e2e-${i}`).digest();
      const block = Buffer.alloc(65536);
      for (let o = 0; o < block.length; o += seed.length) seed.copy(block, o);
      const piece = block.subarray(0, Math.min(block.length, left));
      expected.update(piece);
      left -= piece.length;
    }
    const res = await request(target().port, { path: `/download?bytes=${size}`, host: target().host, timeoutMs: 60_000 });
    t.is(res.status, 200);
    t.is(res.body.length, size);
    t.is(crypto.createHash("sha256").update(res.body).digest("hex"), expected.digest("hex"));
  });

  serial("a chunked upload (no Content-Length) reaches the app complete", async (t) => {
    const pieces = Array.from({ length: 64 }, (_, i) => crypto.randomBytes(16 * 1024 + i));
    const whole = Buffer.concat(pieces);
    const res = await request(target().port, {
      path: "/upload",
      method: "POST",
      host: target().host,
      headers: { "Transfer-Encoding": "chunked" },
      body: Readable.from(pieces),
    });
    t.is(res.status, 200, res.text);
    const got = JSON.parse(res.text) as { bytes: number; sha256: string };
    t.is(got.bytes, whole.length);
    t.is(got.sha256, crypto.createHash("sha256").update(whole).digest("hex"));
  });

  // A client that sends its body slowly (a deliberate 1 s gap between two
  // parts): the app gets the first part when it comes, not with the rest,
  // with a Content-Length (sent as it is) and chunked (sent as chunks).
  serial("a request body streams to the app as it arrives: a part sent 1 s before the rest reaches it 1 s before", async (t) => {
    const parts = [Buffer.from("first part of the body\n"), Buffer.from("the rest, a second later\n")];
    async function* slowly(): AsyncGenerator<Buffer> {
      yield parts[0] as Buffer;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      yield parts[1] as Buffer;
    }
    const length = String(parts[0]!.length + parts[1]!.length);
    for (const headers of [{ "Content-Length": length }, { "Transfer-Encoding": "chunked" }]) {
      const res = await request(target().port, { path: "/upload", method: "POST", host: target().host, headers, body: Readable.from(slowly()) });
      t.is(res.status, 200, res.text);
      const got = JSON.parse(res.text) as { bytes: number; firstToEndMs: number };
      t.is(got.bytes, Buffer.concat(parts).length);
      t.true(got.firstToEndMs >= 700, `${JSON.stringify(headers)}: the app got the first part ${got.firstToEndMs} ms before the end`);
    }
  });

  serial("a slow streamed response: the first chunk arrives long before the end", async (t) => {
    const r = await timedGet(target().port, "/stream?chunks=6&interval=400", target().host);
    t.is(r.status, 200);
    t.regex(r.body, /chunk 0 [\s\S]*chunk 5 [\s\S]*done/);
    // The app takes 2 s in total; the first chunk must not wait for the rest.
    t.true(r.end - r.first >= 1500, `first chunk after ${r.first - r.start} ms, end after ${r.end - r.start} ms`);
  });

  serial("server-sent events stream event by event", async (t) => {
    const r = await timedGet(target().port, "/sse?events=6", target().host);
    t.is(r.status, 200);
    t.regex(r.type, /text\/event-stream/);
    const events = r.body.split("\n\n").filter((e) => e.includes("data:"));
    t.is(events.length, 6);
    t.true(r.end - r.first >= 700, `first event after ${r.first - r.start} ms, end after ${r.end - r.start} ms`);
  });

  serial("malformed requests get 4xx and serving continues", async (t) => {
    const garbage = await rawExchange(target().port, "THIS IS NOT HTTP\r\n\r\n");
    const s1 = statusOf(garbage);
    t.true(s1 >= 400 && s1 < 500, garbage.slice(0, 200));
    const badLine = await rawExchange(target().port, `GET /\x01\x02 HTTP/1.1\r\nHost: ${target().host}\r\n\r\n`);
    const s2 = statusOf(badLine);
    t.true(s2 >= 400 && s2 < 500, badLine.slice(0, 200));
    const badLength = await rawExchange(target().port, `POST /upload HTTP/1.1\r\nHost: ${target().host}\r\nContent-Length: nope\r\n\r\n`);
    const s3 = statusOf(badLength);
    t.true(s3 >= 400 && s3 < 500, badLength.slice(0, 200));
    const binary = await rawExchange(target().port, crypto.randomBytes(512));
    const s4 = statusOf(binary);
    t.true(s4 === 0 || (s4 >= 400 && s4 < 500), binary.slice(0, 200));
    const ok = await request(target().port, { path: "/", host: target().host });
    t.is(ok.status, 200);
    t.regex(ok.text, /hello from e2e-app/);
  });

  serial("a static file under the app's public/ is served by the front end, not the app", async (t) => {
    const res = await request(fe().port, { path: "/static.txt", host: "main.test" });
    t.is(res.status, 200);
    t.is(res.text, "served by the front end\n");
    t.is(res.headers["x-powered-by"], undefined);
  });

  serial("Passenger's page cache: a GET of /cached is served from public/cached.html and of /pages/ from public/pages/index.html; a POST goes to the app", async (t) => {
    const cached = await request(fe().port, { path: "/cached?x=1", host: "main.test" });
    t.is(cached.status, 200);
    t.is(cached.text, "page cache file\n");
    t.is(cached.headers["x-powered-by"], undefined);
    const index = await request(fe().port, { path: "/pages/", host: "main.test" });
    t.is(index.text, "page cache index\n");
    const post = await request(fe().port, { path: "/cached", host: "main.test", method: "POST", body: Buffer.from("x") });
    t.regex(String(post.headers["x-powered-by"]), /^Ferry/, "the app answered the POST");
  });

  serial("the app's environment variables and app env reach its environment", async (t) => {
    const body = (await getJson(fe().port, "/env", "env.test")) as { env: Record<string, string> };
    t.is(body.env.E2E_SETENV, "hello-from-the-front");
    t.is(body.env.NODE_ENV, "staging");
    t.is(body.env.PASSENGER_APP_ENV, "staging");
  });

  serial("apps run as the owner of their startup file, nobody when that is root", async (t) => {
    const me = process.getuid?.() ?? -1;
    const isRoot = me === 0;
    const main = (await getJson(fe().port, "/env", "main.test")) as { uid: number };
    const owned = (await getJson(fe().port, "/env", "owned.test")) as { uid: number };
    t.is(main.uid, isRoot ? 65534 : me);
    t.is(owned.uid, isRoot ? 1 : me); // uid 1 = daemon
  });

  serial("two host names serve two different apps, each from the parent of its public/", async (t) => {
    const a = (await getJson(fe().port, "/pid", "alpha.test")) as { pid: number; cwd: string };
    const b = (await getJson(fe().port, "/pid", "beta.test")) as { pid: number; cwd: string };
    t.is(a.cwd, apps.alpha);
    t.is(b.cwd, apps.beta);
    t.not(a.pid, b.pid);
  });

  serial(HTTP_CASES.baseUri, async (t) => {
    const app = (await getJson(fe().port, "/sub/url?q=1", "sub.test")) as { url: string; base: string };
    t.is(app.url, "/sub/url?q=1");
    t.is(app.base, "/sub");
    const home = await request(fe().port, { path: "/", host: "sub.test" });
    t.is(home.status, 200);
    t.is(home.text, "static root website\n");
  });

  return { fe };
}
