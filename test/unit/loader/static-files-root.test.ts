/**
 * StaticFiles when the static files dir does not exist yet (many Node apps
 * have no public/): requests go to the app, and once the dir appears its
 * files are served within a second (the dir is looked at again at most
 * every second, so a request pays no stat while it is missing); a path that
 * is no file is remembered for a second (fake clock).
 */
import test from "ava";
import http from "node:http";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { StaticFiles } from "../../../core/src/loader/static-files.js";

function get(port: number, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: p, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => { body += d; });
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

test("a static dir created after the start is served within a second; before, everything goes to the app", async (t) => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "ferry-static-root-"));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const root = path.join(tmp, "public");
  const files = new StaticFiles({ root, poweredBy: "" });
  const server = http.createServer((req, res) => {
    if (files.serve(req, res) === undefined) res.end("app");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;

  t.is(await get(port, "/a.txt"), "app");
  mkdirSync(root);
  writeFileSync(path.join(root, "a.txt"), "static\n");
  const deadline = Date.now() + 5_000;
  let body = await get(port, "/a.txt");
  while (body !== "static\n" && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    body = await get(port, "/a.txt");
  }
  t.is(body, "static\n");
  t.is(await get(port, "/b.txt"), "app", "a missing file still goes to the app");
});

test("StaticFiles remembers a path that is no file for a second: a file created then is served once that second is over", async (t) => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "ferry-static-miss-"));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const root = path.join(tmp, "public");
  mkdirSync(root);
  let clock = 10_000;
  const files = new StaticFiles({ root, poweredBy: "", now: () => clock });
  const server = http.createServer((req, res) => {
    if (files.serve(req, res) === undefined) res.end("app");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;

  t.is(await get(port, "/a.txt"), "app");
  t.is(await get(port, "/"), "app", "no index.html: the page cache has nothing either");
  writeFileSync(path.join(root, "a.txt"), "static\n");
  writeFileSync(path.join(root, "index.html"), "<p>index</p>\n");
  writeFileSync(path.join(root, "b.txt"), "b\n");
  clock += 999;
  t.is(await get(port, "/a.txt"), "app", "within the second the miss is remembered (no stat)");
  t.is(await get(port, "/"), "app");
  t.is(await get(port, "/b.txt"), "b\n", "a path not looked up before is looked up");
  clock += 1;
  t.is(await get(port, "/a.txt"), "static\n");
  t.is(await get(port, "/"), "<p>index</p>\n");
  rmSync(path.join(root, "a.txt"));
  t.is(await get(port, "/a.txt"), "app", "a file is never remembered: once gone it goes to the app at once");
});

test("StaticFiles remembers a URI that is no file no longer than the paths it rests on", async (t) => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "ferry-static-uri-"));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const root = path.join(tmp, "public");
  mkdirSync(root);
  let clock = 10_000;
  const files = new StaticFiles({ root, poweredBy: "", now: () => clock });
  const server = http.createServer((req, res) => {
    if (files.serve(req, res) === undefined) res.end("app");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;

  t.is(await get(port, "/a.txt"), "app");
  writeFileSync(path.join(root, "a.txt"), "static\n");
  clock += 900;
  t.is(await get(port, "/a.txt?v=1"), "app", "another URI of the same path: the path is still remembered");
  clock += 100;
  t.is(await get(port, "/a.txt?v=1"), "static\n", "that URI was remembered only as long as the path");
  t.is(await get(port, "/a.txt"), "static\n");
});

test("StaticFiles forgets the paths it remembered when it holds 1,024 of them, and still answers", async (t) => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "ferry-static-many-"));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const root = path.join(tmp, "public");
  mkdirSync(root);
  const clock = 10_000;
  const files = new StaticFiles({ root, poweredBy: "", now: () => clock });
  const server = http.createServer((req, res) => {
    if (files.serve(req, res) === undefined) res.end("app");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  t.is(await get(port, "/first.txt"), "app");
  writeFileSync(path.join(root, "first.txt"), "first\n");
  // 1,024 more misses (URIs, and paths with their .html page-cache files): the memories fill and start afresh, so /first.txt is looked up again.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(() => agent.destroy());
  await Promise.all(Array.from({ length: 1_024 }, (_, i) => new Promise<void>((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: `/m${i}`, agent }, (res) => { res.resume(); res.on("end", resolve); }).on("error", reject);
  })));
  t.is(await get(port, "/first.txt"), "first\n");
});
