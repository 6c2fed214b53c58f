import test from "ava";
import * as fc from "fast-check";
import { isAtLimit, route, type RoutableProcess, type RouteDecision, type RouteInput } from "../../../core/src/policy/routing.js";

const p = (id: number, inFlight: number, accepting = true, stickyId = String(id * 11)): RoutableProcess => ({ id, stickyId, inFlight, accepting });

const cases: ReadonlyArray<{ title: string; input: RouteInput; want: RouteDecision }> = [
  { title: "no process → wait no_process", input: { processes: [], maxConcurrency: 0 }, want: { kind: "wait", reason: "no_process" } },
  {
    title: "only draining processes → wait no_process",
    input: { processes: [p(1, 0, false), p(2, 0, false)], maxConcurrency: 0 },
    want: { kind: "wait", reason: "no_process" },
  },
  { title: "one idle process", input: { processes: [p(1, 0)], maxConcurrency: 0 }, want: { kind: "process", id: 1, sticky: false } },
  {
    title: "least busy wins",
    input: { processes: [p(1, 3), p(2, 1), p(3, 2)], maxConcurrency: 0 },
    want: { kind: "process", id: 2, sticky: false },
  },
  {
    title: "ties go to the oldest (first) process",
    input: { processes: [p(1, 1), p(2, 1), p(3, 1)], maxConcurrency: 0 },
    want: { kind: "process", id: 1, sticky: false },
  },
  {
    title: "draining processes are skipped even when least busy",
    input: { processes: [p(1, 0, false), p(2, 5)], maxConcurrency: 0 },
    want: { kind: "process", id: 2, sticky: false },
  },
  {
    title: "unlimited concurrency never waits while a process lives",
    input: { processes: [p(1, 1000)], maxConcurrency: 0 },
    want: { kind: "process", id: 1, sticky: false },
  },
  {
    title: "all at the limit → wait all_busy",
    input: { processes: [p(1, 2), p(2, 2)], maxConcurrency: 2 },
    want: { kind: "wait", reason: "all_busy" },
  },
  {
    title: "one below the limit takes it",
    input: { processes: [p(1, 2), p(2, 1)], maxConcurrency: 2 },
    want: { kind: "process", id: 2, sticky: false },
  },
  {
    title: "sticky id picks its process even when busier",
    input: { processes: [p(1, 0), p(2, 4)], maxConcurrency: 0, stickyId: "22" },
    want: { kind: "process", id: 2, sticky: true },
  },
  {
    title: "sticky process at its limit → wait for it (no reroute)",
    input: { processes: [p(1, 0), p(2, 1)], maxConcurrency: 1, stickyId: "22" },
    want: { kind: "wait", reason: "sticky_busy" },
  },
  {
    title: "stale sticky id → least busy",
    input: { processes: [p(1, 2), p(2, 1)], maxConcurrency: 0, stickyId: "999" },
    want: { kind: "process", id: 2, sticky: false },
  },
  {
    title: "sticky id of a retiring process → least busy accepting",
    input: { processes: [p(1, 0, false), p(2, 3)], maxConcurrency: 0, stickyId: "11" },
    want: { kind: "process", id: 2, sticky: false },
  },
  {
    title: "empty sticky id is ignored",
    input: { processes: [p(1, 1), p(2, 0)], maxConcurrency: 0, stickyId: "" },
    want: { kind: "process", id: 2, sticky: false },
  },
  {
    title: "stale sticky id with everything at the limit → all_busy",
    input: { processes: [p(1, 1)], maxConcurrency: 1, stickyId: "5" },
    want: { kind: "wait", reason: "all_busy" },
  },
];

for (const c of cases) {
  test(`route() ${c.title}`, (t) => {
    t.deepEqual(route(c.input), c.want);
  });
}

test("isAtLimit() is false for unlimited concurrency and true at or above the limit", (t) => {
  t.false(isAtLimit(p(1, 100), 0));
  t.false(isAtLimit(p(1, 1), 2));
  t.true(isAtLimit(p(1, 2), 2));
  t.true(isAtLimit(p(1, 3), 2));
});

test("route() property: picks an accepting, least busy process below the limit, or says why it cannot", (t) => {
  const procArb = fc.record({
    inFlight: fc.integer({ min: 0, max: 6 }),
    accepting: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(procArb, { maxLength: 8 }), fc.integer({ min: 0, max: 4 }), fc.option(fc.integer({ min: 0, max: 9 })), (raw, max, stickyIdx) => {
      const processes = raw.map((r, i) => p(i + 1, r.inFlight, r.accepting));
      const stickyId = stickyIdx === null ? undefined : String((stickyIdx + 1) * 11);
      const d = route({ processes, maxConcurrency: max, stickyId });
      const accepting = processes.filter((x) => x.accepting);
      if (d.kind === "process") {
        const chosen = processes.find((x) => x.id === d.id);
        if (chosen === undefined || !chosen.accepting || isAtLimit(chosen, max)) return false;
        if (d.sticky) return chosen.stickyId === stickyId;
        return accepting.every((x) => x.inFlight >= chosen.inFlight);
      }
      if (d.reason === "no_process") return accepting.length === 0;
      if (d.reason === "sticky_busy") return accepting.some((x) => x.stickyId === stickyId && isAtLimit(x, max));
      return accepting.length > 0 && accepting.every((x) => isAtLimit(x, max));
    }),
    { numRuns: 500 },
  );
  t.pass();
});
