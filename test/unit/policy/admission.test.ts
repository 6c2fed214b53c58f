import test from "ava";
import { admit, type Admission, type AdmissionInput } from "../../../core/src/policy/admission.js";

const cases: ReadonlyArray<{ title: string; input: AdmissionInput; want: Admission }> = [
  {
    title: "a routed request is dispatched even with a full queue",
    input: { route: { kind: "process", id: 7, sticky: false }, queueLength: 100, maxQueueSize: 100, spawnBlocked: false },
    want: { kind: "dispatch", id: 7 },
  },
  {
    title: "waiting with room in the queue → enqueue",
    input: { route: { kind: "wait", reason: "all_busy" }, queueLength: 99, maxQueueSize: 100, spawnBlocked: false },
    want: { kind: "enqueue" },
  },
  {
    title: "queue at its size → reject queue_full",
    input: { route: { kind: "wait", reason: "all_busy" }, queueLength: 100, maxQueueSize: 100, spawnBlocked: false },
    want: { kind: "reject", reason: "queue_full" },
  },
  {
    title: "queue size 0 is unbounded",
    input: { route: { kind: "wait", reason: "all_busy" }, queueLength: 1_000_000, maxQueueSize: 0, spawnBlocked: false },
    want: { kind: "enqueue" },
  },
  {
    title: "queue size 1 takes one waiter",
    input: { route: { kind: "wait", reason: "sticky_busy" }, queueLength: 0, maxQueueSize: 1, spawnBlocked: false },
    want: { kind: "enqueue" },
  },
  {
    title: "no process during spawn backoff → the spawn error at once",
    input: { route: { kind: "wait", reason: "no_process" }, queueLength: 0, maxQueueSize: 100, spawnBlocked: true },
    want: { kind: "reject", reason: "spawn_failed" },
  },
  {
    title: "no process, no backoff → enqueue (waits for the first spawn)",
    input: { route: { kind: "wait", reason: "no_process" }, queueLength: 3, maxQueueSize: 100, spawnBlocked: false },
    want: { kind: "enqueue" },
  },
  {
    title: "busy processes are not affected by a spawn backoff",
    input: { route: { kind: "wait", reason: "all_busy" }, queueLength: 0, maxQueueSize: 100, spawnBlocked: true },
    want: { kind: "enqueue" },
  },
];

for (const c of cases) {
  test(`admit() ${c.title}`, (t) => {
    t.deepEqual(admit(c.input), c.want);
  });
}
