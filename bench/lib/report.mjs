// Turns a run's results into docs/performance.md and a hand-drawn SVG chart.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { basename, dirname, join, relative } from "node:path";

function tryRun(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10000 }).trim();
  } catch {
    return null;
  }
}

function pkgVersion(file) {
  try {
    return JSON.parse(readFileSync(file, "utf8")).version ?? null;
  } catch {
    return null;
  }
}

export async function collectMachine(repo) {
  const cpuinfo = existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "";
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? "unknown";
  const apache = tryRun("/usr/sbin/apache2", ["-v"])?.split("\n")[0]?.replace(/^Server version:\s*/, "") ?? null;
  const dpkg = (p) => tryRun("dpkg-query", ["-W", "-f=${Version}", p]) || null;
  const rev = tryRun("git", ["-C", repo, "rev-parse", "--short", "HEAD"]);
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu: model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    apache,
    passenger: dpkg("libapache2-mod-passenger"),
    pm2: pkgVersion(join(repo, "bench/.tools/node_modules/pm2/package.json")),
    ferry: `${pkgVersion(join(repo, "package.json")) ?? "?"}${rev ? ` (git ${rev})` : ""}`,
    wrk: tryRun("dpkg-query", ["-W", "-f=${Version}", "wrk"]) || null,
    date: new Date().toISOString().replace("T", " ").slice(0, 16) + " UTC",
  };
}

const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const max = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x));
  return v.length === 0 ? null : Math.max(...v);
};
const min = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x));
  return v.length === 0 ? null : Math.min(...v);
};

const PARTS = ["apache", "core", "app"];
function partMedians(list) {
  const out = {};
  for (const k of PARTS) out[k] = median(list.map((x) => x?.[k]).filter((v) => v !== undefined));
  return out;
}
function partMax(list) {
  const out = {};
  for (const k of PARTS) out[k] = max(list.map((x) => x?.[k]).filter((v) => v !== undefined));
  return out;
}

/** Per target and scenario: medians over rounds (max for RSS, sum for errors). */
export function aggregate(results, scenarios) {
  const agg = {};
  for (const [id, t] of Object.entries(results.targets)) {
    agg[id] = { label: t.label, unavailable: t.unavailable, startErrors: [], spread: [], spreadBad: 0, sc: {} };
    for (const r of t.rounds) {
      if (r.error !== undefined) agg[id].startErrors.push(r.error);
      if (r.pids !== undefined) agg[id].spread.push(r.pids.length);
      if (r.spreadOk === false) agg[id].spreadBad++;
    }
    for (const sc of scenarios) {
      const runs = t.rounds.map((r) => r.scenarios?.[sc.id]).filter((x) => x !== undefined);
      const ok = runs.filter((x) => x.failed === undefined);
      const failed = runs.filter((x) => x.failed !== undefined).map((x) => x.failed);
      if (ok.length === 0) {
        agg[id].sc[sc.id] = failed.length > 0 ? { failed: failed[0] } : null;
        continue;
      }
      const pick = (k) => ok.map((x) => x[k]);
      agg[id].sc[sc.id] = {
        n: ok.length,
        rps: median(pick("rps")),
        p50Ms: median(pick("p50Ms")),
        p99Ms: median(pick("p99Ms")),
        errors: pick("errors").reduce((a, b) => a + (b ?? 0), 0),
        peakRssMb: max(pick("peakRssMb")),
        cpuUsPerReq: median(pick("cpuUsPerReq")),
        tinyP50Ms: median(pick("tinyP50Ms")),
        tinyP99Ms: median(pick("tinyP99Ms")),
        held: min(pick("held")),
        cpuByPart: partMedians(ok.map((x) => x.cpuUsPerReqByPart)),
        rssByPart: partMax(ok.map((x) => x.peakRssMbByPart)),
        coldMs: median(pick("coldMs")),
        firstRequestMs: median(pick("firstRequestMs")),
        failedRounds: failed.length,
      };
    }
  }
  return agg;
}

function f(x, d = 0) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  return x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}
function ratio(x, base) {
  if (x === null || x === undefined || base === null || base === undefined || !(base > 0)) return "–";
  return `×${(x / base).toFixed(2)}`;
}

function statusRow(a, cols) {
  if (a.unavailable !== null) return ["unavailable", ...Array(cols - 1).fill("")];
  return null;
}

function scenarioTable(sc, agg, ids) {
  const P = agg.passenger?.sc?.[sc.id] ?? null;
  const lines = [];
  let head;
  if (sc.kind === "cold") head = ["target", "launch to first response ms", "vs P", "that request's own ms", "vs P"];
  else if (sc.kind === "ws")
    head = ["target", "echoes/s", "vs P", "p50 ms", "p99 ms", "errors", "held", "peak RSS MiB", "vs P", "CPU µs/echo", "vs P"];
  else if (sc.mode === "mixed")
    head = ["target", "req/s", "vs P", "p50 ms", "p99 ms", "tiny p50 ms", "tiny p99 ms", "vs P", "errors", "peak RSS MiB", "vs P", "CPU µs/req", "vs P"];
  else head = ["target", "req/s", "vs P", "p50 ms", "p99 ms", "vs P", "errors", "peak RSS MiB", "vs P", "CPU µs/req", "vs P"];
  lines.push(`| ${head.join(" | ")} |`, `| ${head.map((h, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`);
  for (const id of ids) {
    const a = agg[id];
    let cells = statusRow(a, head.length - 1);
    const m = a.sc[sc.id];
    if (cells === null && (m === null || m === undefined)) {
      cells = [a.startErrors.length > 0 ? "failed to start" : "not run", ...Array(head.length - 2).fill("")];
    } else if (cells === null && m.failed !== undefined) {
      cells = ["failed", ...Array(head.length - 2).fill("")];
    } else if (cells === null) {
      if (sc.kind === "cold")
        cells = [f(m.coldMs), ratio(m.coldMs, P?.coldMs), f(m.firstRequestMs), ratio(m.firstRequestMs, P?.firstRequestMs)];
      else if (sc.kind === "ws")
        cells = [f(m.rps), ratio(m.rps, P?.rps), f(m.p50Ms, 2), f(m.p99Ms, 2), f(m.errors), f(m.held),
          f(m.peakRssMb), ratio(m.peakRssMb, P?.peakRssMb), f(m.cpuUsPerReq), ratio(m.cpuUsPerReq, P?.cpuUsPerReq)];
      else if (sc.mode === "mixed")
        cells = [f(m.rps), ratio(m.rps, P?.rps), f(m.p50Ms, 2), f(m.p99Ms, 2), f(m.tinyP50Ms, 2), f(m.tinyP99Ms, 2),
          ratio(m.tinyP99Ms, P?.tinyP99Ms), f(m.errors), f(m.peakRssMb), ratio(m.peakRssMb, P?.peakRssMb),
          f(m.cpuUsPerReq), ratio(m.cpuUsPerReq, P?.cpuUsPerReq)];
      else
        cells = [f(m.rps), ratio(m.rps, P?.rps), f(m.p50Ms, 2), f(m.p99Ms, 2), ratio(m.p99Ms, P?.p99Ms), f(m.errors),
          f(m.peakRssMb), ratio(m.peakRssMb, P?.peakRssMb), f(m.cpuUsPerReq), ratio(m.cpuUsPerReq, P?.cpuUsPerReq)];
    }
    lines.push(`| ${[a.label, ...cells].join(" | ")} |`);
  }
  return lines.join("\n");
}

/** The open issues' goals (11: Apache data path, 12: ferry start, 15: nginx), checked against this run's figures. */
function goals(agg) {
  const F = agg.mod_ferry;
  const S = agg.ferry;
  const P = agg.passenger;
  const X = agg.mod_proxy;
  const M = agg.pm2;
  const NF = agg.nginx_ferry;
  const NP = agg.nginx_proxy;
  const g = (t, s) => (t && t.unavailable === null ? t.sc[s] ?? null : null);
  const rows = [];
  const add = (issue, goal, value, ok) =>
    rows.push(`| ${issue} | ${goal} | ${value} | ${ok === null ? "not measured" : ok ? "met" : "**not met**"} |`);
  const rr = (t, s, k, base) => {
    const x = g(t, s)?.[k];
    const b = g(base, s)?.[k];
    return typeof x === "number" && typeof b === "number" && b > 0 ? x / b : null;
  };
  const show = (x) => (x === null ? "–" : `×${x.toFixed(2)}`);
  const list = (pairs) => pairs.map(([s, x]) => `${s} ${show(x)}`).join(", ") || "–";
  const all = (pairs, ok) => (pairs.length === 0 ? null : pairs.every(([, x]) => ok(x)));
  const known = (pairs) => pairs.filter(([, x]) => x !== null);
  const HTTP = ["small", "get100k", "post64k", "slow", "mixed"];

  // Issue 11: Apache + Ferry (the direct data path).
  for (const [s, want] of [["small", 2], ["get100k", 2.5], ["post64k", 3]]) {
    const x = rr(F, s, "rps", P);
    add(11, `Apache + Ferry req/s ≥ ${want}× Passenger (${s})`, show(x), x === null ? null : x >= want);
  }
  const xs = rr(F, "small", "rps", X);
  add(11, "Apache + Ferry req/s ≥ 0.9× mod_proxy_balancer (small)", show(xs), xs === null ? null : xs >= 0.9);
  const p99P = known(HTTP.map((s) => [s, rr(F, s, "p99Ms", P)]));
  const p99X = known(HTTP.map((s) => [s, rr(F, s, "p99Ms", X)]));
  add(11, "Apache + Ferry p99 ≤ Passenger's in every scenario", list(p99P), all(p99P, (x) => x <= 1));
  add(11, "Apache + Ferry p99 ≤ mod_proxy_balancer's in every scenario", list(p99X), all(p99X, (x) => x <= 1));
  const core = g(F, "small")?.cpuByPart?.core ?? null;
  add(11, "core CPU ≤ 25 µs per small request", core === null ? "–" : `${f(core)} µs`, core === null ? null : core <= 25);
  // A scenario Passenger served none of is shown but not compared: its RSS
  // there is that of a server doing none of the work. That is ws: Apache +
  // Passenger has no WebSockets (every handshake fails; Passenger #1202).
  const servedNone = (s) => g(P, s)?.rps === 0;
  const rssAll = known(["small", "get100k", "post64k", "slow", "mixed", "ws"].map((s) => [s, rr(F, s, "peakRssMb", P)]));
  const rss = rssAll.filter(([s]) => !servedNone(s));
  const uncompared = rssAll.filter(([s]) => servedNone(s));
  add(11, "Apache + Ferry peak RSS ≤ Passenger's in every scenario",
    list(rss) + (uncompared.length === 0 ? "" : `; not compared: ${list(uncompared)} (Passenger served none of it)`),
    all(rss, (x) => x <= 1));
  const ws = g(F, "ws");
  add(11, "1,000 WebSockets through Apache + Ferry, no errors", ws === null ? "–" : `held ${f(ws.held)}, errors ${f(ws.errors)}`,
    ws === null ? null : ws.held === 1000 && ws.errors === 0);

  // Issue 12: ferry start (as users run it: the defaults) against PM2 cluster mode.
  for (const s of ["small", "get100k", "post64k"]) {
    const x = rr(S, s, "rps", M);
    const p = rr(S, s, "p99Ms", M);
    add(12, `ferry start req/s ≥ 0.7× PM2 cluster, p99 ≤ PM2's (${s})`, `${show(x)}, p99 ${show(p)}`,
      x === null || p === null ? null : x >= 0.7 && p <= 1);
  }
  const tx = rr(S, "mixed", "tinyP99Ms", M);
  add(12, "ferry start tiny-request p99 ≤ PM2's (mixed)", show(tx), tx === null ? null : tx <= 1);

  // Issue 15: nginx + Ferry against nginx proxy_pass to the same two processes.
  const nx = rr(NF, "small", "rps", NP);
  const np = rr(NF, "small", "p99Ms", NP);
  add(15, "nginx + Ferry req/s ≥ 0.9× nginx proxy_pass, p99 ≤ its (small)", `${show(nx)}, p99 ${show(np)}`,
    nx === null || np === null ? null : nx >= 0.9 && np <= 1);
  return ["| issue | goal | this run | verdict |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

/** One target against another, scenario by scenario (req/s and p99 ratios). */
function pairTable(agg, scenarios, id, baseId) {
  const a = agg[id];
  const b = agg[baseId];
  if (a === undefined || b === undefined || a.unavailable !== null || b.unavailable !== null) return null;
  const lines = [
    `| scenario | ${a.label} req/s | ${b.label} req/s | ratio | p99 ms | p99 ratio |`,
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const sc of scenarios.filter((x) => x.kind === "wrk")) {
    const m = a.sc[sc.id];
    const n = b.sc[sc.id];
    if (!m || !n) continue;
    const tiny = sc.mode === "mixed";
    const pa = tiny ? m.tinyP99Ms : m.p99Ms;
    const pb = tiny ? n.tinyP99Ms : n.p99Ms;
    lines.push(`| ${sc.label}${tiny ? " (p99 of the tiny requests)" : ""} | ${f(m.rps)} | ${f(n.rps)} | ${ratio(m.rps, n.rps)} | ` +
      `${f(pa, 2)} / ${f(pb, 2)} | ${ratio(pa, pb)} |`);
  }
  return lines.length > 2 ? lines.join("\n") : null;
}

const COLORS = { mod_ferry: "#1f77b4", passenger: "#d62728", mod_proxy: "#ff7f0e", nginx_ferry: "#17becf", nginx_proxy: "#bcbd22", ferry: "#2ca02c", pm2: "#9467bd", node: "#7f7f7f" };

function esc(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Grouped bars: per scenario, each target's req/s as a ratio to Passenger's. */
export function chartSvg(agg, scenarios, ids) {
  const groups = scenarios.filter((s) => s.kind !== "cold");
  const bars = ids.filter((id) => agg[id].unavailable === null);
  const val = (id, s) => {
    const x = agg[id]?.sc?.[s.id]?.rps;
    const b = agg.passenger?.sc?.[s.id]?.rps;
    return typeof x === "number" && typeof b === "number" && b > 0 ? x / b : null;
  };
  // Log2 scale around ×1: bars grow up from the Passenger line when faster,
  // down when slower, so ×0.5 and ×2 look equally far from it.
  let hi = 1;
  let lo = 1;
  for (const s of groups)
    for (const id of bars) {
      const v = val(id, s);
      if (v !== null && v > 0) {
        hi = Math.max(hi, v);
        lo = Math.min(lo, v);
      }
    }
  const topE = Math.max(1, Math.ceil(Math.log2(hi)));
  const botE = Math.min(-1, Math.floor(Math.log2(lo)));
  const W = Math.max(640, 90 + groups.length * (bars.length * 18 + 30));
  const H = 380;
  const L = 60, R = 20, T = 40, B = 90;
  const ph = H - T - B;
  const gw = (W - L - R) / Math.max(1, groups.length);
  const bw = Math.min(22, (gw - 16) / Math.max(1, bars.length));
  const y = (v) => T + ((topE - Math.log2(Math.max(v, 2 ** botE))) / (topE - botE)) * ph;
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  o.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">Throughput relative to Apache + Passenger (log scale; ×1 = Passenger; higher is better)</text>`);
  for (let e = botE; e <= topE; e++) {
    const v = 2 ** e;
    o.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    o.push(`<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">×${e >= 0 ? v : `1/${2 ** -e}`}</text>`);
  }
  o.push(`<line x1="${L}" x2="${W - R}" y1="${y(1)}" y2="${y(1)}" stroke="#d62728" stroke-dasharray="4 3"/>`);
  groups.forEach((s, gi) => {
    const x0 = L + gi * gw + (gw - bw * bars.length) / 2;
    bars.forEach((id, bi) => {
      const v = val(id, s);
      const x = x0 + bi * bw;
      if (v === null) {
        o.push(`<text x="${x + bw / 2}" y="${y(1) - 4}" text-anchor="middle" font-size="9" fill="#999">–</text>`);
        return;
      }
      const y1 = Math.min(y(v), y(1));
      const h = Math.max(1, Math.abs(y(v) - y(1)));
      o.push(`<rect x="${x.toFixed(1)}" y="${y1.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[id] ?? "#333"}"><title>${esc(agg[id].label)} ${esc(s.label)}: ×${v.toFixed(2)}</title></rect>`);
      const ly = v >= 1 ? y1 - 3 : y1 + h + 9;
      o.push(`<text x="${(x + bw / 2 - 1).toFixed(1)}" y="${ly.toFixed(1)}" text-anchor="middle" font-size="8">${v >= 10 ? v.toFixed(0) : v.toFixed(v < 0.1 ? 2 : 1)}</text>`);
    });
    o.push(`<text x="${L + gi * gw + gw / 2}" y="${H - B + 16}" text-anchor="middle">${esc(s.id)}</text>`);
    const base = agg.passenger?.sc?.[s.id];
    if (agg.passenger?.unavailable === null && (base === null || base === undefined || !(base.rps > 0)))
      o.push(`<text x="${L + gi * gw + gw / 2}" y="${y(1) - 36}" text-anchor="middle" font-size="10" fill="#d62728"><tspan x="${L + gi * gw + gw / 2}">Passenger</tspan><tspan x="${L + gi * gw + gw / 2}" dy="13">${base?.rps === 0 ? "served none" : "no figure"}</tspan></text>`);
  });
  o.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${T + ph}" stroke="#333"/>`);
  bars.forEach((id, i) => {
    const cx = L + (i % 3) * 210;
    const cy = H - B + 40 + Math.floor(i / 3) * 18;
    o.push(`<rect x="${cx}" y="${cy - 9}" width="12" height="12" fill="${COLORS[id] ?? "#333"}"/>`);
    o.push(`<text x="${cx + 18}" y="${cy + 1}">${esc(agg[id].label)}</text>`);
  });
  if (agg.passenger === undefined || agg.passenger.unavailable !== null)
    o.push(`<text x="${W / 2}" y="${T + ph / 2}" text-anchor="middle" font-size="14" fill="#999">no Passenger figures in this run</text>`);
  o.push("</svg>");
  return o.join("\n") + "\n";
}

export function writeReport(results, scenarios, targets, outFile, argv) {
  const agg = aggregate(results, scenarios);
  const ids = targets.map((t) => t.id);
  const m = results.machine;
  const svgFile = join(dirname(outFile), `${basename(outFile, ".md")}.svg`);
  writeFileSync(svgFile, chartSvg(agg, scenarios, ids));
  const cmd = `sh bench/run.sh${argv.length ? " " + argv.join(" ") : ""}`;
  const out = [];
  const sticky = argv.includes("--sticky");
  out.push(sticky ? "# Performance with sticky sessions" : "# Performance", "");
  out.push(`Generated by \`${cmd}\` (bench/README.md explains the harness and how to read every figure). ` +
    `Every figure is from one interleaved run: ${results.rounds} round(s) of ${results.duration} s per scenario ` +
    `(after ${results.warmup} s of unmeasured warm-up), the targets in turn (${ids.join(" → ")}), each round starting ` +
    "every server from nothing. Figures are medians over rounds; peak RSS is the maximum, errors the sum. " +
    "“vs P” is the ratio to Apache + Passenger in the same run.", "");
  if (sticky)
    out.push("Sticky sessions are on behind Ferry and Passenger (`--sticky`); wrk sends no cookie back, so every " +
      "request is a new client's: routed least busy and answered with a `Set-Cookie`. The other targets are unchanged.", "");
  if (results.rounds < 2 || results.duration < 10)
    out.push(`> **Smoke run** (${results.rounds} round × ${results.duration} s): it shows the harness works end to end; ` +
      "its figures are too short to quote. A full run is `sh bench/run.sh` (2 rounds × 10 s).", "");
  out.push("## Machine", "");
  out.push("| | |", "| --- | --- |");
  out.push(`| CPUs (nproc) | ${m.nproc} × ${m.cpu} |`, `| memory | ${m.memGiB} GiB |`, `| kernel | ${m.kernel} |`);
  out.push(`| Node.js | ${m.node} |`, `| Apache | ${m.apache ?? "–"} (event MPM) |`, `| Passenger | ${m.passenger ?? "not installed"} (Debian) |`);
  out.push(`| PM2 | ${m.pm2 ?? "not installed"} |`, `| Ferry | ${m.ferry} |`, `| wrk | ${m.wrk ?? "–"} |`, `| date | ${m.date} |`);
  if (Array.isArray(results.loadavg))
    out.push(`| load average (1 min) before / after the run | ${results.loadavg.map((x) => x.toFixed(2)).join(" / ")} (the load generator shares the ${m.nproc} CPUs) |`);
  out.push("");
  out.push("## Throughput relative to Passenger", "", `![req/s as a ratio to Apache + Passenger](${relative(dirname(outFile), svgFile)})`, "");
  out.push("## Goals", "", goals(agg), "");
  for (const [title, id, base] of [
    ["ferry start vs PM2 cluster (issue 12)", "ferry", "pm2"],
    ["nginx + Ferry vs nginx proxy_pass (issue 15)", "nginx_ferry", "nginx_proxy"],
  ]) {
    const t = pairTable(agg, scenarios, id, base);
    if (t !== null) out.push(`## ${title}`, "", t, "");
  }
  out.push("## Results per scenario", "");
  for (const sc of scenarios) {
    out.push(`### ${sc.label}`, "");
    if (sc.kind === "wrk") out.push(`wrk, 2 threads, ${sc.conns} keep-alive connections${sc.mode === "mixed" ? "; every 10th request is /cpu, “tiny” columns time only the other 90%" : ""}.`, "");
    if (sc.kind === "ws") out.push(`${sc.conns} connections opened (≤ 50 handshakes in flight), then each echoes 32 bytes in a loop; “held” = connections still open at the end (worst round).`, "");
    if (sc.kind === "cold")
      out.push("From launching the server side (Apache, `ferry start`, `pm2 start`, node) with no app process to the first 200 from the app " +
        "(polled every 10 ms); and the latency of that successful request alone (where the app is spawned on the first request, it includes the spawn).", "");
    out.push(scenarioTable(sc, agg, ids), "");
  }
  const split = scenarios.filter((sc) => sc.kind !== "cold");
  const splitTable = (key, unit, d) => {
    const t = [`| target | ${split.map((sc) => sc.id).join(" | ")} |`, `| --- | ${split.map(() => "---:").join(" | ")} |`];
    for (const id of ids) {
      const a = agg[id];
      if (a.unavailable !== null) continue;
      const cells = split.map((sc) => {
        const p = a.sc[sc.id]?.[key];
        if (p === undefined || p === null) return "–";
        if (key === "cpuByPart" && !(a.sc[sc.id].rps > 0)) return "–";
        return PARTS.map((k) => (p[k] === null || p[k] === undefined ? "·" : f(p[k], d))).join(" / ");
      });
      t.push(`| ${a.label} | ${cells.join(" | ")} |`);
    }
    return t.join("\n");
  };
  out.push("## Where the server side spends", "");
  out.push("Each cell is **front / core / app**: the web server's processes (Apache or nginx); the middle layer (Ferry's core or `ferry start`'s " +
    "process, Passenger's watchdog and core agent, PM2's daemon); the app processes. “·” = no such part.", "");
  out.push("CPU µs per request:", "", splitTable("cpuByPart", "µs", 0), "");
  out.push("Peak RSS MiB (at the sample where the whole side peaked):", "", splitTable("rssByPart", "MiB", 0), "");
  out.push("## Targets", "");
  out.push("| target | app pids seen before measuring (per round) | notes |", "| --- | --- | --- |");
  for (const id of ids) {
    const a = agg[id];
    const notes = [];
    if (a.unavailable !== null) notes.push(`unavailable: ${a.unavailable}`);
    if (a.startErrors.length > 0) notes.push(`failed to start in ${a.startErrors.length} round(s): ${a.startErrors[0].split("\n")[0]}`);
    if (a.spreadBad > 0) notes.push(`fewer app pids than expected in ${a.spreadBad} round(s): measured anyway`);
    const note = notes.join("; ");
    out.push(`| ${a.label} | ${a.spread.join(", ") || "–"} | ${esc(note).replace(/\|/g, "\\|")} |`);
  }
  out.push("");
  writeFileSync(outFile, out.join("\n"));
  return { md: outFile, svg: svgFile };
}
