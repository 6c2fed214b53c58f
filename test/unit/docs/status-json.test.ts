/**
 * docs/status-json.md documents every field `ferry status --json` prints: the
 * field paths of a fully populated PoolStatus (as validatePoolStatus() reads
 * it back) are exactly the table's.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { validatePoolStatus } from "../../../core/src/control/client.js";
import type { PoolStatus } from "../../../core/src/control/status.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

const FULL: PoolStatus = {
  version: "0.1.0", maxPoolSize: 6, processCount: 1,
  groups: [{
    name: "blog", appRoot: "/srv/blog", appEnv: "production", queueLength: 0, spawning: 0, restarting: false,
    lastError: { at: 1, code: "FERRY_ERR_SPAWN", message: "m", output: "o" },
    restartGeneration: 1, spawns: 1, spawnFailures: 1, crashes: 1, crashReasons: {}, queueOverflows: 0, leases: 1, passes: 1, directRequests: 1, unhealthy: {},
    lastExit: { at: 1, pid: 2, code: 1, signal: null, unexpected: true, reason: "exit code 1" },
    processes: [{
      pid: 3, stickyId: "1", state: "ready", inFlight: 0, upgraded: 0, processed: 0, startedAt: 1, lastUsedAt: 1, cpuPercent: 0, rssBytes: 1,
      cpuSeconds: 0, generation: 1, retireReason: "", health: "ok", healthFailures: 0, lastHealthFailure: "",
      loop: { elu: 0, delayMeanMs: 0, delayP99Ms: 0, delayMaxMs: 0, intervalMs: 250, at: 1 },
    }],
  }],
  cluster: { node: "a", storeAvailable: true, nodes: [{ name: "a", peer: "p", alive: true, self: true, sessions: 0, apps: [], lastSeenAt: 1 }], keyMismatches: [{ site: "s/", keys: [{ node: "a", key: "site:s/ (production)" }] }] },
};

/** Field paths of a JSON value: objects' keys, arrays as `[]`. Maps of counts (crashReasons, unhealthy) are leaves. */
function paths(v: unknown, prefix: string, out: Set<string>): void {
  if (Array.isArray(v)) {
    for (const x of v) if (typeof x === "object" && x !== null) paths(x, `${prefix}[]`, out);
    return;
  }
  if (typeof v !== "object" || v === null) return;
  for (const [k, x] of Object.entries(v)) {
    const p = prefix === "" ? k : `${prefix}.${k}`;
    out.add(p);
    if (k !== "crashReasons" && k !== "unhealthy") paths(x, p, out);
  }
}

test("docs/status-json.md lists exactly the fields of ferry status --json", (t) => {
  const got = new Set<string>();
  paths(validatePoolStatus(JSON.parse(JSON.stringify(FULL))), "", got);
  const documented = new Set([...readFileSync(path.join(ROOT, "docs/status-json.md"), "utf8").matchAll(/^\| `([a-zA-Z0-9.[\]]+)` \|/gm)].map((m) => m[1] ?? ""));
  t.deepEqual([...got].filter((p) => !documented.has(p)).sort(), [], "printed but not documented");
  t.deepEqual([...documented].filter((p) => !got.has(p)).sort(), [], "documented but not printed");
});
