/**
 * FerryMetrics (core/src/metrics/prometheus.ts): requests are counted by
 * status class from requestFinished(), pool figures come from the snapshot at
 * scrape time, and conf/grafana-dashboard.json queries only metrics it serves.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FerryMetrics } from "../../../core/src/metrics/prometheus.js";
import { statusClass } from "../../../core/src/metrics/recorder.js";
import { parseListenAddress } from "../../../core/src/config/listen-address.js";
import type { PoolStatus } from "../../../core/src/control/status.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

function status(): PoolStatus {
  return {
    version: "x", maxPoolSize: 6, processCount: 2,
    groups: [{
      name: "/srv/a (production)", appRoot: "/srv/a", appEnv: "production", queueLength: 3, spawning: 1, restarting: false, lastError: null,
      restartGeneration: 2, spawns: 4, spawnFailures: 1, crashes: 2, crashReasons: { "exit code 1": 1, "signal SIGKILL": 1 }, queueOverflows: 5, leases: 9, passes: 3, directRequests: 40, unhealthy: { event_loop: 2 }, lastExit: null,
      processes: [
        { pid: 10, stickyId: "1", state: "ready", inFlight: 2, upgraded: 1, processed: 9, startedAt: 0, lastUsedAt: 0, cpuPercent: 1, rssBytes: 5_000_000, cpuSeconds: 1.5, generation: 2, retireReason: "", health: "ok", healthFailures: 0, lastHealthFailure: "", loop: { elu: 0.25, delayMeanMs: 1, delayP99Ms: 20, delayMaxMs: 30, intervalMs: 250, at: 0 } },
        { pid: 11, stickyId: "2", state: "draining", inFlight: 1, upgraded: 0, processed: 9, startedAt: 0, lastUsedAt: 0, cpuPercent: 1, rssBytes: 6_000_000, cpuSeconds: 0.5, generation: 1, retireReason: "idle", health: "ok", healthFailures: 0, lastHealthFailure: "" },
      ],
    }],
  };
}

function value(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("statusClass() maps statuses to classes, 0 to aborted", (t) => {
  t.is(statusClass(200), "2xx");
  t.is(statusClass(101), "1xx");
  t.is(statusClass(503), "5xx");
  t.is(statusClass(0), "aborted");
  t.is(statusClass(999), "other");
});

test("requestFinished() counts by app and status class; 101 is counted but not timed", async (t) => {
  const m = new FerryMetrics({ status });
  m.requestFinished("a", 200, 0.01, 100);
  m.requestFinished("a", 204, 0.02, 0);
  m.requestFinished("a", 503, 0.001, 50);
  m.requestFinished("a", 101, 30, 0);
  m.requestFinished("a", 0, 0.5, 0);
  const text = await m.scrape();
  t.is(value(text, 'ferry_app_requests_total{app="a",status_class="2xx"}'), 2);
  t.is(value(text, 'ferry_app_requests_total{app="a",status_class="5xx"}'), 1);
  t.is(value(text, 'ferry_app_requests_total{app="a",status_class="1xx"}'), 1);
  t.is(value(text, 'ferry_app_requests_total{app="a",status_class="aborted"}'), 1);
  t.is(value(text, 'ferry_app_request_duration_seconds_count{app="a"}'), 4);
  t.is(value(text, 'ferry_app_response_bytes_total{app="a"}'), 150);
});

test("scrape() reads processes, queue and totals from the pool snapshot", async (t) => {
  const m = new FerryMetrics({ status, moduleConnections: () => 7 });
  m.spawned("/srv/a (production)", 0.3);
  const text = await m.scrape();
  const app = 'app="/srv/a (production)"';
  t.is(value(text, `ferry_app_requests_in_flight{${app}}`), 3);
  t.is(value(text, `ferry_app_upgraded_connections{${app}}`), 1);
  t.is(value(text, `ferry_app_requests_queued{${app}}`), 3);
  t.is(value(text, `ferry_app_queue_overflows_total{${app}}`), 5);
  t.is(value(text, `ferry_app_leases_total{${app}}`), 9);
  t.is(value(text, `ferry_app_passes_total{${app}}`), 3);
  t.is(value(text, `ferry_app_direct_requests_total{${app}}`), 40);
  t.is(value(text, `ferry_app_processes{${app},state="ready"}`), 1);
  t.is(value(text, `ferry_app_processes{${app},state="draining"}`), 1);
  t.is(value(text, `ferry_app_processes{${app},state="spawning"}`), 1);
  t.is(value(text, `ferry_app_spawns_total{${app}}`), 4);
  t.is(value(text, `ferry_app_spawn_failures_total{${app}}`), 1);
  t.is(value(text, `ferry_app_process_crashes_total{${app},reason="signal SIGKILL"}`), 1);
  t.is(value(text, `ferry_app_restart_generation{${app}}`), 2);
  t.is(value(text, `ferry_app_unhealthy_replacements_total{${app},reason="event_loop"}`), 2);
  t.is(value(text, `ferry_app_process_resident_memory_bytes{${app},pid="11"}`), 6_000_000);
  t.is(value(text, `ferry_app_process_cpu_seconds_total{${app},pid="10"}`), 1.5);
  t.is(value(text, `ferry_app_spawn_duration_seconds_count{${app}}`), 1);
  t.is(value(text, `ferry_app_process_event_loop_utilization{${app},pid="10"}`), 0.25);
  t.is(value(text, `ferry_app_process_event_loop_delay_p99_seconds{${app},pid="10"}`), 0.02);
  t.is(value(text, "ferry_core_module_connections"), 7);
  t.is(value(text, "ferry_pool_max_size"), 6);
  t.true((value(text, "ferry_core_resident_memory_bytes") ?? 0) > 0);
  // Counters read from the snapshot do not add up across scrapes.
  t.is(value(await m.scrape(), `ferry_app_spawns_total{${app}}`), 4);
});

test("parseListenAddress() takes ADDR:PORT, [v6]:PORT and a bare port (loopback)", (t) => {
  t.deepEqual(parseListenAddress("0.0.0.0:9464", "x"), { host: "0.0.0.0", port: 9464 });
  t.deepEqual(parseListenAddress("[::1]:9464", "x"), { host: "::1", port: 9464 });
  t.deepEqual(parseListenAddress("9464", "x"), { host: "127.0.0.1", port: 9464 });
  t.throws(() => parseListenAddress("host:99999", "x"), { message: /expected ADDR:PORT/ });
  t.throws(() => parseListenAddress("nope", "x"), { message: /expected ADDR:PORT/ });
});

test("conf/grafana-dashboard.json queries only metrics Ferry serves", async (t) => {
  const dash = JSON.parse(readFileSync(path.join(ROOT, "conf/grafana-dashboard.json"), "utf8")) as { panels: Array<{ targets: Array<{ expr: string }> }> };
  const m = new FerryMetrics({ status, moduleConnections: () => 0 });
  const served = new Set((await m.registry.getMetricsAsJSON()).flatMap((x) => String(x.type) === "histogram" ? [`${x.name}_bucket`, `${x.name}_count`, `${x.name}_sum`] : [x.name]));
  const used = dash.panels.flatMap((p) => p.targets.flatMap((q) => q.expr.match(/\bferry_[a-z_]+/g) ?? []));
  t.true(used.length > 10);
  t.deepEqual(used.filter((n) => !served.has(n)), []);
});
