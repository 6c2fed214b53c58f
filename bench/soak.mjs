#!/usr/bin/env node
// Soak (issue 13): mixed load through a private Apache + Ferry for a while
// (default 30 min): small GETs, 1 MB downloads, 256 KB uploads, WebSockets
// echoing, a restart.txt every 2 minutes and an `apachectl graceful` every 5.
// Every 10 s it samples the core's RSS and open fds and counts the requests
// that succeeded and failed in that interval; at the end it prints a Markdown
// table (and writes it with the raw samples to bench/results/soak-<time>.md/.json).
//
//   npm run build && node bench/soak.mjs [--minutes 30] [--sample 10]
//
// Uses the test harness's Apache helper (build/test/helpers/apache.js), so it
// needs what the tests need (scripts/install-deps.sh) and a built tree.
import { mkdir, utimes, writeFile } from "node:fs/promises";
import { readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..");
const { ApacheServer, makeTempRoot, prepareApp, stopAndRemove } = await import(path.join(repo, "build/test/helpers/apache.js"));
const { default: WebSocket } = await import("ws");

const { values } = parseArgs({ options: { minutes: { type: "string", default: "30" }, sample: { type: "string", default: "10" } } });
const durationMs = Number(values.minutes) * 60_000;
const sampleMs = Number(values.sample) * 1000;

const root = await makeTempRoot("soak");
const app = await prepareApp(root, "e2e-app", "soak");
const server = await ApacheServer.start({
  root,
  vhosts: [{ serverName: "soak.test", documentRoot: path.join(app, "public"), directives: ["PassengerMinInstances 2", "PassengerMaxPoolSize 6"] }],
});
const port = server.port;

const counts = { ok: 0, failed: 0, wsMessages: 0, wsClosedByRestart: 0, wsFailed: 0 };
const failures = [];
let running = true;

function get(pathname, { method = "GET", body } = {}) {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, path: pathname, method, headers: { Host: "soak.test", ...(body ? { "Content-Length": body.length } : {}) }, agent: false, signal: AbortSignal.timeout(30_000) });
    req.on("error", (e) => resolve({ status: 0, error: e.message, bytes: 0 }));
    req.on("response", (res) => {
      let bytes = 0;
      res.on("data", (c) => (bytes += c.length));
      res.on("error", (e) => resolve({ status: 0, error: e.message, bytes }));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
    });
    req.end(body);
  });
}

function record(kind, r, expectBytes) {
  if (r.status === 200 && (expectBytes === undefined || r.bytes === expectBytes)) counts.ok++;
  else {
    counts.failed++;
    failures.push({ at: new Date().toISOString(), kind, status: r.status, error: r.error, bytes: r.bytes });
  }
}

async function smallWorker() {
  while (running) record("small", await get("/pid"));
}
async function downloadWorker() {
  while (running) record("download", await get("/download?bytes=1048576"), 1048576);
}
async function uploadWorker() {
  const body = Buffer.alloc(256 * 1024, 7);
  while (running) record("upload", await get("/upload", { method: "POST", body }));
}
async function wsWorker() {
  while (running) {
    await new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { Host: "soak.test" }, handshakeTimeout: 20_000 });
      let timer;
      let opened = false;
      ws.on("open", () => {
        opened = true;
        timer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send("ping"), 200);
      });
      ws.on("message", () => counts.wsMessages++);
      ws.on("error", (e) => {
        if (!opened) {
          counts.wsFailed++;
          failures.push({ at: new Date().toISOString(), kind: "ws-open", error: e.message });
        }
      });
      ws.on("close", () => {
        clearInterval(timer);
        if (opened && running) counts.wsClosedByRestart++; // a restart or graceful retires its process
        setTimeout(resolve, 100);
      });
      const stop = setInterval(() => {
        if (!running) {
          clearInterval(stop);
          ws.close();
        }
      }, 500);
    });
  }
}

function coreSample() {
  const pid = server.corePid();
  if (pid === undefined) return { pid: 0, rssKb: 0, fds: 0 };
  try {
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { pid, rssKb: rss, fds };
  } catch {
    return { pid, rssKb: 0, fds: 0 };
  }
}

const started = Date.now();
const samples = [];
let last = { ok: 0, failed: 0 };
const events = [];
const workers = [
  ...Array.from({ length: 4 }, smallWorker), downloadWorker, uploadWorker, ...Array.from({ length: 4 }, wsWorker),
];
const restartTxt = path.join(app, "tmp", "restart.txt");
await writeFile(restartTxt, "");
const restartTimer = setInterval(async () => {
  const now = new Date();
  await utimes(restartTxt, now, now);
  events.push({ at: Date.now() - started, what: "restart.txt" });
}, 120_000);
const gracefulTimer = setInterval(async () => {
  events.push({ at: Date.now() - started, what: "graceful" });
  await server.graceful().catch((e) => events.push({ at: Date.now() - started, what: `graceful failed: ${e.message}` }));
}, 300_000);
const sampleTimer = setInterval(() => {
  const s = coreSample();
  const row = { t: Math.round((Date.now() - started) / 1000), ...s, ok: counts.ok - last.ok, failed: counts.failed - last.failed, wsMessages: counts.wsMessages };
  last = { ok: counts.ok, failed: counts.failed };
  samples.push(row);
  process.stdout.write(`${JSON.stringify(row)}\n`);
}, sampleMs);

await new Promise((r) => setTimeout(r, durationMs));
running = false;
clearInterval(restartTimer);
clearInterval(gracefulTimer);
clearInterval(sampleTimer);
await Promise.race([Promise.all(workers), new Promise((r) => setTimeout(r, 40_000))]);
await stopAndRemove(server, root);

// Report: warm-up = the first 2 minutes; growth = last sample vs the first after warm-up.
const warm = samples.find((s) => s.t >= 120) ?? samples[0];
const end = samples.at(-1);
const pct = (a, b) => (a === 0 ? 0 : Math.round(((b - a) / a) * 1000) / 10);
const lines = [];
lines.push(`Soak: ${values.minutes} min, ${new Date(started).toISOString()}; samples every ${values.sample} s.`);
lines.push("");
lines.push(`- requests: ${counts.ok} succeeded, ${counts.failed} failed; WebSocket messages echoed: ${counts.wsMessages}; WebSockets closed by a restart/graceful (reconnected): ${counts.wsClosedByRestart}; WebSocket opens failed: ${counts.wsFailed}`);
lines.push(`- events: ${events.filter((e) => e.what === "restart.txt").length} restart.txt, ${events.filter((e) => e.what === "graceful").length} graceful${events.some((e) => e.what.startsWith("graceful failed")) ? " (some failed: see JSON)" : ""}`);
lines.push(`- core RSS after warm-up ${warm.rssKb} kB → end ${end.rssKb} kB (${pct(warm.rssKb, end.rssKb)} %); open fds ${warm.fds} → ${end.fds} (${pct(warm.fds, end.fds)} %); core pid changed: ${new Set(samples.map((s) => s.pid)).size > 1 ? "yes" : "no"}`);
lines.push("");
lines.push("| t (s) | core RSS (kB) | core fds | requests ok | failed |");
lines.push("| ---: | ---: | ---: | ---: | ---: |");
const every = Math.max(1, Math.round(samples.length / 30));
for (const [i, s] of samples.entries()) if (i % every === 0 || i === samples.length - 1) lines.push(`| ${s.t} | ${s.rssKb} | ${s.fds} | ${s.ok} | ${s.failed} |`);
if (failures.length > 0) {
  lines.push("");
  lines.push("Failures (first 20):");
  for (const f of failures.slice(0, 20)) lines.push(`- ${JSON.stringify(f)}`);
}
const report = lines.join("\n") + "\n";
const outDir = path.join(here, "results");
await mkdir(outDir, { recursive: true });
const stamp = new Date(started).toISOString().replace(/[:.]/g, "-");
await writeFile(path.join(outDir, `soak-${stamp}.md`), report);
await writeFile(path.join(outDir, `soak-${stamp}.json`), JSON.stringify({ counts, events, samples, failures }, null, 2));
process.stdout.write(report);
