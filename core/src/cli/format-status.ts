/**
 * `ferry status` text output, laid out like passenger-status (reference §3.8).
 * Pure: a PoolStatus and the current time in, text out.
 */
import type { GroupStatus, PoolStatus, ProcessStatus } from "../control/status.js";

export interface InstanceLabel {
  readonly name: string;
  readonly mode: string;
  readonly pid: number | undefined;
}

/** 53s, 4m 2s, 3h 1m, 2d 4h. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** Resident memory as passenger-status shows it: 50M. */
export function formatMemory(bytes: number): string {
  return `${Math.round(bytes / (1024 * 1024))}M`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s + " " : s + " ".repeat(n - s.length);
}

function formatDate(now: number): string {
  return new Date(now).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function processLines(p: ProcessStatus, now: number): string[] {
  const lastUsed = p.lastUsedAt > 0 ? `${formatDuration(now - p.lastUsedAt)} ago` : "never";
  const lines = [
    `  * PID: ${pad(String(p.pid), 8)}Sessions: ${pad(String(p.inFlight), 8)}Processed: ${pad(String(p.processed), 8)}Uptime: ${formatDuration(now - p.startedAt)}`,
    `    CPU: ${pad(`${Math.round(p.cpuPercent)}%`, 8)}Memory  : ${pad(formatMemory(p.rssBytes), 8)}Last used: ${lastUsed}`,
  ];
  if (p.upgraded > 0) lines.push(`    WebSockets: ${p.upgraded}`);
  if (p.loop !== undefined) {
    lines.push(`    Event loop: ${Math.round(p.loop.elu * 100)}% busy, delay p99 ${Math.round(p.loop.delayP99Ms)} ms, last report ${formatDuration(Math.max(0, now - p.loop.at))} ago`);
  }
  if (p.health === "failing") lines.push(`    Health: FAILING (${p.healthFailures} failed check${p.healthFailures === 1 ? "" : "s"} in a row: ${p.lastHealthFailure})`);
  if (p.health === "unhealthy") lines.push("    Health: UNHEALTHY (out of rotation, being replaced)");
  if (p.state === "draining") lines.push(p.retireReason !== "" ? `    Shutting down: ${p.retireReason}` : "    Shutting down...");
  if (p.state === "spawning") lines.push("    Spawning...");
  return lines;
}

function groupLines(g: GroupStatus, now: number): string[] {
  const lines = [`${g.name}:`, `  App root: ${g.appRoot}`];
  if (g.restarting) lines.push("  (restarting...)");
  if (g.spawning > 0) lines.push(`  (spawning ${g.spawning} new process${g.spawning === 1 ? "" : "es"}...)`);
  lines.push(`  Requests in queue: ${g.queueLength}`);
  const unhealthy = Object.values(g.unhealthy).reduce((n, x) => n + x, 0);
  lines.push(`  Restart generation: ${g.restartGeneration}  Spawns: ${g.spawns}  Spawn failures: ${g.spawnFailures}  Crashes: ${g.crashes}  Unhealthy: ${unhealthy}  Queue overflows: ${g.queueOverflows}`);
  // The direct path (docs/protocol.md): LEASEs, those with a pass, and requests served without the core.
  if (g.leases > 0 || g.directRequests > 0) lines.push(`  Leases: ${g.leases}  Passes: ${g.passes}  Direct requests: ${g.directRequests}`);
  for (const p of g.processes) lines.push(...processLines(p, now));
  if (g.lastExit !== null) {
    const x = g.lastExit;
    const how = x.signal !== null ? `signal ${x.signal}` : `exit code ${String(x.code)}`;
    lines.push(`  Last exit (${formatDuration(now - x.at)} ago): pid ${x.pid}, ${how}, ${x.unexpected ? "CRASHED" : x.reason}`);
  }
  if (g.lastError !== null) {
    lines.push(`  Last error (${formatDuration(now - g.lastError.at)} ago): ${g.lastError.code}: ${g.lastError.message}`);
  }
  return lines;
}

export function formatStatus(s: PoolStatus, instance: InstanceLabel, now: number): string {
  const queued = s.groups.reduce((n, g) => n + g.queueLength, 0);
  const lines = [
    `Version : ${s.version}`,
    `Date    : ${formatDate(now)}`,
    `Instance: ${instance.name} (${instance.mode}${instance.pid !== undefined ? `, pid ${instance.pid}` : ""})`,
    "",
    "----------- General information -----------",
    `Max pool size : ${s.maxPoolSize}`,
    `App groups    : ${s.groups.length}`,
    `Processes     : ${s.processCount}`,
    `Requests in queue : ${queued}`,
    "",
    "----------- Application groups -----------",
  ];
  for (const g of s.groups) {
    lines.push(...groupLines(g, now), "");
  }
  if (s.cluster !== undefined) {
    const c = s.cluster;
    lines.push("----------- Affinity cluster -----------");
    lines.push(`This node : ${c.node}`);
    lines.push(`Redis     : ${c.storeAvailable ? "available" : "UNAVAILABLE (local affinity only)"}`);
    for (const n of c.nodes) {
      const state = n.alive ? "alive" : "gone";
      const seen = n.lastSeenAt > 0 ? `, last seen ${formatDuration(Math.max(0, now - n.lastSeenAt))} ago` : "";
      lines.push(`  * ${pad(n.name + (n.self ? " (this node)" : ""), 24)} ${pad(state, 6)} Sessions: ${pad(String(n.sessions), 7)} Peer: ${n.peer}${seen}`);
    }
    for (const m of c.keyMismatches ?? []) {
      lines.push(`  WARNING: site ${m.site} is served under different affinity keys, so its sessions do not follow across these hosts:`);
      for (const k of m.keys) lines.push(`    ${pad(k.node, 24)} ${k.key}`);
      lines.push("    (set the same PassengerAppGroupName, or none, and the same app environment on every host: docs/affinity.md)");
    }
    lines.push("");
  }
  return lines.join("\n").replace(/\n*$/, "\n");
}
