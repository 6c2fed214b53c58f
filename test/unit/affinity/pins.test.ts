import test from "ava";
import { PinTracker, refreshIntervalMs } from "../../../core/src/affinity/pins.js";
import { MemoryAffinityStore } from "../../../core/src/affinity/store.js";

function fakeClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

test("refreshIntervalMs() is a tenth of the TTL within 1 s and 60 s", (t) => {
  t.is(refreshIntervalMs(1_800_000), 60_000);
  t.is(refreshIntervalMs(100_000), 10_000);
  t.is(refreshIntervalMs(2_000), 1_000);
});

test("PinTracker.served() writes a new pin, then only after the refresh interval", (t) => {
  const clock = fakeClock();
  const p = new PinTracker(100_000, clock);
  t.true(p.served("app", "7", 100));
  p.written("app", "7", 100);
  clock.advance(9_999);
  t.false(p.served("app", "7", 100));
  clock.advance(1);
  t.true(p.served("app", "7", 100));
});

test("PinTracker.served() writes again until a write succeeded", (t) => {
  const clock = fakeClock();
  const p = new PinTracker(100_000, clock);
  t.true(p.served("app", "7", 100));
  clock.advance(10);
  t.true(p.served("app", "7", 100), "the first write failed (no written() call)");
});

test("PinTracker.served() writes at once when the process behind an id changed", (t) => {
  const clock = fakeClock();
  const p = new PinTracker(100_000, clock);
  p.served("app", "7", 100);
  p.written("app", "7", 100);
  t.true(p.served("app", "7", 200));
});

test("PinTracker.invalidate() makes every pin due (the store came back empty)", (t) => {
  const clock = fakeClock();
  const p = new PinTracker(100_000, clock);
  p.served("a", "1", 1);
  p.written("a", "1", 1);
  p.invalidate();
  t.true(p.served("a", "1", 1));
  t.deepEqual(p.entries(), [{ app: "a", stickyId: "1", pid: 1 }]);
});

test("PinTracker.count() counts pins used within the TTL and forgets older ones", (t) => {
  const clock = fakeClock();
  const p = new PinTracker(100_000, clock);
  p.served("a", "1", 1);
  clock.advance(60_000);
  p.served("a", "2", 2);
  t.is(p.count(), 2);
  clock.advance(40_000);
  t.is(p.count(), 1);
  clock.advance(60_000);
  t.is(p.count(), 0);
});

test("sliding TTL: a session used more often than the TTL never expires in the store", async (t) => {
  const clock = fakeClock();
  const ttl = 100_000;
  const store = new MemoryAffinityStore(clock);
  const p = new PinTracker(ttl, clock);
  const serve = async (): Promise<void> => {
    if (p.served("app", "7", 100)) {
      await store.pin("app", "7", { node: "a", pid: 100 }, ttl);
      p.written("app", "7", 100);
    }
  };
  for (let i = 0; i < 30; i++) {
    await serve();
    clock.advance(30_000); // 30 × 30 s = 900 s ≫ TTL of 100 s
    t.deepEqual(await store.getOwner("app", "7"), { node: "a", pid: 100 }, `after ${i + 1} requests`);
  }
  clock.advance(ttl);
  t.is(await store.getOwner("app", "7"), null, "expires a TTL after the last use");
});

test("MemoryAffinityStore expires nodes and only unpins its own pins", async (t) => {
  const clock = fakeClock();
  const store = new MemoryAffinityStore(clock);
  await store.putNode({ name: "a", peer: "h:1", tls: false, apps: [], sessions: 0, pid: 1, updatedAt: 0 }, 1_000);
  t.is((await store.listNodes()).length, 1);
  clock.advance(1_000);
  t.deepEqual(await store.listNodes(), []);
  await store.pin("app", "1", { node: "b", pid: 2 }, 10_000);
  await store.unpin("app", "1", "a");
  t.deepEqual(await store.getOwner("app", "1"), { node: "b", pid: 2 });
  await store.unpin("app", "1", "b");
  t.is(await store.getOwner("app", "1"), null);
});
