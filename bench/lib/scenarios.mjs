// The scenarios and how one is run against a started target.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { TreeSampler, classifier, rememberPids, trackClient } from "./proc.mjs";

export const SCENARIOS = [
  { id: "small", label: "small GET", kind: "wrk", mode: "get", path: "/", conns: 64 },
  { id: "get100k", label: "100 KiB GET", kind: "wrk", mode: "get", path: "/100k", conns: 64 },
  { id: "post64k", label: "64 KiB POST echoed", kind: "wrk", mode: "post", path: "/echo", conns: 64 },
  { id: "slow", label: "slow (50 ms handler, 64 connections)", kind: "wrk", mode: "get", path: "/slow", conns: 64 },
  { id: "mixed", label: "mixed (10% burn 20 ms CPU, 90% tiny)", kind: "wrk", mode: "mixed", path: "/", conns: 32 },
  { id: "ws", label: "1,000 WebSockets echoing", kind: "ws", conns: 1000 },
  { id: "cold", label: "cold start (launch to first response)", kind: "cold" },
];

function execOut(cmd, args, env, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const line = stdout.split("\n").find((l) => l.startsWith("BENCHJSON "));
      if (line === undefined) {
        reject(new Error(`Cannot run ${cmd}: ${err?.message ?? "no result line"} ${stderr.slice(-500)}`));
        return;
      }
      resolve(JSON.parse(line.slice("BENCHJSON ".length)));
    });
    trackClient(child);
  });
}

function wrkRun(sc, port, seconds, here) {
  const env = { ...process.env, BENCH_MODE: sc.mode, BENCH_PATH: sc.path };
  const args = ["-t2", `-c${sc.conns}`, `-d${seconds}s`, "--timeout", "10s", "-s", join(here, "wrk.lua"),
    `http://127.0.0.1:${port}${sc.path}`];
  return execOut("wrk", args, env, (seconds + 60) * 1000);
}

function wsRun(sc, port, seconds, here, node) {
  const args = [join(here, "ws-load.mjs"), "--port", String(port), "--conns", String(sc.conns), "--duration", String(seconds)];
  return execOut(node, args, process.env, (seconds + 120) * 1000);
}

/**
 * Runs one scenario against a started target `inst`; returns the figures.
 * A short unmeasured warm-up precedes the measured wrk run.
 */
export async function runScenario(sc, inst, opts) {
  const here = opts.libDir;
  if (sc.kind === "wrk" && opts.warmup > 0) await wrkRun(sc, inst.port, opts.warmup, here);
  const sampler = new TreeSampler(inst.roots, 200, classifier(inst.appDir));
  sampler.start();
  let r;
  let side;
  try {
    r = sc.kind === "wrk" ? await wrkRun(sc, inst.port, opts.duration, here) : await wsRun(sc, inst.port, opts.duration, here, opts.node);
  } finally {
    side = sampler.stop();
    rememberPids(side.pids);
  }
  const errors = sc.kind === "wrk"
    ? r.err_connect + r.err_read + r.err_write + r.err_status + r.err_timeout
    : r.err_connect + r.err_status + r.err_during;
  const out = {
    requests: r.requests,
    rps: r.requests / (r.duration_us / 1e6),
    p50Ms: r.p50_us === null ? null : r.p50_us / 1000,
    p99Ms: r.p99_us === null ? null : r.p99_us / 1000,
    errors,
    peakRssMb: side.peakRssBytes / 1048576,
    cpuUsPerReq: r.requests > 0 ? side.cpuUs / r.requests : null,
    serverPids: side.pids.length,
    // µs of CPU per request and peak MiB, by part of the server side.
    cpuUsPerReqByPart: Object.fromEntries(Object.entries(side.cpuByPart).map(([k, v]) => [k, r.requests > 0 ? v / r.requests : null])),
    peakRssMbByPart: Object.fromEntries(Object.entries(side.peakRssByPart).map(([k, v]) => [k, v / 1048576])),
    raw: r,
  };
  if (sc.mode === "mixed") {
    out.tinyP50Ms = r.tiny_p50_us === null ? null : r.tiny_p50_us / 1000;
    out.tinyP99Ms = r.tiny_p99_us === null ? null : r.tiny_p99_us / 1000;
    out.cpuP99Ms = r.cpu_p99_us === null ? null : r.cpu_p99_us / 1000;
  }
  if (sc.kind === "ws") {
    out.opened = r.opened;
    out.held = r.held;
  }
  return out;
}
