import test from "ava";
import {
  chooseEvictionVictim,
  fairShare,
  processesOverPoolLimit,
  type EvictableGroup,
  type EvictableProcess,
  type EvictionVictim,
} from "../../../core/src/policy/eviction.js";

const idle = (id: number, lastUsedAt: number): EvictableProcess => ({ id, inFlight: 0, upgraded: 0, lastUsedAt });
const busyP = (id: number, lastUsedAt: number): EvictableProcess => ({ id, inFlight: 1, upgraded: 0, lastUsedAt });
const ws = (id: number, lastUsedAt: number): EvictableProcess => ({ id, inFlight: 0, upgraded: 1, lastUsedAt });
const g = (name: string, processes: EvictableProcess[], minInstances = 1): EvictableGroup => ({ name, minInstances, processes });

const cases: ReadonlyArray<{ title: string; groups: EvictableGroup[]; requester: string; max: number; want: EvictionVictim | null }> = [
  { title: "nothing to evict in an empty pool", groups: [], requester: "new", max: 6, want: null },
  { title: "never evicts the requester's own process", groups: [g("a", [idle(1, 0), idle(2, 0)])], requester: "a", max: 2, want: null },
  {
    title: "evicts the least recently used idle process of another group",
    groups: [g("a", [idle(1, 30)]), g("b", [idle(2, 10)]), g("new", [])],
    requester: "new",
    max: 2,
    want: { group: "b", id: 2, busy: false },
  },
  {
    title: "busy processes are not evicted",
    groups: [g("a", [busyP(1, 0), idle(2, 50)]), g("new", [])],
    requester: "new",
    max: 2,
    want: { group: "a", id: 2, busy: false },
  },
  {
    title: "upgraded (WebSocket) processes are not evicted",
    groups: [g("a", [ws(1, 0)]), g("new", [])],
    requester: "new",
    max: 1,
    want: null,
  },
  {
    title: "all busy and every group within its fair share → null (the request waits)",
    groups: [g("a", [busyP(1, 0)]), g("b", [busyP(2, 0)]), g("c", [])],
    requester: "c",
    max: 2,
    want: null,
  },
  {
    title: "all busy: a group above its fair share gives up its least busy process to a group below it",
    groups: [g("a", [busyP(1, 0), { id: 2, inFlight: 3, upgraded: 0, lastUsedAt: 0 }, busyP(3, 5)]), g("b", [])],
    requester: "b",
    max: 3,
    want: { group: "a", id: 1, busy: true },
  },
  {
    title: "no busy rebalancing when the requester already has its fair share",
    groups: [g("a", [busyP(1, 0), busyP(2, 0), busyP(3, 0)]), g("b", [busyP(4, 0), busyP(5, 0)])],
    requester: "b",
    max: 4,
    want: null,
  },
  {
    title: "busy rebalancing takes from the largest group",
    groups: [g("a", [busyP(1, 0), busyP(2, 0)]), g("b", [busyP(3, 0), busyP(4, 0), busyP(5, 0)]), g("c", [])],
    requester: "c",
    max: 5,
    want: { group: "b", id: 3, busy: true },
  },
  {
    title: "a group above its fair share yields before an older idle process of a small group",
    groups: [g("big", [idle(1, 90), idle(2, 95), idle(3, 99), idle(4, 99)]), g("small", [idle(5, 1)]), g("new", [])],
    requester: "new",
    max: 6,
    want: { group: "big", id: 1, busy: false },
  },
  {
    title: "a group above its minimum yields before one at its minimum",
    groups: [g("a", [idle(1, 1)], 1), g("b", [idle(2, 50), idle(3, 60)], 1), g("new", [])],
    requester: "new",
    max: 6,
    want: { group: "b", id: 2, busy: false },
  },
  {
    title: "processes at their group's minimum can still be evicted as a last resort",
    groups: [g("a", [idle(1, 5)], 1), g("new", [])],
    requester: "new",
    max: 1,
    want: { group: "a", id: 1, busy: false },
  },
];
for (const c of cases) {
  test(`chooseEvictionVictim() ${c.title}`, (t) => {
    t.deepEqual(chooseEvictionVictim(c.groups, c.requester, c.max), c.want);
  });
}

test("fairShare() divides the pool, at least 1", (t) => {
  t.deepEqual([fairShare(6, 1), fairShare(6, 2), fairShare(6, 4), fairShare(2, 5), fairShare(6, 0)], [6, 3, 1, 1, 6]);
});

test("processesOverPoolLimit() retires idle LRU processes down to the limit", (t) => {
  const groups = [g("a", [idle(1, 30), busyP(2, 0)]), g("b", [idle(3, 10), idle(4, 20)])];
  t.deepEqual(processesOverPoolLimit(groups, 4), []);
  t.deepEqual(processesOverPoolLimit(groups, 2), [
    { group: "b", id: 3 },
    { group: "b", id: 4 },
  ]);
  t.deepEqual(processesOverPoolLimit(groups, 0).length, 3, "busy processes are left to finish");
});
