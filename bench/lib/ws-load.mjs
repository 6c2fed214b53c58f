#!/usr/bin/env node
// WebSocket load: open N connections to ws://127.0.0.1:PORT/ws (ramped, a
// bounded number of handshakes in flight), then for DURATION seconds every
// open socket echoes a 32-byte message in a loop; round trips are timed.
// Prints one line "BENCHJSON {...}" like wrk.lua does.
// Usage: node ws-load.mjs --port P [--conns 1000] [--duration 10]
import { parseArgs } from "node:util";
import WebSocket from "ws";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    conns: { type: "string", default: "1000" },
    duration: { type: "string", default: "10" },
    ramp: { type: "string", default: "50" },
  },
});
const port = Number(values.port);
const conns = Number(values.conns);
const durationMs = Number(values.duration) * 1000;
const rampParallel = Number(values.ramp);
const HANDSHAKE_MS = 10000;
const PAYLOAD = Buffer.alloc(32, "w");

const hist = new Map();
let echoes = 0;
let errConnect = 0;
let errStatus = 0;
let errDuring = 0;
let measuring = false;
let finished = false;
const open = new Set();

function record(us) {
  const b = Math.floor(Math.log(Math.max(1, us)) * 50);
  hist.set(b, (hist.get(b) ?? 0) + 1);
}

function pct(p) {
  const keys = [...hist.keys()].sort((a, b) => a - b);
  const total = [...hist.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let seen = 0;
  for (const k of keys) {
    seen += hist.get(k);
    if (seen >= (total * p) / 100) return Math.floor(Math.exp((k + 0.5) / 50));
  }
  return null;
}

function connect() {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { handshakeTimeout: HANDSHAKE_MS, perMessageDeflate: false });
    let settled = false;
    let sentAt = 0;
    ws.on("open", () => {
      settled = true;
      open.add(ws);
      resolve();
    });
    ws.on("unexpected-response", (_req, res) => {
      errStatus++;
      res.resume();
      settled = true;
      ws.terminate();
      resolve();
    });
    ws.on("message", () => {
      if (measuring && sentAt !== 0) {
        record(Number(process.hrtime.bigint() / 1000n) - sentAt);
        echoes++;
      }
      if (!finished) {
        sentAt = measuring ? Number(process.hrtime.bigint() / 1000n) : 0;
        ws.send(PAYLOAD);
      }
    });
    ws.on("error", () => {
      if (!settled) {
        settled = true;
        errConnect++;
        resolve();
      }
    });
    ws.on("close", () => {
      if (open.delete(ws) && !finished) errDuring++;
    });
    ws.kick = () => {
      sentAt = Number(process.hrtime.bigint() / 1000n);
      ws.send(PAYLOAD);
    };
  });
}

// Ramp: at most `rampParallel` handshakes in flight.
let next = 0;
async function lane() {
  while (next < conns) {
    next++;
    await connect();
  }
}
await Promise.all(Array.from({ length: Math.min(rampParallel, conns) }, lane));
const opened = open.size;

measuring = true;
const t0 = performance.now();
for (const ws of open) ws.kick();
await new Promise((r) => setTimeout(r, durationMs));
finished = true;
const elapsedUs = (performance.now() - t0) * 1000;
const held = open.size;

// Close everything; give the closes a bounded time, then terminate.
for (const ws of open) ws.close(1000);
await new Promise((r) => setTimeout(r, 1000));
for (const ws of open) ws.terminate();

const out = {
  requests: echoes,
  duration_us: Math.round(elapsedUs),
  err_connect: errConnect,
  err_status: errStatus,
  err_during: errDuring,
  opened,
  held,
  p50_us: pct(50),
  p99_us: pct(99),
};
process.stdout.write(`BENCHJSON ${JSON.stringify(out)}\n`);
process.exit(0);
