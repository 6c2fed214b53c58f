/**
 * End-to-end: the relay path kept as a fallback (FERRY_DATA_PATH=relay in
 * Apache's environment: the module sends protocol v2 heads and the core
 * relays every byte). The direct path is the default and every other e2e
 * test runs on it; `npm run test:e2e:relay` runs them all on this one
 * (except what only the direct path can do: an app that echoes a large body
 * while reading it hangs on the relay path).
 */
import test from "ava";
import crypto from "node:crypto";
import path from "node:path";
import WebSocket from "ws";
import { ApacheServer, makeTempRoot, prepareApp, started, stopAndRemove } from "../helpers/apache.js";
import { request } from "../helpers/e2e-http.js";

let server: ApacheServer | undefined;
let root = "";
const srv = (): ApacheServer => started(server);

test.before(async () => {
  root = await makeTempRoot("e2e-relay");
  const web = await prepareApp(root, "e2e-app", "web");
  const ws = await prepareApp(root, "ws-echo", "ws");
  server = await ApacheServer.start({
    root,
    env: { FERRY_DATA_PATH: "relay" },
    logLevel: "warn ferry:trace2",
    vhosts: [
      { serverName: "web.test", documentRoot: path.join(web, "public") },
      { serverName: "ws.test", documentRoot: path.join(ws, "public") },
    ],
  });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(60));
});

test.serial("FERRY_DATA_PATH=relay: 4 MB up and 4 MB down are relayed by the core, no lease", async (t) => {
  const body = crypto.randomBytes(4 * 1024 * 1024);
  const up = await request(srv().port, { path: "/upload", method: "POST", host: "web.test", body, timeoutMs: 60_000 });
  t.is(up.status, 200);
  t.is((JSON.parse(up.text) as { sha256: string }).sha256, crypto.createHash("sha256").update(body).digest("hex"));
  const down = await request(srv().port, { path: "/download?bytes=4194304", host: "web.test", timeoutMs: 60_000 });
  t.is(down.status, 200);
  t.is(down.body.length, 4 * 1024 * 1024);
  const log = srv().errorLogTail(400);
  t.regex(log, /ferry_response\.c\(\d+\): .*relayed response 200 with 4194304 body bytes/);
  t.notRegex(log, /lease [^ ]+: app pid/);
});

test.serial("FERRY_DATA_PATH=relay: a WebSocket is tunnelled through the core", async (t) => {
  const sock = new WebSocket(`ws://127.0.0.1:${srv().port}/`, { headers: { Host: "ws.test" } });
  await new Promise<void>((resolve, reject) => {
    sock.once("open", () => resolve());
    sock.once("error", reject);
  });
  const reply = await new Promise<string>((resolve, reject) => {
    sock.once("message", (d) => resolve(String(d)));
    sock.once("error", reject);
    sock.send("over the relay");
  });
  sock.close();
  t.is(reply, "over the relay");
});
