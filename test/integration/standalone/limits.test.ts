/** Limits through real processes: queue overflow → 503, max-requests recycling, max-request-time → 504. */
import test from "ava";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { FIXTURE_APPS, pidOf, req, startApp, waitFor, type Running } from "../../helpers/standalone.js";

const running: Running[] = [];
test.after.always(async () => { await Promise.all(running.map((r) => r.stop())); });

async function start(flags: Record<string, unknown>): Promise<Running> {
  const r = await startApp(path.join(FIXTURE_APPS, "h3-app"), flags);
  running.push(r);
  return r;
}

test("past max-request-queue-size requests get 503 at once", async (t) => {
  const r = await start({
    "max-pool-size": "1", "force-max-concurrent-requests-per-process": "1", "max-request-queue-size": "2", environment: "production",
  });
  await pidOf(r.port);
  const started = Date.now();
  const answers = await Promise.all(Array.from({ length: 6 }, () => req(r.port, "/slow?ms=1500")));
  const statuses = answers.map((a) => a.status).sort();
  t.deepEqual(statuses, [200, 200, 200, 503, 503, 503], statuses.join(","));
  const overflow = answers.find((a) => a.status === 503);
  t.regex(overflow?.text ?? "", /heavy load/);
  t.regex(overflow?.text ?? "", /Error ID <code id="error-id">[0-9a-f]{8}<\/code>/);
  t.true(Date.now() - started < 15_000);
});

test("a JSON client gets the 503 as JSON", async (t) => {
  const r = await start({
    "max-pool-size": "1", "force-max-concurrent-requests-per-process": "1", "max-request-queue-size": "1",
  });
  await pidOf(r.port);
  const answers = await Promise.all(Array.from({ length: 4 }, () => req(r.port, "/slow?ms=1000", { headers: { Accept: "application/json" } })));
  const overflow = answers.find((a) => a.status === 503);
  t.truthy(overflow);
  t.regex(String(overflow?.headers["content-type"]), /application\/json/);
  const body = JSON.parse(overflow?.text ?? "{}") as Record<string, unknown>;
  t.is(body["status"], "error");
  t.is(body["code"], "FERRY_ERR_QUEUE_FULL");
  t.regex(String(body["error_id"]), /^[0-9a-f]{8}$/);
});

test("max-requests recycles a process after N requests", async (t) => {
  const r = await start({ "max-requests": "3", "min-instances": "1" });
  const pids: number[] = [];
  for (let i = 0; i < 9; i++) pids.push(await pidOf(r.port));
  const counts = new Map<number, number>();
  for (const p of pids) counts.set(p, (counts.get(p) ?? 0) + 1);
  t.true(counts.size >= 3, `pids: ${pids.join(",")}`);
  t.true([...counts.values()].every((n) => n <= 3), `pids: ${pids.join(",")}`);
});

for (const [mode, flags] of [["", {}], [" (relay)", { "connection-handoff": false }]] as const) {
  test(`max-request-time cuts a request with the 504 page, recycles its process, and the app keeps serving${mode}`, async (t) => {
    const r = await start({ "max-request-time": "1", environment: "production", ...flags });
    const before = await pidOf(r.port);
    const slow = await req(r.port, "/slow?ms=10000");
    t.is(slow.status, 504);
    const id = /Error ID <code id="error-id">([0-9a-f]{8})<\/code>/.exec(slow.text)?.[1];
    t.truthy(id, slow.text);
    t.regex(slow.text, /did not answer in time/);
    await waitFor("served by a new process", async () => {
      const res = await req(r.port, "/pid");
      return res.status === 200 && (JSON.parse(res.text) as { pid: number }).pid !== before ? true : undefined;
    }, 30_000);
    await waitFor(`Error ID ${id ?? ""} in the log`, async () => ((await fsp.readFile(r.logFile, "utf8")).includes(`Error ID: ${id ?? "-"}`) ? true : undefined), 10_000);
  });
}
