/**
 * An app too slow for its PassengerStartTimeout fails to spawn; once the admin
 * raises the timeout (a new configuration generation, `apachectl graceful`),
 * the next request must get a process: neither the spawn backoff of the old
 * failure nor a retry still running with the old options may fail it.
 */
import test from "ava";
import { SpawnError } from "../../../core/src/errors.js";
import { harness, pids, waitFor } from "../../helpers/pool-harness.js";

// Every fake spawn takes 400 ms: more than 150 ms, less than 10 s.
const SPAWN_MS = 400;

test("raising the start timeout in a new generation right after a failed spawn makes the next request work", async (t) => {
  const h = harness({}, SPAWN_MS);
  t.teardown(() => h.close());
  const tooShort = h.app({ startTimeoutMs: 150 });
  await t.throwsAsync(h.pool.checkout(tooShort, { generation: 1 }), { instanceOf: SpawnError });
  // At once, while the failure's backoff is still on.
  const raised = h.app({ startTimeoutMs: 10_000 });
  const s = await h.pool.checkout(raised, { generation: 2 });
  t.true(pids(h.pool, tooShort.appGroupName, "ready").includes(s.pid));
  s.release("ok");
});

test("a retry still running with the old start timeout does not fail the request made with the raised one", async (t) => {
  const h = harness({}, SPAWN_MS);
  t.teardown(() => h.close());
  const tooShort = h.app({ startTimeoutMs: 150 });
  await t.throwsAsync(h.pool.checkout(tooShort, { generation: 1 }), { instanceOf: SpawnError });
  // The group retries on its own (min instances 1) with the options it has: wait until it does.
  await waitFor("a retry spawn with the old options", () => h.pool.status().groups.some((g) => g.spawning > 0), 15_000);
  const raised = h.app({ startTimeoutMs: 10_000 });
  const s = await h.pool.checkout(raised, { generation: 2 });
  t.true(pids(h.pool, tooShort.appGroupName, "ready").includes(s.pid));
  s.release("ok");
});
