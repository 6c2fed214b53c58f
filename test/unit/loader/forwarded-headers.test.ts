/**
 * loader/handoff-adopter.ts forwardedHeaders() (what the relay adds, done on a
 * handed-off connection) with a real HTTP server in this process: the app
 * sees the relay's X-Forwarded-* and no client X-Ferry-Pass in rawHeaders,
 * headers and headersDistinct alike, whichever it reads first.
 */
import test from "ava";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { once } from "node:events";
import { forwardedHeaders } from "../../../core/src/loader/handoff-adopter.js";

interface Seen {
  readonly raw: readonly string[];
  readonly headers: http.IncomingHttpHeaders;
  readonly distinct: Record<string, string[] | undefined>;
}

async function serve(t: { teardown(fn: () => void): void }, headersFirst: boolean): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    // The app reads them in either order: both objects are built lazily by Node.
    const distinct = headersFirst ? (void req.headers, { ...req.headersDistinct }) : { ...req.headersDistinct };
    seen.push({ raw: [...req.rawHeaders], headers: { ...req.headers }, distinct });
    res.writeHead(200, { "Content-Length": "2" });
    res.end("ok");
  });
  server.prependListener("request", (req: http.IncomingMessage) => forwardedHeaders(req));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.teardown(() => server.close());
  return { port: (server.address() as AddressInfo).port, seen };
}

async function request(port: number, head: string): Promise<void> {
  const s = net.connect({ port, host: "127.0.0.1" });
  s.write(head);
  let got = "";
  s.setEncoding("latin1");
  for await (const chunk of s) {
    got += String(chunk);
    if (got.includes("\r\n\r\nok")) break;
  }
  s.destroy();
}

const HEAD = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.1\r\nX-Ferry-Pass: 1\r\nx-forwarded-for: 10.0.0.2\r\nX-Forwarded-Proto: https\r\nX-Other: y\r\n\r\n";

for (const headersFirst of [false, true]) {
  test(`forwardedHeaders() gives the app the relay's headers (app reads ${headersFirst ? "headers" : "headersDistinct"} first)`, async (t) => {
    const { port, seen } = await serve(t, headersFirst);
    await request(port, HEAD);
    const s = seen[0];
    if (s === undefined) return t.fail();
    t.deepEqual(s.raw, ["Host", "a", "X-Other", "y", "X-Forwarded-For", "10.0.0.1, 10.0.0.2, 127.0.0.1", "X-Forwarded-Proto", "http"]);
    t.is(s.headers["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 127.0.0.1");
    t.is(s.headers["x-forwarded-proto"], "http");
    t.is(s.headers["x-ferry-pass"], undefined);
    t.deepEqual(s.distinct["x-forwarded-for"], ["10.0.0.1, 10.0.0.2, 127.0.0.1"]);
    t.deepEqual(s.distinct["x-forwarded-proto"], ["http"]);
    t.false("x-ferry-pass" in s.distinct);
    t.deepEqual(s.distinct["x-other"], ["y"]);
  });
}

test("forwardedHeaders() adds X-Forwarded-For with the client address alone when the client sent none", async (t) => {
  const { port, seen } = await serve(t, false);
  await request(port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  t.deepEqual(seen[0]?.raw, ["Host", "a", "X-Forwarded-For", "127.0.0.1", "X-Forwarded-Proto", "http"]);
  t.deepEqual(seen[0]?.distinct["x-forwarded-for"], ["127.0.0.1"]);
});
