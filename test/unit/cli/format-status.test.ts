import test from "ava";
import { formatDuration, formatMemory, formatStatus } from "../../../core/src/cli/format-status.js";
import type { PoolStatus } from "../../../core/src/control/status.js";

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);

test("formatDuration() uses the largest two units", (t) => {
  t.is(formatDuration(53_000), "53s");
  t.is(formatDuration(242_000), "4m 2s");
  t.is(formatDuration(3 * 3600_000 + 60_000), "3h 1m");
  t.is(formatDuration(2 * 86400_000 + 4 * 3600_000), "2d 4h");
  t.is(formatDuration(-5), "0s");
});

test("formatMemory() shows whole MB", (t) => {
  t.is(formatMemory(50 * 1024 * 1024), "50M");
});

test("formatStatus() lays out general information and each group like passenger-status", (t) => {
  const s: PoolStatus = {
    version: "0.1.0", maxPoolSize: 6, processCount: 2,
    groups: [{
      name: "/srv/app (production)", appRoot: "/srv/app", appEnv: "production", queueLength: 1, spawning: 1, restarting: true,
      lastError: { at: NOW - 5000, code: "FERRY_ERR_SPAWN", message: "Cannot spawn", output: "" },
      restartGeneration: 0, spawns: 0, spawnFailures: 0, crashes: 0, crashReasons: {}, queueOverflows: 0, leases: 0, passes: 0, directRequests: 0, unhealthy: {}, lastExit: null,
      processes: [
        { pid: 31622, stickyId: "1", state: "ready", inFlight: 0, upgraded: 2, processed: 12, startedAt: NOW - 53_000, lastUsedAt: NOW - 21_000, cpuPercent: 0.4, rssBytes: 50 * 1024 * 1024, cpuSeconds: 1.5, generation: 0, retireReason: "", health: "ok", healthFailures: 0, lastHealthFailure: "" },
        { pid: 31666, stickyId: "2", state: "draining", inFlight: 1, upgraded: 0, processed: 1, startedAt: NOW - 22_000, lastUsedAt: 0, cpuPercent: 12, rssBytes: 47 * 1024 * 1024, cpuSeconds: 0.2, generation: 0, retireReason: "idle for 300 s", health: "ok", healthFailures: 0, lastHealthFailure: "" },
      ],
    }],
  };
  const text = formatStatus(s, { name: "ferry-1", mode: "standalone", pid: 10 }, NOW);
  t.is(text, `Version : 0.1.0
Date    : 2026-11-29 12:00:00 UTC
Instance: ferry-1 (standalone, pid 10)

----------- General information -----------
Max pool size : 6
App groups    : 1
Processes     : 2
Requests in queue : 1

----------- Application groups -----------
/srv/app (production):
  App root: /srv/app
  (restarting...)
  (spawning 1 new process...)
  Requests in queue: 1
  Restart generation: 0  Spawns: 0  Spawn failures: 0  Crashes: 0  Unhealthy: 0  Queue overflows: 0
  * PID: 31622   Sessions: 0       Processed: 12      Uptime: 53s
    CPU: 0%      Memory  : 50M     Last used: 21s ago
    WebSockets: 2
  * PID: 31666   Sessions: 1       Processed: 1       Uptime: 22s
    CPU: 12%     Memory  : 47M     Last used: never
    Shutting down: idle for 300 s
  Last error (5s ago): FERRY_ERR_SPAWN: Cannot spawn
`);
});

test("formatStatus() shows the affinity cluster: nodes, which are alive, sessions each owns", (t) => {
  const s: PoolStatus = {
    version: "0.1.0", maxPoolSize: 6, processCount: 0, groups: [],
    cluster: {
      node: "web1", storeAvailable: false,
      nodes: [
        { name: "web1", peer: "127.0.0.1:7401", alive: true, self: true, sessions: 12, apps: ["/srv/app (production)"], lastSeenAt: NOW - 1000 },
        { name: "web2", peer: "127.0.0.1:7402", alive: false, self: false, sessions: 3, apps: [], lastSeenAt: NOW - 60_000 },
      ],
    },
  };
  const text = formatStatus(s, { name: "ferry-1", mode: "standalone", pid: undefined }, NOW);
  t.regex(text, /Affinity cluster/);
  t.regex(text, /This node : web1/);
  t.regex(text, /Redis\s+: UNAVAILABLE/);
  t.regex(text, /web1 \(this node\)\s+alive\s+Sessions: 12/);
  t.regex(text, /web2\s+gone\s+Sessions: 3\s+Peer: 127\.0\.0\.1:7402, last seen 1m 0s ago/);
});

test("formatStatus() warns when hosts serve one site under different affinity keys", (t) => {
  const s: PoolStatus = {
    version: "0.1.0", maxPoolSize: 6, processCount: 0, groups: [],
    cluster: {
      node: "web1", storeAvailable: true,
      nodes: [{ name: "web1", peer: "127.0.0.1:7401", alive: true, self: true, sessions: 1, apps: ["site:shop.example/ (production)"], lastSeenAt: NOW }],
      keyMismatches: [{ site: "shop.example/", keys: [{ node: "web1", key: "site:shop.example/ (production)" }, { node: "web2", key: "group:shop" }] }],
    },
  };
  const text = formatStatus(s, { name: "ferry-1", mode: "apache", pid: undefined }, NOW);
  t.regex(text, /WARNING: site shop\.example\/ is served under different affinity keys/);
  t.regex(text, /web2\s+group:shop/);
});

test("formatStatus() shows health, the event loop, totals and the last exit of a group", (t) => {
  const s: PoolStatus = {
    version: "0.1.0", maxPoolSize: 6, processCount: 1,
    groups: [{
      name: "blog", appRoot: "/srv/blog", appEnv: "production", queueLength: 0, spawning: 0, restarting: false, lastError: null,
      restartGeneration: 3, spawns: 7, spawnFailures: 1, crashes: 2, crashReasons: { "signal SIGKILL": 2 }, queueOverflows: 4, leases: 12, passes: 5, directRequests: 300,
      unhealthy: { event_loop: 1 },
      lastExit: { at: NOW - 60_000, pid: 40, code: null, signal: "SIGKILL", unexpected: false, reason: "unhealthy: its event loop is stuck" },
      processes: [{
        pid: 41, stickyId: "1", state: "ready", inFlight: 0, upgraded: 0, processed: 3, startedAt: NOW - 50_000, lastUsedAt: NOW - 1_000,
        cpuPercent: 1, rssBytes: 40 * 1024 * 1024, cpuSeconds: 1, generation: 3, retireReason: "",
        health: "failing", healthFailures: 2, lastHealthFailure: "GET /health answered 500",
        loop: { elu: 0.42, delayMeanMs: 1, delayP99Ms: 12.4, delayMaxMs: 20, intervalMs: 250, at: NOW - 200 },
      }],
    }],
  };
  const text = formatStatus(s, { name: "i", mode: "apache", pid: 1 }, NOW);
  t.regex(text, /^  Restart generation: 3  Spawns: 7  Spawn failures: 1  Crashes: 2  Unhealthy: 1  Queue overflows: 4$/m);
  t.regex(text, /^  Leases: 12  Passes: 5  Direct requests: 300$/m);
  t.regex(text, /^    Event loop: 42% busy, delay p99 12 ms, last report 0s ago$/m);
  t.regex(text, /^    Health: FAILING \(2 failed checks in a row: GET \/health answered 500\)$/m);
  t.regex(text, /^  Last exit \(1m 0s ago\): pid 40, signal SIGKILL, unhealthy: its event loop is stuck$/m);
});
