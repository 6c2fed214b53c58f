/**
 * End-to-end cases every front end must pass the same way: WebSocket
 * upgrades are tunnelled both ways (Passenger's Apache module cannot do this,
 * its issue #1202). Run through Apache by test/e2e/websocket.test.ts and
 * through nginx by test/e2e/nginx/websocket.test.ts.
 */
import type { TestFn } from "ava";
import WebSocket from "ws";
import { prepareApp } from "../../helpers/apache.js";
import { type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

/** Open a socket through the front end, echo `count` messages, close; resolves with what came back. */
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

export const WEBSOCKET_CASES = {
  concurrent: "20 concurrent WebSockets echo through the front end",
  binary: "a binary WebSocket frame of 256 KB comes back intact",
} as const;

export function websocketCases(test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {}): void {
  const { fe, serial } = frontEndSuite(test, kind, "ws", async (root) => ({
    server: { MaxInstancesPerApp: 2 },
    sites: [{ serverName: "ws.test", appRoot: await prepareApp(root, "e2e-app", "wsapp") }],
  }), opts);

  serial(WEBSOCKET_CASES.concurrent, async (t) => {
    const sessions = await Promise.all(Array.from({ length: 20 }, (_, id) => echoSession(fe().port, id, 5)));
    for (const [id, s] of sessions.entries()) {
      t.regex(s.welcome, /^welcome \d+$/);
      t.deepEqual(
        s.echoes,
        Array.from({ length: 5 }, (_, i) => `socket ${id} message ${i} ${"x".repeat(i * 100)}`),
      );
      t.is(s.closeCode, 1000);
    }
  });

  serial(WEBSOCKET_CASES.binary, async (t) => {
    const payload = Buffer.alloc(256 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${fe().port}/ws`, { headers: { Host: "ws.test" }, handshakeTimeout: 20_000 });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error("Cannot echo a binary frame: timed out"));
      }, 30_000);
      let gotWelcome = false;
      ws.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
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
}
