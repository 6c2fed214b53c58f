/**
 * Black-box compatibility cases every front end must pass the same way: what
 * an unseen Node app (test/fixtures/apps/compat-app) and ordinary HTTP
 * clients see: listen/ports, proxy headers, cookies and redirects, bodiless
 * statuses, big downloads with backpressure, app output in the log, crash
 * loops, slow starts, URL encoding, header bytes, the request-line limit,
 * 100-continue, HTTP/1.0, keep-alive, and clients that go away mid-transfer.
 * Run through Apache by test/e2e/compat/http.test.ts (which adds the
 * Apache-only PassengerMaxInstances / PassengerErrorOverride cases) and
 * through nginx by test/e2e/nginx/compat-http.test.ts.
 */
import type { TestFn } from "ava";
import crypto from "node:crypto";
import http from "node:http";
import net from "node:net";
import { prepareApp, waitFor } from "../../helpers/apache.js";
import { rawExchange, request, statusOf, type HttpResult } from "../../helpers/e2e-http.js";
import { ferryStatus, groupOf } from "../../helpers/ferry-status.js";
import { type AppSite, type FrontEnd, type FrontEndConfig, type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

export interface CompatApps {
  web: string;
  crash: string;
  slow: string;
}

/** A compat-app site: the app root named explicitly, its startup file server.js. */
export function compatSite(serverName: string, appRoot: string, options: Readonly<Record<string, string | number>> = {}, env: Readonly<Record<string, string>> = {}): AppSite {
  return { serverName, appRoot, env, options: { AppRoot: appRoot, StartupFile: "server.js", ...options } };
}

export function compatHttpCases(
  test: TestFn,
  kind: FrontEndKind,
  opts: SharedCaseOptions & { readonly moreCompatSites?: (apps: CompatApps) => readonly AppSite[] } = {},
): { fe: () => FrontEnd; apps: CompatApps } {
  const apps: CompatApps = { web: "", crash: "", slow: "" };
  const config = (slowStartTimeout: number): FrontEndConfig => ({
    // JSON lines: coreLog() reads the core's records (the readable format is tested in logs.test.ts).
    server: { LogFormat: "json" },
    sites: [
      compatSite("web.test", apps.web),
      compatSite("crash.test", apps.crash, {}, { COMPAT_EXIT_AFTER: "3" }),
      compatSite("slow.test", apps.slow, { StartTimeout: slowStartTimeout }, { COMPAT_START_DELAY_MS: "6000" }),
      ...(opts.moreCompatSites?.(apps) ?? []),
    ],
  });
  const { fe, serial } = frontEndSuite(test, kind, "compat-http", async (root) => {
    apps.web = await prepareApp(root, "compat-app", "web");
    apps.crash = await prepareApp(root, "compat-app", "crash");
    apps.slow = await prepareApp(root, "compat-app", "slow");
    return config(2);
  }, opts);

  function get(host: string, p: string, headers?: Record<string, string>, method?: string): Promise<HttpResult> {
    return request(fe().port, {
      path: p,
      host,
      timeoutMs: 45_000,
      ...(headers === undefined ? {} : { headers }),
      ...(method === undefined ? {} : { method }),
    });
  }

  function jsonOf(res: HttpResult): Record<string, unknown> {
    const v: unknown = JSON.parse(res.text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`Cannot parse: not an object: ${res.text}`);
    return v as Record<string, unknown>;
  }

  /** Parsed JSON log lines of the core in the server's error log. */
  function coreLog(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const line of fe().server.errorLog().split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const v: unknown = JSON.parse(line);
        if (typeof v === "object" && v !== null) out.push(v as Record<string, unknown>);
      } catch {
        /* a line cut by a concurrent write */
      }
    }
    return out;
  }

  serial("app.listen(PORT || 3000, '0.0.0.0', cb) works; stdout and stderr reach the server's error log with app and pid", async (t) => {
    const res = await get("web.test", "/log?tag=COMPAT-TAG-1");
    t.is(res.status, 200, res.text);
    const pid = Number(jsonOf(res).pid);
    const lines = await waitFor(
      () => {
        const l = coreLog().filter((e) => typeof e.msg === "string" && e.msg.endsWith("COMPAT-TAG-1"));
        return l.length >= 2 ? l : undefined;
      },
      { timeoutMs: 10_000, what: "the app's output in the error log" },
    );
    for (const stream of ["stdout", "stderr"]) {
      const e = lines.find((l) => l.stream === stream);
      t.truthy(e, `${stream} line`);
      t.is(e?.pid, pid);
      t.regex(String(e?.app), new RegExp(apps.web.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    }
    // The listen callback ran (the app printed its address).
    t.true(coreLog().some((e) => e.pid === pid && typeof e.msg === "string" && e.msg.startsWith("compat-app listening on")));
  });

  serial("req.ip / X-Forwarded-For: the client address is appended to what the client sent", async (t) => {
    const plain = jsonOf(await get("web.test", "/"));
    t.is(plain.ip, "127.0.0.1");
    const proxied = jsonOf(await get("web.test", "/", { "X-Forwarded-For": "203.0.113.9" }));
    t.is(proxied.ip, "203.0.113.9");
    t.is(proxied.xff, "203.0.113.9, 127.0.0.1");
  });

  serial("three Set-Cookie headers and relative/absolute Location redirects pass unchanged", async (t) => {
    const res = await get("web.test", "/cookies", { Cookie: "x=1; y=2" });
    t.deepEqual(res.headers["set-cookie"], ["a=1; Path=/", "b=2; Path=/; HttpOnly", "c=3; Path=/; Max-Age=60"]);
    t.is(jsonOf(res).cookie, "x=1; y=2");
    const rel = await get("web.test", "/redirect-rel");
    t.is(rel.status, 302);
    t.is(rel.headers.location, "/landed");
    const abs = await get("web.test", "/redirect-abs");
    t.is(abs.status, 301);
    t.is(abs.headers.location, "https://elsewhere.example/landed?x=1");
  });

  serial("304, 204 and HEAD responses have no body and keep their headers", async (t) => {
    const nm = await get("web.test", "/not-modified", { "If-None-Match": '"v1"' });
    t.is(nm.status, 304);
    t.is(nm.body.length, 0);
    t.is(nm.headers.etag, '"v1"');
    const nc = await get("web.test", "/no-content");
    t.is(nc.status, 204);
    t.is(nc.body.length, 0);
    t.is(nc.headers["x-compat"], "204");
    const head = await get("web.test", "/", undefined, "HEAD");
    t.is(head.status, 200);
    t.is(head.body.length, 0);
    t.regex(String(head.headers["content-length"]), /^\d+$/);
    // The connection stays usable after bodiless responses.
    const raw = await rawExchange(
      fe().port,
      "HEAD / HTTP/1.1\r\nHost: web.test\r\n\r\nGET /no-content HTTP/1.1\r\nHost: web.test\r\n\r\nGET /not-modified HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n",
    );
    t.is((raw.match(/^HTTP\/1\.1 /gm) ?? []).length, 3, raw);
    t.true(raw.includes("fresh body\n"));
  });

  serial("the app's own error pages and big headers pass unchanged (no front-end error page)", async (t) => {
    for (const code of [500, 503, 404, 400]) {
      const res = await get("web.test", `/fail?code=${code}`);
      t.is(res.status, code);
      t.is(res.text, `app error page ${code}\n`);
      t.is(res.headers["x-app-error"], "yes");
    }
    const big = await get("web.test", "/bigheader?kb=8");
    t.is(big.status, 200);
    t.is(String(big.headers["x-big"]).length, 8 * 1024);
    const cookie = `s=${"c".repeat(7000)}`;
    const echoed = jsonOf(await get("web.test", "/echo", { Cookie: cookie }));
    t.is((echoed.headers as Record<string, string>).cookie, cookie);
  });

  serial("a 64 MB download written with res.write + 'drain' arrives whole", async (t) => {
    const res = await get("web.test", "/big?mb=64");
    t.is(res.status, 200);
    t.is(res.body.length, 64 * 1024 * 1024);
    const expected = crypto.createHash("sha256");
    const chunk = Buffer.alloc(64 * 1024, "x");
    for (let i = 0; i < 1024; i++) expected.update(chunk);
    t.is(crypto.createHash("sha256").update(res.body).digest("hex"), expected.digest("hex"));
  });

  serial("server-sent events: the first event reaches the client while the app still holds the response open", async (t) => {
    const result = await new Promise<{ firstAt: number; endAt: number; text: string; type: string }>((resolve, reject) => {
      const started = Date.now();
      let firstAt = 0;
      let text = "";
      const req = http.get(
        { host: "127.0.0.1", port: fe().port, path: "/events", agent: false, headers: { Host: "web.test" }, signal: AbortSignal.timeout(20_000) },
        (res) => {
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            if (firstAt === 0) firstAt = Date.now() - started;
            text += c;
          });
          res.on("end", () => resolve({ firstAt, endAt: Date.now() - started, text, type: String(res.headers["content-type"]) }));
        },
      );
      req.on("error", reject);
    });
    t.is(result.type, "text/event-stream");
    t.is(result.text, "data: first\n\ndata: second\n\n");
    // The app writes the second event 3 s after the first: the first must not wait for it.
    t.true(result.endAt - result.firstAt >= 1_500, `first event at ${result.firstAt} ms, end at ${result.endAt} ms`);
  });

  serial("query strings and encoded paths reach the app unchanged", async (t) => {
    const q = jsonOf(await get("web.test", "/echo?x=1&y=%2F&z=a+b&e=%E2%82%AC"));
    t.is(q.url, "/echo?x=1&y=%2F&z=a+b&e=%E2%82%AC");
    const enc = await get("web.test", "/a%20b?x=1&y=%2F");
    t.is(enc.status, 404, "the app's own 404");
    t.is(jsonOf(enc).url, "/a%20b?x=1&y=%2F");
  });

  serial("non-ASCII header bytes pass both ways unchanged", async (t) => {
    const raw = await rawExchange(
      fe().port,
      Buffer.concat([
        Buffer.from("GET /nonascii HTTP/1.1\r\nHost: web.test\r\nX-Name: caf"),
        Buffer.from([0xc3, 0xa9]),
        Buffer.from("\r\nConnection: close\r\n\r\n"),
      ]),
    );
    t.is(statusOf(raw), 200, raw);
    // The app set "café"; Node writes it as UTF-8 (C3 A9), and those bytes arrive as they are.
    t.true(raw.includes("X-Latin1: caf\u00c3\u00a9\r\n"), raw);
    const bodyBytes = Buffer.from(raw.slice(raw.indexOf("\r\n\r\n") + 4), "latin1");
    const body = JSON.parse(bodyBytes.toString("utf8")) as { raw: string[] };
    const i = body.raw.indexOf("X-Name");
    // Node decodes header bytes as latin1: the client's C3 A9 reads as "Ã©", i.e. the same two bytes.
    t.is(body.raw[i + 1], "caf\u00c3\u00a9");
  });

  serial("very long URLs: the front end's request-line limit (8 KB) applies (414), below it the app gets the URL", async (t) => {
    const ok = await get("web.test", `/echo?q=${"a".repeat(7000)}`);
    t.is(ok.status, 200);
    t.is(String(jsonOf(ok).url).length, "/echo?q=".length + 7000);
    const tooLong = await get("web.test", `/echo?q=${"a".repeat(9000)}`);
    t.is(tooLong.status, 414);
  });

  serial("Expect: 100-continue uploads get 100 Continue and then the app's answer", async (t) => {
    const body = crypto.randomBytes(1_500_000);
    const result = await new Promise<{ continued: boolean; status: number; text: string }>((resolve, reject) => {
      let continued = false;
      const req = http.request({
        host: "127.0.0.1",
        port: fe().port,
        path: "/upload",
        method: "POST",
        agent: false,
        headers: { Host: "web.test", Expect: "100-continue", "Content-Length": String(body.length) },
        signal: AbortSignal.timeout(30_000),
      });
      req.on("continue", () => {
        continued = true;
        req.end(body);
      });
      req.on("error", reject);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ continued, status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      });
    });
    t.true(result.continued);
    t.is(result.status, 200, result.text);
    const echoed = JSON.parse(result.text) as { bytes: number; sha256: string };
    t.is(echoed.bytes, body.length);
    t.is(echoed.sha256, crypto.createHash("sha256").update(body).digest("hex"));
  });

  serial("an HTTP/1.0 client gets a complete response and a closed connection", async (t) => {
    const raw = await rawExchange(fe().port, "GET /?v=10 HTTP/1.0\r\nHost: web.test\r\n\r\n");
    t.is(statusOf(raw), 200, raw);
    const bodyText = raw.slice(raw.indexOf("\r\n\r\n") + 4);
    t.is((JSON.parse(bodyText) as { url: string }).url, "/?v=10");
    t.notRegex(raw, /Transfer-Encoding: chunked/i);
  });

  serial("keep-alive: 40 sequential requests on one client connection", async (t) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<net.Socket>();
    try {
      for (let i = 0; i < 40; i++) {
        const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = http.get(
            { host: "127.0.0.1", port: fe().port, path: `/?n=${i}`, agent, headers: { Host: "web.test" }, signal: AbortSignal.timeout(15_000) },
            (r) => {
              const chunks: Buffer[] = [];
              r.on("data", (c: Buffer) => chunks.push(c));
              r.on("end", () => resolve({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
            },
          );
          req.on("socket", (s) => sockets.add(s));
          req.on("error", reject);
        });
        t.is(res.status, 200);
        t.is((JSON.parse(res.text) as { url: string }).url, `/?n=${i}`);
      }
    } finally {
      agent.destroy();
    }
    t.is(sockets.size, 1);
  });

  serial("clients that disconnect mid-upload and mid-download leave no request in flight", async (t) => {
    // Mid-download: read a little of a 512 MB response, then drop the connection.
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect({ host: "127.0.0.1", port: fe().port });
      let got = 0;
      sock.on("connect", () => sock.write("GET /big?mb=512 HTTP/1.1\r\nHost: web.test\r\n\r\n"));
      sock.on("data", (c: Buffer) => {
        got += c.length;
        if (got > 1_000_000) {
          sock.destroy();
          resolve();
        }
      });
      sock.on("error", reject);
      setTimeout(() => reject(new Error("Cannot download: nothing arrived in 20 s")), 20_000).unref();
    });
    // Mid-upload: promise 50 MB, send 1 MB, drop the connection.
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect({ host: "127.0.0.1", port: fe().port });
      sock.on("connect", () => {
        sock.write("POST /upload HTTP/1.1\r\nHost: web.test\r\nContent-Length: 52428800\r\n\r\n");
        sock.write(Buffer.alloc(1_000_000, 1), () => {
          setTimeout(() => {
            sock.destroy();
            resolve();
          }, 200);
        });
      });
      sock.on("error", reject);
    });
    const g = await waitFor(
      async () => {
        const found = groupOf(await ferryStatus(fe().server), apps.web);
        return found !== undefined && found.processes.every((p) => p.inFlight === 0) ? found : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: "0 requests in flight" },
    );
    t.true(g.processes.length >= 1);
    const after = await get("web.test", "/");
    t.is(after.status, 200);
  });

  serial("an app that exits after every 3 requests keeps serving, without a tight respawn loop", async (t) => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await get("crash.test", `/?i=${i}`)).status);
    // A request whose kept app connection died with its process just before
    // is retried (docs/protocol.md "Retry once"): not a single 502.
    t.deepEqual(statuses, Array.from({ length: 12 }, () => 200));
    const spawnsFor = (): number =>
      coreLog().filter((e) => e.msg === "Process spawned" && String(e.app).startsWith(`${apps.crash} `)).length;
    const spawned = spawnsFor();
    t.true(spawned >= 3 && spawned <= 8, `spawned ${spawned} processes for 12 requests`);
    // Idle afterwards: the last process exits after request 12; at most the
    // minimum (1) is brought back, no loop.
    await new Promise((r) => setTimeout(r, 3_000));
    t.true(spawnsFor() <= spawned + 1, `spawned ${spawnsFor()} after being idle (was ${spawned})`);
  });

  serial("a 6 s startup with a start timeout of 2 s gets a readable 500; raising it and reloading makes it work", async (t) => {
    const failed = await get("slow.test", "/");
    t.is(failed.status, 500);
    t.regex(String(failed.headers["content-type"]), /text\/html/);
    t.regex(failed.text, /something went wrong/i);
    t.regex(failed.text, /error-id/);
    await fe().reconfigure(config(30));
    await fe().reload();
    const ok = await get("slow.test", "/");
    t.is(ok.status, 200, ok.text);
    t.true(Number(jsonOf(ok).uptimeMs) >= 0);
  });

  return { fe, apps };
}
