/**
 * End-to-end through a real nginx started with FERRY_DATA_PATH=relay: the
 * module sends version 2 heads and every request takes the relay path
 * (frames through the core), WebSockets included (docs/nginx.md).
 */
import test from "ava";
import crypto from "node:crypto";
import path from "node:path";
import WebSocket from "ws";
import { makeTempRoot, prepareApp } from "../../helpers/apache.js";
import { request } from "../../helpers/e2e-http.js";
import { NginxServer, nginxStarted, stopAndRemoveNginx } from "../../helpers/nginx.js";
import { until } from "../../helpers/until.js";

let nginx: NginxServer | undefined;
let root = "";
const srv = (): NginxServer => nginxStarted(nginx);

test.before(async () => {
  root = await makeTempRoot("e2e-nginx-relay");
  const app = await prepareApp(root, "e2e-app", "web");
  nginx = await NginxServer.start({
    root,
    logLevel: "debug",
    env: { FERRY_DATA_PATH: "relay" },
    servers: [{ serverName: "web.test", root: path.join(app, "public"), directives: ["passenger_enabled on;", "client_max_body_size 0;"] }],
  });
});

test.after.always(async () => {
  await stopAndRemoveNginx(nginx, root);
});

test.afterEach.always((t) => {
  if (!t.passed && nginx !== undefined) t.log(nginx.errorLogTail(60));
});

test.serial("FERRY_DATA_PATH=relay: a GET and a 1 MB upload are served without a lease", async (t) => {
  const res = await request(srv().port, { path: "/url?a=1", host: "web.test" });
  t.is(res.status, 200);
  t.is((JSON.parse(res.text) as { url: string }).url, "/url?a=1");
  const body = crypto.randomBytes(1024 * 1024);
  const up = await request(srv().port, { path: "/upload", method: "POST", host: "web.test", body, timeoutMs: 60_000 });
  t.is(up.status, 200);
  t.is((JSON.parse(up.text) as { sha256: string }).sha256, crypto.createHash("sha256").update(body).digest("hex"));
  t.notRegex(srv().errorLog(), /ferry: lease /);
});

test.serial("FERRY_DATA_PATH=relay: a WebSocket echoes through the core's tunnel", async (t) => {
  const ws = new WebSocket(`ws://127.0.0.1:${srv().port}/ws`, { headers: { Host: "web.test" }, handshakeTimeout: 20_000 });
  const received: string[] = [];
  ws.on("message", (d: WebSocket.RawData) => received.push(d.toString()));
  ws.on("error", (e: Error) => received.push(`error: ${e.message}`));
  await until(() => received.some((m) => m.startsWith("welcome") || m.startsWith("error")), "the WebSocket's welcome");
  t.true(received.some((m) => m.startsWith("welcome")), received.join(", "));
  ws.send("over the relay");
  await until(() => received.includes("over the relay"), "the echo");
  ws.close();
  t.notRegex(srv().errorLog(), /ferry: lease /);
});
