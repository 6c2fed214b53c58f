/**
 * Health checks that heal under `ferry start` (--health-check-* flags): a
 * process whose /health fails twice in a row is replaced, and status shows
 * the failing checks, the replacement and the last exit.
 */
import test from "ava";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { copyApp, makeTmp, pidGone, pidOf, startApp, waitFor, type Running } from "../../helpers/standalone.js";

let running: Running | undefined;
let tmp = "";

test.after.always(async () => {
  await running?.stop();
  if (tmp !== "") await rm(tmp, { recursive: true, force: true });
});

test("--health-check-path: a process failing its check --health-check-failures times is replaced", async (t) => {
  tmp = await makeTmp("ferry-health");
  const app = await copyApp("e2e-app", tmp);
  await mkdir(path.join(app, "tmp"), { mode: 0o755 });
  running = await startApp(app, {
    "health-check-path": "/health", "health-check-interval": "1", "health-check-timeout": "1", "health-check-failures": "2",
  });
  const r = running;
  const old = await pidOf(r.port);
  const group = (): ReturnType<typeof r.instance.pool.status>["groups"][number] | undefined => r.instance.pool.status().groups[0];
  await writeFile(path.join(app, "tmp", "unhealthy"), "");
  try {
    await waitFor("a failing check in status", () => (group()?.processes.some((p) => p.pid === old && p.health === "failing") ? true : undefined), 10_000, 20);
    await waitFor("the replacement", () => ((group()?.unhealthy["health_check"] ?? 0) >= 1 ? true : undefined), 10_000, 20);
  } finally {
    await rm(path.join(app, "tmp", "unhealthy"), { force: true });
  }
  await waitFor("the old process to exit", () => (pidGone(old) ? true : undefined), 10_000);
  t.not(await pidOf(r.port), old);
  const g = group();
  t.is(g?.lastExit?.pid, old);
  t.regex(g?.lastExit?.reason ?? "", /^unhealthy: its health check failed 2 times in a row \(GET \/health answered 500\)$/);
});
