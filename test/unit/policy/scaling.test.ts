import test from "ava";
import {
  crashRespawnDelayMs,
  effectiveMaxInstances,
  idleProcessesToRetire,
  shouldSpawn,
  spawnBackoffMs,
  SUSTAINED_BUSY_MS,
  ELU_SATURATED,
  LOOP_STALE_MS,
  type ScalingProcess,
  type ScalingSnapshot,
  type SpawnDecision,
} from "../../../core/src/policy/scaling.js";

const NOW = 100_000;

function proc(id: number, over: Partial<ScalingProcess> = {}): ScalingProcess {
  return { id, inFlight: 0, upgraded: 0, busySince: null, lastUsedAt: NOW - 1000, stale: false, reportsLoop: false, ...over };
}
/** A Node process (sends loop reports) with n requests in flight and its last report. */
const node = (id: number, n: number, loop?: { elu: number; peakInFlight: number; at?: number }, over: Partial<ScalingProcess> = {}): ScalingProcess =>
  proc(id, {
    inFlight: n,
    busySince: n > 0 ? NOW - 5000 : null,
    reportsLoop: true,
    ...(loop === undefined ? {} : { loop: { elu: loop.elu, peakInFlight: loop.peakInFlight, at: loop.at ?? NOW - 100 } }),
    ...over,
  });
/** A saturated Node process: loop 95 % busy with 3 requests at once in the last interval. */
const hot = (id: number, n = 3): ScalingProcess => node(id, n, { elu: 0.95, peakInFlight: 3 });
/** A process busy with n requests since `since`. */
const busy = (id: number, n: number, since: number, over: Partial<ScalingProcess> = {}): ScalingProcess =>
  proc(id, { inFlight: n, busySince: since, ...over });

function snap(over: Partial<ScalingSnapshot>): ScalingSnapshot {
  return {
    processes: [],
    spawning: 0,
    queueLength: 0,
    restarting: false,
    minInstances: 1,
    maxInstances: 0,
    maxConcurrency: 0,
    poolRoom: 5,
    notBefore: 0,
    ...over,
  };
}

const spawn = (reason: string, needsRoom = false): SpawnDecision => ({ kind: "spawn", reason, needsRoom }) as SpawnDecision;
const hold = (reason: string, recheckAt?: number): SpawnDecision =>
  (recheckAt === undefined ? { kind: "hold", reason } : { kind: "hold", reason, recheckAt }) as SpawnDecision;

const cases: ReadonlyArray<{ title: string; s: ScalingSnapshot; want: SpawnDecision }> = [
  // minimum
  { title: "below minInstances → spawn min", s: snap({ minInstances: 2, processes: [proc(1)] }), want: spawn("min") },
  { title: "below min with a spawn running → another (parallel up to min)", s: snap({ minInstances: 3, processes: [proc(1)], spawning: 1 }), want: spawn("min") },
  { title: "at min with a spawn running → hold spawning", s: snap({ minInstances: 2, processes: [proc(1)], spawning: 1 }), want: hold("spawning") },
  { title: "below min, pool full → spawn min needing room", s: snap({ minInstances: 1, poolRoom: 0 }), want: spawn("min", true) },
  { title: "first request of a new app (min 1) → demand", s: snap({ minInstances: 1, queueLength: 1 }), want: spawn("demand") },
  { title: "first request of a new app, pool full → demand needing room", s: snap({ minInstances: 1, queueLength: 1, poolRoom: -1 }), want: spawn("demand", true) },
  { title: "min 0, no process, a waiter → demand", s: snap({ minInstances: 0, queueLength: 1 }), want: spawn("demand") },
  { title: "min 0, no process, no waiter → hold", s: snap({ minInstances: 0 }), want: hold("not_needed") },
  { title: "min above the per-app cap is capped", s: snap({ minInstances: 3, maxInstances: 2, processes: [proc(1), proc(2)] }), want: hold("not_needed") },
  // backoff
  { title: "backoff holds even below min", s: snap({ minInstances: 1, notBefore: NOW + 500 }), want: hold("backoff", NOW + 500) },
  { title: "expired backoff allows the spawn", s: snap({ minInstances: 1, notBefore: NOW }), want: spawn("min") },
  // per-process limit
  {
    title: "limit: all processes at the limit → busy",
    s: snap({ maxConcurrency: 2, processes: [busy(1, 2, NOW), busy(2, 2, NOW)] }),
    want: spawn("busy"),
  },
  {
    title: "limit: one below the limit → hold",
    s: snap({ maxConcurrency: 2, processes: [busy(1, 2, NOW), busy(2, 1, NOW)] }),
    want: hold("not_needed"),
  },
  { title: "limit: queue non-empty → busy", s: snap({ maxConcurrency: 2, processes: [busy(1, 1, NOW)], queueLength: 1 }), want: spawn("busy") },
  {
    title: "limit: busy but at the per-app cap → app_limit",
    s: snap({ maxConcurrency: 1, maxInstances: 2, processes: [busy(1, 1, NOW), busy(2, 1, NOW)] }),
    want: hold("app_limit"),
  },
  {
    title: "limit: busy, pool full → spawn needing room",
    s: snap({ maxConcurrency: 1, poolRoom: 0, processes: [busy(1, 1, NOW)] }),
    want: spawn("busy", true),
  },
  { title: "limit: busy but a spawn runs → hold (serial)", s: snap({ maxConcurrency: 1, spawning: 1, processes: [busy(1, 1, NOW)] }), want: hold("spawning") },
  // default load policy (no limit)
  {
    title: "generic, no limit: sustained busy with more requests than processes → load",
    s: snap({ processes: [busy(1, 3, NOW - SUSTAINED_BUSY_MS)] }),
    want: spawn("load"),
  },
  {
    title: "generic, no limit: busy but not long enough → hold not_yet with recheck time",
    s: snap({ processes: [busy(1, 3, NOW - 100)] }),
    want: hold("not_yet", NOW - 100 + SUSTAINED_BUSY_MS),
  },
  {
    title: "generic, no limit: recheck follows the most recently busy process",
    s: snap({ processes: [busy(1, 3, NOW - 5000), busy(2, 1, NOW - 200)] }),
    want: hold("not_yet", NOW - 200 + SUSTAINED_BUSY_MS),
  },
  {
    title: "generic, no limit: one idle process → hold",
    s: snap({ processes: [busy(1, 5, NOW - 5000), proc(2)] }),
    want: hold("not_needed"),
  },
  {
    title: "generic, no limit: one request per process (no excess) → hold",
    s: snap({ processes: [busy(1, 1, NOW - 5000), busy(2, 1, NOW - 5000)] }),
    want: hold("not_needed"),
  },
  {
    title: "generic, no limit: sustained window is configurable",
    s: snap({ sustainedBusyMs: 50, processes: [busy(1, 2, NOW - 60)] }),
    want: spawn("load"),
  },
  {
    title: "generic, no limit: sustained load at the per-app cap → app_limit",
    s: snap({ maxInstances: 1, processes: [busy(1, 4, NOW - 5000)] }),
    want: hold("app_limit"),
  },
  {
    title: "generic, no limit: sustained load, spawn already running → hold spawning",
    s: snap({ spawning: 1, processes: [busy(1, 4, NOW - 5000)] }),
    want: hold("spawning"),
  },
  {
    title: "generic, no limit: sustained load, pool full → load needing room",
    s: snap({ poolRoom: 0, processes: [busy(1, 4, NOW - 5000)] }),
    want: spawn("load", true),
  },
  {
    title: "generic, no limit: upgraded connections alone do not count as busy",
    s: snap({ processes: [proc(1, { upgraded: 20 })] }),
    want: hold("not_needed"),
  },
  // saturation policy (Node apps: event-loop reports, no limit)
  { title: "node: every process saturated → saturated", s: snap({ processes: [hot(1), hot(2)] }), want: spawn("saturated") },
  { title: "node: exactly ELU_SATURATED counts", s: snap({ processes: [node(1, 2, { elu: ELU_SATURATED, peakInFlight: 2 })] }), want: spawn("saturated") },
  { title: "node: a saturated interval counts after the burst ended (nothing in flight now)", s: snap({ processes: [node(1, 0, { elu: 0.99, peakInFlight: 8 })] }), want: spawn("saturated") },
  { title: "node: busy loop but one request at a time (no waiting work) → hold", s: snap({ processes: [node(1, 1, { elu: 0.99, peakInFlight: 1 })] }), want: hold("not_needed") },
  {
    title: "node: 24 requests waiting on I/O, loop 5 % busy → hold (recheck in case its reports stop)",
    s: snap({ processes: [node(1, 24, { elu: 0.05, peakInFlight: 24 })] }),
    want: hold("not_yet", NOW - 100 + LOOP_STALE_MS),
  },
  { title: "node: only one of two processes saturated → hold", s: snap({ processes: [hot(1), node(2, 1, { elu: 0.4, peakInFlight: 1 })] }), want: hold("not_needed") },
  { title: "node: a process with no report yet is not saturated", s: snap({ processes: [hot(1), node(2, 0)] }), want: hold("not_needed") },
  { title: "node: ELU threshold is configurable", s: snap({ eluSaturated: 0.97, processes: [hot(1, 1)] }), want: hold("not_needed") },
  {
    title: "node: reports stopped for LOOP_STALE_MS with 2 requests in flight (blocked loop) → saturated",
    s: snap({ processes: [node(1, 2, { elu: 0.3, peakInFlight: 1, at: NOW - LOOP_STALE_MS })] }),
    want: spawn("saturated"),
  },
  {
    title: "node: reports stopped with one request in flight → hold",
    s: snap({ processes: [node(1, 1, { elu: 0.3, peakInFlight: 1, at: NOW - 5000 })] }),
    want: hold("not_needed"),
  },
  {
    title: "node: 2 requests in flight, last report fresh → recheck when it would go stale",
    s: snap({ processes: [node(1, 2, { elu: 0.3, peakInFlight: 2, at: NOW - 300 })] }),
    want: hold("not_yet", NOW - 300 + LOOP_STALE_MS),
  },
  { title: "node: saturated at the per-app cap → app_limit", s: snap({ maxInstances: 2, processes: [hot(1), hot(2)] }), want: hold("app_limit") },
  { title: "node: saturated at the pool limit → saturated needing room", s: snap({ poolRoom: 0, processes: [hot(1)] }), want: spawn("saturated", true) },
  { title: "node: saturated while a spawn runs → hold (one at a time)", s: snap({ spawning: 1, processes: [hot(1)] }), want: hold("spawning") },
  {
    title: "node: sustained in-flight requests alone do not grow a Node app",
    s: snap({ processes: [node(1, 6, { elu: 0.2, peakInFlight: 6 }), node(2, 6, { elu: 0.2, peakInFlight: 6, at: NOW - 50 })] }),
    want: hold("not_yet", NOW - 50 + LOOP_STALE_MS),
  },
  // PassengerForceMaxConcurrentRequestsPerProcess keeps Passenger's meaning: the limit decides, not the loop
  { title: "node, limit 2: saturated loop below the limit → hold", s: snap({ maxConcurrency: 2, processes: [hot(1, 1)] }), want: hold("not_needed") },
  { title: "node, limit 2: every process at the limit with an idle loop → busy", s: snap({ maxConcurrency: 2, processes: [node(1, 2, { elu: 0.01, peakInFlight: 2 })] }), want: spawn("busy") },
  // rolling restart
  {
    title: "restart: stale process and nothing spawning → restart",
    s: snap({ restarting: true, processes: [proc(1, { stale: true })] }),
    want: spawn("restart"),
  },
  {
    title: "restart: ignores the per-app cap",
    s: snap({ restarting: true, maxInstances: 1, processes: [proc(1, { stale: true })] }),
    want: spawn("restart"),
  },
  {
    title: "restart: pool full → restart needing room",
    s: snap({ restarting: true, poolRoom: 0, processes: [proc(1, { stale: true })] }),
    want: spawn("restart", true),
  },
  {
    title: "restart: one at a time",
    s: snap({ restarting: true, spawning: 1, processes: [proc(1, { stale: true }), proc(2, { stale: true })] }),
    want: hold("spawning"),
  },
  {
    title: "restart: no stale process left → normal policy",
    s: snap({ restarting: true, processes: [proc(1)] }),
    want: hold("not_needed"),
  },
  {
    title: "restart: backoff holds restart spawns too",
    s: snap({ restarting: true, notBefore: NOW + 1, processes: [proc(1, { stale: true })] }),
    want: hold("backoff", NOW + 1),
  },
];

for (const c of cases) {
  test(`shouldSpawn() ${c.title}`, (t) => {
    t.deepEqual(shouldSpawn(c.s, NOW), c.want);
  });
}

const idleCases: ReadonlyArray<{ title: string; ps: ScalingProcess[]; idle: number; min: number; want: number[] }> = [
  { title: "idle time 0 never retires", ps: [proc(1, { lastUsedAt: 0 }), proc(2, { lastUsedAt: 0 })], idle: 0, min: 0, want: [] },
  { title: "keeps minInstances", ps: [proc(1, { lastUsedAt: 0 })], idle: 1000, min: 1, want: [] },
  { title: "retires idle above min, LRU first", ps: [proc(1, { lastUsedAt: 50 }), proc(2, { lastUsedAt: 10 }), proc(3, { lastUsedAt: 90 })], idle: 1000, min: 1, want: [2, 1] },
  { title: "not idle long enough", ps: [proc(1, { lastUsedAt: NOW - 999 }), proc(2, { lastUsedAt: NOW - 999 })], idle: 1000, min: 0, want: [] },
  { title: "exactly the idle time counts", ps: [proc(1, { lastUsedAt: NOW - 1000 }), proc(2, { lastUsedAt: NOW })], idle: 1000, min: 1, want: [1] },
  { title: "busy processes are never idle", ps: [busy(1, 1, 0, { lastUsedAt: 0 }), proc(2, { lastUsedAt: NOW })], idle: 1000, min: 0, want: [] },
  { title: "upgraded connections keep a process", ps: [proc(1, { lastUsedAt: 0, upgraded: 1 }), proc(2, { lastUsedAt: 0 })], idle: 1000, min: 0, want: [2] },
  { title: "min 0 retires everything idle", ps: [proc(1, { lastUsedAt: 0 }), proc(2, { lastUsedAt: 1 })], idle: 1000, min: 0, want: [1, 2] },
];
for (const c of idleCases) {
  test(`idleProcessesToRetire() ${c.title}`, (t) => {
    t.deepEqual(idleProcessesToRetire(c.ps, { idleTimeMs: c.idle, minInstances: c.min }, NOW), c.want);
  });
}

const capCases: ReadonlyArray<[number, number, number]> = [
  [0, 0, 0],
  [3, 0, 3],
  [0, 4, 4],
  [3, 4, 3],
  [5, 2, 2],
];
for (const [app, server, want] of capCases) {
  test(`effectiveMaxInstances(${app}, ${server}) = ${want}`, (t) => {
    t.is(effectiveMaxInstances(app, server), want);
  });
}

const backoffCases: ReadonlyArray<[number, number]> = [
  [0, 0],
  [1, 1_000],
  [2, 2_000],
  [3, 4_000],
  [5, 16_000],
  [6, 30_000],
  [100, 30_000],
];
for (const [failures, want] of backoffCases) {
  test(`spawnBackoffMs(${failures}) = ${want}`, (t) => {
    t.is(spawnBackoffMs(failures), want);
  });
}

test("crashRespawnDelayMs() respawns the first quick crash at once, then backs off", (t) => {
  t.deepEqual([0, 1, 2, 3, 4, 10].map(crashRespawnDelayMs), [0, 0, 1_000, 2_000, 4_000, 30_000]);
});
