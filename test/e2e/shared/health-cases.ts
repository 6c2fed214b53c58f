/**
 * End-to-end cases every front end must pass the same way: health checks
 * that heal (docs/health.md), configured with the front end's health-check
 * directives (PassengerHealthCheck* / passenger_health_check_*). A process
 * whose event loop is stuck, or whose HTTP health check fails
 * HealthCheckFailures times, leaves rotation at once, its in-flight request
 * gets an error, and a new process replaces it; the reason shows in the
 * front end's error log, `ferry status --json` and the metrics. Run through
 * Apache by test/e2e/health.test.ts and through nginx by
 * test/e2e/nginx/health.test.ts.
 */
import type { TestFn } from "ava";
import { execFile as execFileCb } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { validatePoolStatus } from "../../../core/src/control/client.js";
import type { GroupStatus, PoolStatus } from "../../../core/src/control/status.js";
import { REPO_ROOT, freePort, isAlive, prepareApp, waitFor } from "../../helpers/apache.js";
import { getJson, request } from "../../helpers/e2e-http.js";
import { type FrontEndConfig, type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

const execFile = promisify(execFileCb);

export function healthCases(test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {}): void {
  let metricsPort = 0;
  const apps = { stuck: "", sick: "" };
  const config = (failures: number, redeploy = "all"): FrontEndConfig => ({
    server: {
      RedeployOnGraceful: redeploy,
      HealthCheckPath: "/health", HealthCheckInterval: 1, HealthCheckTimeout: 1,
      HealthCheckFailures: failures, HealthCheckEventLoopTimeout: 2, MetricsListen: `127.0.0.1:${metricsPort}`,
    },
    sites: [
      { serverName: "stuck.test", appRoot: apps.stuck },
      { serverName: "sick.test", appRoot: apps.sick },
    ],
  });
  const { fe, serial } = frontEndSuite(test, kind, "health", async (root) => {
    apps.stuck = await prepareApp(root, "e2e-app", "stuck");
    apps.sick = await prepareApp(root, "e2e-app", "sick");
    metricsPort = await freePort();
    return config(2);
  }, opts);

  async function status(): Promise<PoolStatus> {
    const { stdout } = await execFile(process.execPath, [path.join(REPO_ROOT, "bin/ferry.js"), "status", "--instance", fe().server.instanceDir, "--json"], { timeout: 15_000 });
    return validatePoolStatus(JSON.parse(stdout));
  }

  async function group(appRoot: string): Promise<GroupStatus> {
    const g = (await status()).groups.find((x) => x.appRoot === appRoot);
    if (g === undefined) throw new Error(`Cannot find the group of ${appRoot}`);
    return g;
  }

  async function pidOf(host: string): Promise<number> {
    const b = await getJson(fe().port, "/pid", host);
    if (typeof b.pid !== "number") throw new Error("no pid");
    return b.pid;
  }

  async function metric(series: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    return line === undefined ? 0 : Number(line.slice(series.length + 1));
  }

  serial("a stuck event loop: the process leaves rotation, its in-flight request fails, a new one serves", async (t) => {
    const srv = fe();
    const old = await pidOf("stuck.test");
    // Wait for the loader's first event-loop report, so the loop is being watched.
    await waitFor(async () => (await group(apps.stuck)).processes.some((p) => p.pid === old && p.loop !== undefined), { timeoutMs: 10_000, what: "a loop report" });
    const started0 = Date.now();
    const blocked = await request(srv.port, { path: "/block?ms=60000", host: "stuck.test" });
    t.true(blocked.status >= 500, `the stuck request got ${blocked.status}`);
    t.true(Date.now() - started0 < 20_000, "the in-flight request got its error long before the loop would have freed");
    await waitFor(() => !isAlive(old), { timeoutMs: 10_000, what: "the stuck process to be gone" });
    const fresh = await pidOf("stuck.test");
    t.not(fresh, old);
    const g = await group(apps.stuck);
    t.is(g.unhealthy["event_loop"], 1);
    t.is(g.lastExit?.pid, old);
    t.regex(g.lastExit?.reason ?? "", /unhealthy: its event loop is stuck/);
    t.regex(srv.server.errorLog(), /FERRY0303: stuck: Process taken out of rotation and replaced: its event loop is stuck/);
    const app = `app="${g.name}"`;
    t.is(await metric(`ferry_app_unhealthy_replacements_total{${app},reason="event_loop"}`), 1);
  });

  const failuresDirective = kind === "apache" ? "PassengerHealthCheckFailures" : "passenger_health_check_failures";
  serial(`a failing HTTP health check: the process is replaced after ${failuresDirective} failures`, async (t) => {
    const srv = fe();
    const old = await pidOf("sick.test");
    await writeFile(path.join(apps.sick, "tmp", "unhealthy"), "");
    try {
      await waitFor(async () => ((await group(apps.sick)).unhealthy["health_check"] ?? 0) >= 1, { timeoutMs: 20_000, intervalMs: 200, what: "a health-check replacement" });
    } finally {
      await rm(path.join(apps.sick, "tmp", "unhealthy"), { force: true });
    }
    await waitFor(() => !isAlive(old), { timeoutMs: 10_000, what: "the failing process to be gone" });
    const g = await group(apps.sick);
    t.regex(g.lastExit?.reason ?? "", /unhealthy: its health check failed 2 times in a row \(GET \/health answered 500\)/);
    t.regex(srv.server.errorLog(), /FERRY0307: sick: Health check failed: GET \/health answered 500/);
    // Healthy again: requests are served, the new process passes its checks.
    t.is((await request(srv.port, { path: "/version", host: "sick.test" })).status, 200);
    await waitFor(async () => (await group(apps.sick)).processes.some((p) => p.state === "ready" && p.health === "ok"), { timeoutMs: 10_000, what: "a healthy process" });
    t.true(await metric(`ferry_app_unhealthy_replacements_total{app="${g.name}",reason="health_check"}`) >= 1);
  });

  serial(`a reload applies a changed ${failuresDirective}: a failing process is then replaced after the new count`, async (t) => {
    const srv = fe();
    const before = (await group(apps.sick)).unhealthy["health_check"] ?? 0;
    // No redeploy: the running process is checked with the new count.
    await srv.reconfigure(config(3, "off"));
    await srv.reload();
    const old = await pidOf("sick.test");
    await writeFile(path.join(apps.sick, "tmp", "unhealthy"), "");
    try {
      await waitFor(async () => ((await group(apps.sick)).unhealthy["health_check"] ?? 0) > before, { timeoutMs: 30_000, intervalMs: 200, what: "a health-check replacement after the reload" });
    } finally {
      await rm(path.join(apps.sick, "tmp", "unhealthy"), { force: true });
    }
    const g = await group(apps.sick);
    t.is(g.lastExit?.pid, old);
    t.regex(g.lastExit?.reason ?? "", /unhealthy: its health check failed 3 times in a row \(GET \/health answered 500\)/);
    t.is((await request(srv.port, { path: "/version", host: "sick.test" })).status, 200);
  });
}
