/**
 * End-to-end case every front end must pass the same way (issue 11): once
 * the core has leased a request, the exchange no longer needs it
 * (docs/protocol.md, "Core restarts"). `kill -9` of the core while a
 * download, an upload and a WebSocket are open through the front end: all
 * three complete, byte-exact; the module's daemon restarts the core and new
 * requests are served again. Run through Apache by
 * test/e2e/core-crash.test.ts and through nginx by
 * test/e2e/nginx/core-crash.test.ts.
 */
import type { TestFn } from "ava";
import crypto from "node:crypto";
import { Readable } from "node:stream";
import WebSocket from "ws";
import { prepareApp } from "../../helpers/apache.js";
import { request } from "../../helpers/e2e-http.js";
import { until } from "../../helpers/until.js";
import { type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

export const CORE_CRASH_CASE = "kill -9 of the core: a download, an upload and a WebSocket already leased all complete; new requests are served again";

/** A request body that trickles out: `pieces` random pieces of `size` bytes, `gapMs` apart. */
function trickle(pieces: number, size: number, gapMs: number, hash: crypto.Hash, onFirst: () => void): Readable {
  let n = 0;
  return new Readable({
    read() {
      if (n === pieces) {
        this.push(null);
        return;
      }
      const piece = crypto.randomBytes(size);
      hash.update(piece);
      n++;
      setTimeout(() => {
        this.push(piece);
        if (n === 1) onFirst();
      }, n === 1 ? 0 : gapMs);
    },
  });
}

export function coreCrashCases(test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {}): void {
  const { fe, serial } = frontEndSuite(test, kind, "core-crash", async (root) => ({
    // The direct path even under `npm run test:e2e:relay`: only leased exchanges outlive the core.
    serverEnv: { FERRY_DATA_PATH: "direct" },
    sites: [{ serverName: "web.test", appRoot: await prepareApp(root, "e2e-app", "web"), options: { MinInstances: 2 } }],
  }), opts);

  serial(CORE_CRASH_CASE, async (t) => {
    t.timeout(120_000);
    const port = fe().port;
    t.is((await request(port, { path: "/pid", host: "web.test" })).status, 200);
    const oldCore = fe().server.corePid();
    t.truthy(oldCore, "the core's pid is known");

    // A WebSocket, open and echoing.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { Host: "web.test" }, handshakeTimeout: 20_000 });
    const received: string[] = [];
    ws.on("message", (d: WebSocket.RawData) => received.push(d.toString()));
    await until(() => received.some((m) => m.startsWith("welcome")), "the WebSocket's welcome");

    // A download streamed over ~3 s (20 chunks, 150 ms apart).
    const download = request(port, { path: "/stream?chunks=20&interval=150", host: "web.test", timeoutMs: 60_000 });
    // An upload trickling 24 × 64 KiB over ~3 s.
    const upHash = crypto.createHash("sha256");
    let uploadStarted = false;
    const upload = request(port, {
      path: "/upload", method: "POST", host: "web.test", timeoutMs: 60_000,
      body: trickle(24, 64 * 1024, 120, upHash, () => (uploadStarted = true)),
    });
    await until(() => uploadStarted, "the upload's first bytes");
    await new Promise((r) => setTimeout(r, 400)); // all three are leased and moving

    process.kill(oldCore ?? 0, "SIGKILL");

    // The WebSocket keeps echoing after the kill.
    ws.send("after the kill");
    await until(() => received.includes("after the kill"), "the WebSocket echo after the kill");

    const down = await download;
    t.is(down.status, 200);
    const lines = down.body.toString().split("\n").filter((l) => l !== "");
    t.is(lines.length, 21, "20 chunks and the final line");
    t.is(lines.at(-1), "done");

    const up = await upload;
    t.is(up.status, 200);
    const got = JSON.parse(up.body.toString()) as { bytes: number; sha256: string };
    t.is(got.bytes, 24 * 64 * 1024);
    t.is(got.sha256, upHash.digest("hex"));

    ws.send("still open");
    await until(() => received.includes("still open"), "the WebSocket echo after the transfers");
    ws.close();

    // The module restarts the core; new requests are served again.
    await until(() => {
      const p = fe().server.corePid();
      return p !== undefined && p !== oldCore;
    }, "a new core", 30_000);
    await until(async () => (await request(port, { path: "/pid", host: "web.test", timeoutMs: 15_000 }).catch(() => ({ status: 0 }))).status === 200,
      "a request served by the new core", 30_000);
    t.pass();
  });
}
