import test from "ava";
import { validatePoolStatus } from "../../../core/src/control/client.js";

const base = { version: "0.1.0", maxPoolSize: 6, processCount: 0, groups: [] };

test("validatePoolStatus() keeps the affinity cluster view when the core sends one", (t) => {
  const s = validatePoolStatus({
    ...base,
    cluster: {
      node: "a",
      storeAvailable: true,
      nodes: [{ name: "a", peer: "127.0.0.1:1", tls: false, alive: true, self: true, sessions: 2, apps: ["x"], lastSeenAt: 5 }],
      keyMismatches: [{ site: "s/", keys: [{ node: "a", key: "x" }, { node: "b", key: "group:y" }] }],
    },
  });
  t.deepEqual(s.cluster, {
    node: "a",
    storeAvailable: true,
    nodes: [{ name: "a", peer: "127.0.0.1:1", alive: true, self: true, sessions: 2, apps: ["x"], lastSeenAt: 5 }],
    keyMismatches: [{ site: "s/", keys: [{ node: "a", key: "x" }, { node: "b", key: "group:y" }] }],
  });
});

test("validatePoolStatus() leaves cluster out when affinity is off", (t) => {
  t.is(validatePoolStatus(base).cluster, undefined);
});

test("validatePoolStatus() rejects a malformed cluster view", (t) => {
  t.throws(() => validatePoolStatus({ ...base, cluster: { node: "a", nodes: [{ name: 1 }] } }));
});

test("validatePoolStatus() keeps a process's event-loop report and leaves it out when absent", (t) => {
  const proc = { pid: 7, stickyId: "1", state: "ready", inFlight: 0, upgraded: 0, processed: 3, startedAt: 1, lastUsedAt: 2, cpuPercent: 0, rssBytes: 9 };
  const loop = { elu: 0.5, delayMeanMs: 1, delayP99Ms: 20, delayMaxMs: 30, intervalMs: 250, at: 1234 };
  const group = { name: "g", appRoot: "/a", appEnv: "production", queueLength: 0, spawning: 0, restarting: false, lastError: null };
  const s = validatePoolStatus({ ...base, groups: [{ ...group, processes: [{ ...proc, loop }, proc] }] });
  t.deepEqual(s.groups[0]?.processes[0]?.loop, loop);
  t.false("loop" in (s.groups[0]?.processes[1] ?? {}));
});
