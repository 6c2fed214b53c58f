/**
 * End-to-end through a real Apache: WebSocket upgrades are tunnelled both ways
 * (Passenger's Apache module cannot do this, its issue #1202).
 */
import test from "ava";
import path from "node:path";
import WebSocket from "ws";
import { ApacheServer, makeTempRoot, prepareApp, started, stopAndRemove } from "../helpers/apache.js";

let server: ApacheServer | undefined;
let root = "";
let app = "";

const srv = (): ApacheServer => started(server);

test.before(async () => {
  root = await makeTempRoot("e2e-ws");
  app = await prepareApp(root, "e2e-app", "wsapp");
  server = await ApacheServer.start({
    root,
    vhosts: [{ serverName: "ws.test", documentRoot: path.join(app, "public"), directives: ["PassengerMaxInstancesPerApp 2"] }],
  });
});

test.after.always(async () => {
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed && server !== undefined) t.log(server.errorLogTail(60));
});

/** Open a socket through Apache, echo `count` messages, close; resolves with what came back. */
function echoSession(port: number, id: number, count: number): Promise<{ welcome: string; echoes: string[]; closeCode: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { Host: "ws.test" }, handshakeTimeout: 20_000 });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`Cannot finish echo session ${id}: timed out`));
    }, 30_000);
    let welcome = "";
    const echoes: string[] = [];
    ws.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    ws.on("message", (data) => {
      const text = Buffer.isBuffer(data) ? data.toString("utf8") : String(data);
      if (welcome === "") {
        welcome = text;
        for (let i = 0; i < count; i++) ws.send(`socket ${id} message ${i} ${"x".repeat(i * 100)}`);
        return;
      }
      echoes.push(text);
      if (echoes.length === count) ws.close(1000, "done");
    });
    ws.on("close", (code) => {
      clearTimeout(timer);
      resolve({ welcome, echoes, closeCode: code });
    });
  });
}

test.serial("20 concurrent WebSockets echo through Apache", async (t) => {
  const sessions = await Promise.all(Array.from({ length: 20 }, (_, id) => echoSession(srv().port, id, 5)));
  for (const [id, s] of sessions.entries()) {
    t.regex(s.welcome, /^welcome \d+$/);
    t.deepEqual(
      s.echoes,
      Array.from({ length: 5 }, (_, i) => `socket ${id} message ${i} ${"x".repeat(i * 100)}`),
    );
    t.is(s.closeCode, 1000);
  }
});

test.serial("a binary WebSocket frame of 256 KB comes back intact", async (t) => {
  const payload = Buffer.alloc(256 * 1024);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
  const echoed = await new Promise<Buffer>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv().port}/ws`, { headers: { Host: "ws.test" }, handshakeTimeout: 20_000 });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("Cannot echo a binary frame: timed out"));
    }, 30_000);
    let gotWelcome = false;
    ws.on("error", reject);
    ws.on("message", (data, isBinary) => {
      if (!gotWelcome) {
        gotWelcome = true;
        ws.send(payload, { binary: true });
        return;
      }
      clearTimeout(timer);
      ws.close();
      resolve(isBinary && Buffer.isBuffer(data) ? data : Buffer.alloc(0));
    });
  });
  t.true(echoed.equals(payload));
});
