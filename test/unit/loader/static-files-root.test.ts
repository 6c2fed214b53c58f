/**
 * StaticFiles when the static files dir does not exist yet (many Node apps
 * have no public/): requests go to the app, and once the dir appears its
 * files are served within a second (the dir is looked at again at most
 * every second, so a request pays no stat while it is missing).
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
