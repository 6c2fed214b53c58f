import test from "ava";
import { passDecision, type PassFacts, type PassRefusal } from "../../../core/src/policy/pass.js";

/** Every fact as it must be for a pass. */
const OK: PassFacts = {
  asked: true, directPath: true, nodeLoader: true, upgrade: false, stickySessions: false, stickyAsked: false, maxRequests: 0, maxRequestTimeMs: 0,
  maxConcurrencyPerProcess: 0, sharedAffinity: false, friendlyErrorPages: false, queueLength: 0, restarting: false,
  alwaysRestart: false, restartFileKnown: true, leaseId: "n.2", ready: ["n.1", "n.2", "n.3"], maxProcs: 16,
};

/** Each rule, in the order the policy checks them: the facts that break it alone, and the refusal. */
const RULES: ReadonlyArray<{ readonly reason: PassRefusal; readonly bad: Partial<PassFacts> }> = [
  { reason: "not_asked", bad: { asked: false } },
  { reason: "relay_path", bad: { directPath: false } },
  { reason: "not_node_loader", bad: { nodeLoader: false } },
  { reason: "upgrade", bad: { upgrade: true } },
  { reason: "sticky_sessions", bad: { stickySessions: true } },
  { reason: "max_requests", bad: { maxRequests: 1 } },
  { reason: "max_request_time", bad: { maxRequestTimeMs: 1 } },
  { reason: "forced_concurrency", bad: { maxConcurrencyPerProcess: 1 } },
  { reason: "shared_affinity", bad: { sharedAffinity: true } },
  { reason: "friendly_error_pages", bad: { friendlyErrorPages: true } },
  { reason: "queued", bad: { queueLength: 1 } },
  { reason: "restarting", bad: { restarting: true } },
  { reason: "always_restart", bad: { alwaysRestart: true } },
  { reason: "restart_file_unknown", bad: { restartFileKnown: false } },
  { reason: "process_not_ready", bad: { ready: ["n.1", "n.3"] } },
];

test("passDecision() grants a pass when every rule holds, the lease's process first", (t) => {
  t.deepEqual(passDecision(OK), { grant: true, procs: ["n.2", "n.1", "n.3"] });
});

for (const { reason, bad } of RULES) {
  test(`passDecision() refuses with ${reason} when only that rule fails`, (t) => {
    t.deepEqual(passDecision({ ...OK, ...bad }), { grant: false, reason });
  });
}

test("passDecision() over every combination of failed rules: granted only when none failed, else the first one's reason", (t) => {
  const n = RULES.length;
  let checked = 0;
  for (let mask = 0; mask < 1 << n; mask++) {
    let facts: PassFacts = OK;
    let first: PassRefusal | undefined;
    for (let i = 0; i < n; i++) {
      const rule = RULES[i];
      if (rule === undefined || (mask & (1 << i)) === 0) continue;
      facts = { ...facts, ...rule.bad };
      first ??= rule.reason;
    }
    const d = passDecision(facts);
    if (first === undefined ? !d.grant : d.grant || d.reason !== first) {
      t.fail(`mask ${mask.toString(2)}: ${JSON.stringify(d)}`);
      return;
    }
    checked++;
  }
  t.is(checked, 1 << n);
});

test("passDecision() names at most maxProcs processes, always including the lease's", (t) => {
  const ready = Array.from({ length: 20 }, (_, i) => `n.${i}`);
  const d = passDecision({ ...OK, leaseId: "n.19", ready, maxProcs: 16 });
  if (!d.grant) return t.fail();
  t.is(d.procs.length, 16);
  t.is(d.procs[0], "n.19");
  t.deepEqual(d.procs.slice(1), ready.slice(0, 15));
});

test("passDecision() with sticky sessions grants a pass only to a module that routes by the cookie (pass_sticky)", (t) => {
  t.deepEqual(passDecision({ ...OK, stickySessions: true, stickyAsked: false }), { grant: false, reason: "sticky_sessions" });
  t.deepEqual(passDecision({ ...OK, stickySessions: true, stickyAsked: true }), { grant: true, procs: ["n.2", "n.1", "n.3"] });
  // Asking changes nothing for an app without sticky sessions, nor past the other rules.
  t.deepEqual(passDecision({ ...OK, stickyAsked: true }), { grant: true, procs: ["n.2", "n.1", "n.3"] });
  t.deepEqual(passDecision({ ...OK, stickySessions: true, stickyAsked: true, maxRequests: 5 }), { grant: false, reason: "max_requests" });
});

test("passDecision() with only the lease's process ready names just it", (t) => {
  t.deepEqual(passDecision({ ...OK, ready: ["n.2"] }), { grant: true, procs: ["n.2"] });
});

test("passDecision() with maxProcs 1 names only the lease's process; 0 grants nothing", (t) => {
  t.deepEqual(passDecision({ ...OK, maxProcs: 1 }), { grant: true, procs: ["n.2"] });
  t.deepEqual(passDecision({ ...OK, maxProcs: 0 }), { grant: false, reason: "process_not_ready" });
});

test("passDecision() counts larger limit values as set (max requests 1000, max request time 30 s, concurrency 4)", (t) => {
  t.deepEqual(passDecision({ ...OK, maxRequests: 1000 }), { grant: false, reason: "max_requests" });
  t.deepEqual(passDecision({ ...OK, maxRequestTimeMs: 30_000 }), { grant: false, reason: "max_request_time" });
  t.deepEqual(passDecision({ ...OK, maxConcurrencyPerProcess: 4 }), { grant: false, reason: "forced_concurrency" });
  t.deepEqual(passDecision({ ...OK, queueLength: 50 }), { grant: false, reason: "queued" });
});
