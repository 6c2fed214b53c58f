#!/usr/bin/env node
// Forwarding overhead of shared session affinity (docs/affinity.md).
//
//   node bench/affinity.mjs [--duration S] [--connections N]
//
// Starts a private redis-server and two `ferry start` hosts (h1, h2) with shared
// affinity, serving test/fixtures/apps/affinity-counter with sticky sessions.
// One session is pinned to an h1 process; then, for --duration seconds each,
// --connections keep-alive clients send that session's requests
//   local:  to h1 (the owner: served locally, no hop)
//   hop:    to h2 (forwarded to h1 over the authenticated peer connection)
//   plain:  to h3, a `ferry start` without affinity (sticky sessions only)
// and report requests/s, p50 and p99 latency. Needs `npm run build` first.
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "bin/ferry.js");
const APP = path.join(ROOT, "test/fixtures/apps/affinity-counter");
const { values } = parseArgs({ options: { duration: { type: "string", default: "5" }, connections: { type: "string", default: "16" } } });
const DURATION_MS = Number(values.duration) * 1000;
const CONNECTIONS = Number(values.connections);

const children = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), "ferry-bench-affinity-"));
chmodSync(tmp, 0o755); // app processes may run as nobody: they must reach their socket dir
function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().on("error", reject).listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function until(what, fn, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.on("error", () => resolve(undefined));
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => { s.destroy(); resolve(d.toString().startsWith("+PONG") ? true : undefined); });
  });
}

async function startRedis() {
  const port = await freePort();
  const c = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp], { stdio: "ignore" });
  children.push(c);
  await until("redis", () => ping(port));
  return port;
}

async function startHost(name, extra) {
  const c = spawn(process.execPath, [BIN, "start", APP, "--port", "0", "--address", "127.0.0.1", "--environment", "production",
    "--sticky-sessions", "--min-instances", "1", "--max-pool-size", "2", "--log-level", "2",
    "--instance-registry-dir", path.join(tmp, `reg-${name}`), "--log-file", path.join(tmp, `${name}.log`), ...extra],
  { stdio: ["ignore", "pipe", "pipe"] });
  children.push(c);
  let out = "";
  c.stdout.on("data", (d) => { out += d; });
  c.stderr.on("data", (d) => { out += d; });
  return until(`host ${name}`, async () => {
    if (c.exitCode !== null) throw new Error(`host ${name} exited: ${out}`);
    const m = /on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
    return m ? Number(m[1]) : undefined;
  });
}

function request(agent, port, cookie) {
  return new Promise((resolve, reject) => {
    const r = http.get({ host: "127.0.0.1", port, path: "/hit?s=bench", agent, headers: cookie ? { Cookie: cookie } : {} }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    r.on("error", reject);
  });
}

async function load(port, cookie) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const lat = [];
  let errors = 0;
  const end = performance.now() + DURATION_MS;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const r = await request(agent, port, cookie);
        if (r.status !== 200) errors++;
      } catch {
        errors++;
      }
      lat.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const secs = (performance.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
  return { requests: lat.length, errors, rps: lat.length / secs, p50: q(0.5), p99: q(0.99) };
}

const redisPort = await startRedis();
const secret = path.join(tmp, "secret");
writeFileSync(secret, "bench-secret-0123456789abcdef0123\n", { mode: 0o600 });
const shared = (name) => ["--affinity-redis", `redis://127.0.0.1:${redisPort}/0`, "--affinity-node-name", name,
  "--affinity-listen", "127.0.0.1:0", "--affinity-secret-file", secret];
const [h1, h2, h3] = await Promise.all([startHost("h1", shared("h1")), startHost("h2", shared("h2")), startHost("h3", [])]);

// Pin a session on h1 and check that h2 forwards it there.
const first = await until("h1 to serve", () => request(false, h1));
const cookie = String(first.headers["set-cookie"]?.[0] ?? "").split(";")[0];
const owner = JSON.parse(first.body).pid;
await until("h2 to forward the session to h1", async () => {
  const r = await request(false, h2, cookie);
  return JSON.parse(r.body).pid === owner ? true : undefined;
});
const plainFirst = await until("h3 to serve", () => request(false, h3));
const plainCookie = String(plainFirst.headers["set-cookie"]?.[0] ?? "").split(";")[0];

const results = {};
for (const [label, port, c] of [["local", h1, cookie], ["hop", h2, cookie], ["plain", h3, plainCookie], ["local", h1, cookie], ["hop", h2, cookie]]) {
  await load(port, c); // warm-up round for this target is the first pass; keep the best of two passes
  const r = await load(port, c);
  if (results[label] === undefined || r.rps > results[label].rps) results[label] = r;
}
const fmt = (r) => `${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50.toFixed(2).padStart(6)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms   errors ${r.errors}`;
console.log(`Shared affinity forwarding overhead: ${CONNECTIONS} keep-alive connections, ${DURATION_MS / 1000} s per run, ${os.cpus().length} CPUs, node ${process.version}`);
console.log(`  plain (no affinity)      ${fmt(results.plain)}`);
console.log(`  local (owner, no hop)    ${fmt(results.local)}`);
console.log(`  hop   (forwarded to owner) ${fmt(results.hop)}`);
console.log(`  hop cost: ${(100 * (1 - results.hop.rps / results.local.rps)).toFixed(0)}% fewer req/s, +${(results.hop.p99 - results.local.p99).toFixed(2)} ms p99`);
console.log(JSON.stringify({ connections: CONNECTIONS, durationS: DURATION_MS / 1000, ...results }));
cleanup();
process.exit(0);
