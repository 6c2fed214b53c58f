/** Different kinds of apps through standalone mode: ES modules, Express, WebSocket. */
import test from "ava";
import path from "node:path";
import WebSocket from "ws";
import { FIXTURE_APPS, json, pidOf, req, startApp, waitFor, type Running } from "../../helpers/standalone.js";

const running: Running[] = [];
test.after.always(async () => { await Promise.all(running.map((r) => r.stop())); });

async function start(app: string, flags: Record<string, unknown> = {}): Promise<Running> {
  const r = await startApp(path.join(FIXTURE_APPS, app), flags);
  running.push(r);
  return r;
}

test("an ES module app (.mjs with top-level await) works", async (t) => {
  const r = await start("esm-app", { "startup-file": "app.mjs" });
  const res = await req(r.port, "/");
  t.is(res.status, 200, res.text.slice(0, 500));
  t.is(res.text, "esm mjs true\n");
});

test("an Express app works (routes, JSON, params)", async (t) => {
  const r = await start("express-app");
  const home = await json(r.port, "/");
  t.is(home["framework"], "express");
  t.is(typeof home["pid"], "number");
  t.deepEqual(await json(r.port, "/users/42"), { id: "42" });
  const missing = await req(r.port, "/nope");
  t.is(missing.status, 404);
});

interface WsTalk {
  readonly greeting: string;
  readonly echoes: string[];
  readonly binaryOk: boolean;
  readonly setCookie: string[];
}

function talk(port: number, headers: Record<string, string> = {}): Promise<WsTalk> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers, handshakeTimeout: 20_000 });
    const timer = setTimeout(() => { ws.terminate(); reject(new Error("WebSocket exchange timed out")); }, 30_000);
    let greeting = "";
    let setCookie: string[] = [];
    const echoes: string[] = [];
    const big = Buffer.alloc(1024 * 1024, 7);
    let binaryOk = false;
    ws.on("upgrade", (res) => { setCookie = res.headers["set-cookie"] ?? []; });
    ws.on("error", (e) => { clearTimeout(timer); reject(e); });
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (greeting === "") {
        greeting = data.toString();
        ws.send("one");
        ws.send("two");
        return;
      }
      if (isBinary) {
        binaryOk = Buffer.compare(data, big) === 0;
        ws.close(1000, "done");
        return;
      }
      echoes.push(data.toString());
      if (echoes.length === 2) ws.send(big, { binary: true });
    });
    ws.on("close", () => { clearTimeout(timer); resolve({ greeting, echoes, binaryOk, setCookie }); });
  });
}

test("an open WebSocket shows in status as upgraded, not in flight", async (t) => {
  const r = await start("h3-ws");
  const ws = new WebSocket(`ws://127.0.0.1:${r.port}/ws`, { handshakeTimeout: 20_000 });
  ws.on("error", () => undefined);
  await new Promise<void>((resolve) => ws.once("message", () => resolve()));
  const p = await waitFor("one upgraded connection", () =>
    r.instance.pool.status().groups[0]?.processes.find((x) => x.upgraded === 1));
  t.is(p.inFlight, 0);
  const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
  ws.close();
  await closed;
  await waitFor("released", () => (r.instance.pool.status().groups[0]?.processes.every((x) => x.upgraded === 0) === true ? true : undefined));
  t.pass();
});

test("a WebSocket echo works through standalone mode (text and a 1 MB binary frame)", async (t) => {
  const r = await start("h3-ws");
  const w = await talk(r.port);
  t.regex(w.greeting, /^hello from \d+$/);
  t.deepEqual(w.echoes, ["one", "two"]);
  t.true(w.binaryOk);
  // The upgraded session is released once both sides closed.
  await waitFor("no open WebSocket in status", () =>
    (r.instance.pool.status().groups[0]?.processes.every((p) => p.upgraded === 0 && p.inFlight === 0) === true ? true : undefined));
  t.is((await req(r.port, "/")).status, 200);
});

test("WebSocket handshakes carry the sticky cookie both ways", async (t) => {
  const r = await start("h3-ws", { "sticky-sessions": true, "min-instances": "2" });
  const first = await talk(r.port);
  const cookie = first.setCookie.find((c) => c.startsWith("_passenger_route="));
  t.truthy(cookie, `Set-Cookie on 101: ${first.setCookie.join(" | ")}`);
  const pid = Number(/\d+$/.exec(first.greeting)?.[0]);
  const value = (cookie ?? "").split(";")[0] ?? "";
  for (let i = 0; i < 4; i++) {
    const again = await talk(r.port, { Cookie: value });
    t.is(again.greeting, `hello from ${pid}`);
  }
  t.true(pid > 0);
  t.true((await pidOf(r.port, "/", {}).catch(() => 0)) >= 0);
});

test("a non-101 answer to an upgrade request is relayed as an ordinary response", async (t) => {
  const r = await start("h3-app");
  const res = await req(r.port, "/pid", { headers: { Connection: "Upgrade", Upgrade: "websocket" } });
  t.is(res.status, 200);
  t.regex(res.text, /"pid":\d+/);
});
