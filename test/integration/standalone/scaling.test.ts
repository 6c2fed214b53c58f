/**
 * Ferry's saturation policy with no per-process limit: the group grows from 1
 * toward the maximum under concurrent CPU-bound requests (saturated event
 * loops), and shrinks back to the minimum after the idle time.
 */
import test from "ava";
import path from "node:path";
import { FIXTURE_APPS, pidOf, req, startApp, waitFor, type Running } from "../../helpers/standalone.js";

let r: Running | undefined;
test.after.always(async () => { await r?.stop(); });

test("grows from 1 toward max-pool-size under CPU-bound load, then shrinks back after pool-idle-time", async (t) => {
  r = await startApp(path.join(FIXTURE_APPS, "h3-app"), { "min-instances": "1", "max-pool-size": "3", "pool-idle-time": "2" });
  const run = r;
  const processes = (): number => run.instance.pool.status().processCount;
  await pidOf(run.port);
  t.is(processes(), 1);

  // CPU-bound load: 6 clients in loops of 50 ms computations until the group reached the maximum.
  let loading = true;
  const seen = new Set<number>();
  const failures: string[] = [];
  const client = async (): Promise<void> => {
    while (loading) {
      const res = await req(run.port, "/cpu?ms=50");
      if (res.status !== 200) failures.push(`${res.status}`);
      else seen.add((JSON.parse(res.text) as { pid: number }).pid);
    }
  };
  const clients = [0, 1, 2, 3, 4, 5].map(() => client());
  try {
    await waitFor("3 processes", () => (processes() >= 3 ? true : undefined), 40_000);
    await waitFor("requests served by 3 pids", () => (seen.size >= 3 ? true : undefined), 20_000);
  } finally {
    loading = false;
    await Promise.all(clients);
  }
  t.deepEqual(failures, []);
  t.true(processes() <= 3, "never above max-pool-size");
  t.true(seen.size >= 3, `pids: ${[...seen].join(",")}`);

  // Idle: back to min-instances.
  await waitFor("shrink to 1 process", () => (processes() === 1 ? true : undefined), 30_000);
  t.is(processes(), 1);
  const after = await req(run.port, "/pid");
  t.is(after.status, 200);
});
