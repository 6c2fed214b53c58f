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
    },
  });
  t.deepEqual(s.cluster, {
    node: "a",
    storeAvailable: true,
    nodes: [{ name: "a", peer: "127.0.0.1:1", alive: true, self: true, sessions: 2, apps: ["x"], lastSeenAt: 5 }],
  });
});

test("validatePoolStatus() leaves cluster out when affinity is off", (t) => {
  t.is(validatePoolStatus(base).cluster, undefined);
});

test("validatePoolStatus() rejects a malformed cluster view", (t) => {
  t.throws(() => validatePoolStatus({ ...base, cluster: { node: "a", nodes: [{ name: 1 }] } }));
});
