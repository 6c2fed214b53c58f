// Process bookkeeping for the harness: children we start (always stopped at
// the end), and /proc sampling of a server side's process tree (peak RSS,
// CPU time).
import { spawn } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";

const PAGE = 4096;
const TICK_US = 10000; // CLK_TCK is 100 on Linux

/** @returns {{pid:number, ppid:number, cpuTicks:number, rssBytes:number, state:string}|null} */
export function readStat(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null;
  }
  const close = text.lastIndexOf(")");
  const f = text.slice(close + 2).split(" ");
  // f[0] is field 3 (state); utime is field 14, stime 15, rss 24.
  return {
    pid,
    state: f[0],
    ppid: Number(f[1]),
    cpuTicks: Number(f[11]) + Number(f[12]),
    rssBytes: Number(f[21]) * PAGE,
  };
}

export function alive(pid) {
  const s = readStat(pid);
  return s !== null && s.state !== "Z" && s.state !== "X";
}

function allStats() {
  const out = new Map();
  for (const name of readdirSync("/proc")) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const s = readStat(Number(name));
    if (s !== null) out.set(s.pid, s);
  }
  return out;
}

/** Every live process in the trees rooted at `roots` (roots included). */
export function treeStats(roots) {
  const stats = allStats();
  const kids = new Map();
  for (const s of stats.values()) {
    if (!kids.has(s.ppid)) kids.set(s.ppid, []);
    kids.get(s.ppid).push(s.pid);
  }
  const seen = new Map();
  const stack = roots.filter((p) => stats.has(p));
  while (stack.length > 0) {
    const pid = stack.pop();
    if (seen.has(pid)) continue;
    const s = stats.get(pid);
    if (s.state === "Z") continue;
    seen.set(pid, s);
    for (const k of kids.get(pid) ?? []) stack.push(k);
  }
  return seen;
}

/**
 * Which part of a server side a process is: "app" (its command line names the
 * app dir), "apache" (the front: an apache2 or nginx process), or "core" (the rest: Ferry's core
 * or `ferry start`'s process, Passenger's watchdog and core, PM2's daemon).
 */
export function classifier(appDir) {
  return (pid) => {
    const c = cmdline(pid) ?? "";
    // `ferry start APP_DIR` names the app dir too, but is the front + core.
    if (c.includes("bin/ferry.js")) return "core";
    if (appDir !== undefined && c.includes(appDir)) return "app";
    let comm = "";
    try {
      comm = readFileSync(`/proc/${pid}/comm`, "latin1").trim();
    } catch {}
    // The front web server (Apache or nginx; the part keeps the key "apache").
    if (comm === "apache2" || comm === "httpd" || comm === "nginx") return "apache";
    return "core";
  };
}

/**
 * Samples a server side while a scenario runs: peak summed RSS, and CPU time
 * used by every process seen (a process that appears mid-run counts from 0),
 * both also split by part (see classifier()).
 * `rootsFn` is asked each time, so processes started by a target (apps) join.
 */
export class TreeSampler {
  constructor(rootsFn, everyMs = 200, classify = () => "core") {
    this.rootsFn = rootsFn;
    this.everyMs = everyMs;
    this.classify = classify;
    this.kind = new Map();
    this.first = new Map();
    this.last = new Map();
    this.peakRss = 0;
    this.peakRssByPart = {};
    this.pids = new Set();
    this.timer = null;
  }
  sample(initial = false) {
    const tree = treeStats(this.rootsFn());
    let rss = 0;
    const byPart = {};
    for (const s of tree.values()) {
      rss += s.rssBytes;
      this.pids.add(s.pid);
      if (!this.kind.has(s.pid)) this.kind.set(s.pid, this.classify(s.pid));
      const k = this.kind.get(s.pid);
      byPart[k] = (byPart[k] ?? 0) + s.rssBytes;
      if (!this.first.has(s.pid)) this.first.set(s.pid, initial ? s.cpuTicks : 0);
      this.last.set(s.pid, s.cpuTicks);
    }
    if (rss > this.peakRss) {
      this.peakRss = rss;
      this.peakRssByPart = byPart;
    }
  }
  start() {
    this.sample(true);
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
  }
  stop() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.sample();
    let ticks = 0;
    const cpuByPart = {};
    for (const [pid, last] of this.last) {
      const d = last - (this.first.get(pid) ?? 0);
      ticks += d;
      const k = this.kind.get(pid) ?? "core";
      cpuByPart[k] = (cpuByPart[k] ?? 0) + d * TICK_US;
    }
    return { cpuUs: ticks * TICK_US, cpuByPart, peakRssBytes: this.peakRss, peakRssByPart: this.peakRssByPart, pids: [...this.pids] };
  }
}

/** Children the harness started; cleanupAll() stops every one of them. */
const children = new Set();
const extraPids = new Set();

export function startChild(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], detached: true, ...opts });
  children.add(child);
  child.output = "";
  const keep = (d) => {
    child.output += d.toString();
    if (child.output.length > 20000) child.output = child.output.slice(-10000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  child.exited = new Promise((resolve) => child.on("exit", (code, sig) => resolve({ code, sig })));
  child.on("error", (e) => {
    child.output += `\n${e.message}`;
  });
  return child;
}

/** Load clients (wrk, ws-load) in flight: killed by cleanupAll(). */
const clients = new Set();
export function trackClient(child) {
  clients.add(child);
  child.on("exit", () => clients.delete(child));
  return child;
}

/** Remember pids seen in a target's tree so the last sweep can stop strays. */
export function rememberPids(pids) {
  for (const p of pids) if (p !== process.pid) extraPids.add(p);
}

function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "latin1");
  } catch {
    return null;
  }
}

export async function waitGone(pids, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (pids.every((p) => !alive(p))) return true;
    await sleep(50);
  }
  return pids.every((p) => !alive(p));
}

export async function stopChild(child, ms = 10000) {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    children.delete(child);
    return;
  }
  const tree = [...treeStats([child.pid]).keys()];
  try {
    process.kill(child.pid, "SIGTERM");
  } catch {}
  const ok = await Promise.race([child.exited.then(() => true), sleep(ms).then(() => false)]);
  if (!ok) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {}
  }
  await waitGone(tree, 5000);
  for (const p of tree) if (alive(p)) killQuiet(p, "SIGKILL");
  children.delete(child);
}

function killQuiet(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {}
}

/**
 * Stop everything we started: children (SIGTERM, then SIGKILL to their
 * process group), then any remembered pid, or any process at all, whose
 * command line mentions `marker` (our unique run directory), so a recycled
 * pid belonging to someone else is never touched.
 */
export async function cleanupAll(marker) {
  for (const c of clients) killQuiet(c.pid, "SIGKILL");
  await Promise.all([...children].map((c) => stopChild(c, 5000)));
  if (marker !== undefined) for (const p of pidsMatching(marker)) extraPids.add(p);
  const strays = [...extraPids].filter((p) => {
    const c = cmdline(p);
    return c !== null && alive(p) && marker !== undefined && c.includes(marker);
  });
  for (const p of strays) killQuiet(p, "SIGTERM");
  await waitGone(strays, 3000);
  for (const p of strays) if (alive(p)) killQuiet(p, "SIGKILL");
}

export function exePath(pid) {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Pids of live processes whose command line contains `needle`. */
export function pidsMatching(needle) {
  const out = [];
  for (const name of readdirSync("/proc")) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const c = cmdline(pid);
    if (c !== null && c.includes(needle) && alive(pid)) out.push(pid);
  }
  return out;
}
