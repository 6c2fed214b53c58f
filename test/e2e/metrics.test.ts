/**
 * End-to-end: a real Prometheus scrapes Ferry's /metrics, served by the core
 * behind a real Apache (PassengerMetricsListen) and by `ferry start`
 * (--metrics-listen). Both targets are up, the request counters move by
 * exactly the requests sent, and promtool accepts the exposition.
 */
import test from "ava";
import path from "node:path";
import { ApacheServer, freePort, makeTempRoot, prepareApp, started, stopAndRemove, waitFor } from "../helpers/apache.js";
import { request } from "../helpers/e2e-http.js";
import { PrometheusServer, promtoolCheck } from "../helpers/prometheus.js";
import { startApp, type Running } from "../helpers/standalone.js";

let server: ApacheServer | undefined;
let standalone: Running | undefined;
let prom: PrometheusServer | undefined;
let root = "";
let apacheTarget = "";
let standaloneTarget = "";
let appRoot = "";

test.before(async () => {
  root = await makeTempRoot("e2e-metrics");
  appRoot = await prepareApp(root, "e2e-app", "metered");
  const metricsPort = await freePort();
  apacheTarget = `127.0.0.1:${metricsPort}`;
  server = await ApacheServer.start({
    root,
    global: [`PassengerMetricsListen ${apacheTarget}`],
    vhosts: [{ serverName: "metered.test", documentRoot: path.join(appRoot, "public") }],
  });
  standalone = await startApp(await prepareApp(root, "e2e-app", "solo"), { "metrics-listen": "127.0.0.1:0" });
  const url = standalone.instance.metricsUrl;
  if (url === undefined) throw new Error("Cannot find the standalone metrics URL");
  standaloneTarget = new URL(url).host;
  prom = await PrometheusServer.start(path.join(root, "prometheus"), [apacheTarget, standaloneTarget]);
});

test.after.always(async () => {
  await prom?.stop();
  await standalone?.stop();
  await stopAndRemove(server, root);
});

test.afterEach.always((t) => {
  if (!t.passed) {
    if (server !== undefined) t.log(server.errorLogTail(40));
    if (prom !== undefined) t.log(prom.output.slice(-2000));
  }
});

const p = (): PrometheusServer => {
  if (prom === undefined) throw new Error("Cannot run: Prometheus did not start");
  return prom;
};

/** Sum of a PromQL expression's samples for one target (0 when it has none yet). */
async function valueFor(expr: string, target: string): Promise<number> {
  const samples = await p().query(expr);
  return samples.filter((s) => s.labels["instance"] === target).reduce((n, s) => n + s.value, 0);
}

/** The timestamp of the newest scrape of a target, to know a later scrape happened. */
async function scrapedAfter(target: string, since: number): Promise<boolean> {
  const samples = await p().query(`timestamp(up{instance="${target}"})`);
  return samples.some((s) => s.value * 1000 > since);
}

test.serial("Prometheus scrapes both targets: up is 1", async (t) => {
  for (const target of [apacheTarget, standaloneTarget]) {
    await waitFor(async () => (await valueFor("up", target)) === 1, { timeoutMs: 30_000, intervalMs: 250, what: `up{instance="${target}"} = 1` });
  }
  t.pass();
});

test.serial("request counters move by exactly the requests sent, by status class", async (t) => {
  const srv = started(server);
  const solo = standalone;
  if (solo === undefined) throw new Error("Cannot run: ferry start did not start");
  // A first request spawns the apps, so the baseline scrape sees their series.
  await request(srv.port, { path: "/", host: "metered.test" });
  await request(solo.port, { path: "/" });
  const ok = 'sum by (instance) (ferry_app_requests_total{status_class="2xx"})';
  const notFound = 'sum by (instance) (ferry_app_requests_total{status_class="4xx"})';
  const since = Date.now();
  await waitFor(async () => (await scrapedAfter(apacheTarget, since)) && (await scrapedAfter(standaloneTarget, since)), { timeoutMs: 15_000, intervalMs: 250, what: "a scrape after the first requests" });
  const base = {
    apache2xx: await valueFor(ok, apacheTarget), apache4xx: await valueFor(notFound, apacheTarget),
    solo2xx: await valueFor(ok, standaloneTarget),
  };
  t.true(base.apache2xx >= 1 && base.solo2xx >= 1, JSON.stringify(base));

  for (let i = 0; i < 7; i++) t.is((await request(srv.port, { path: "/version", host: "metered.test" })).status, 200);
  for (let i = 0; i < 3; i++) t.is((await request(srv.port, { path: "/no-such-route", host: "metered.test" })).status, 404);
  for (let i = 0; i < 5; i++) t.is((await request(solo.port, { path: "/version" })).status, 200);

  await waitFor(async () => (await valueFor(ok, apacheTarget)) === base.apache2xx + 7 && (await valueFor(notFound, apacheTarget)) === base.apache4xx + 3 &&
    (await valueFor(ok, standaloneTarget)) === base.solo2xx + 5, { timeoutMs: 20_000, intervalMs: 250, what: "counters to move by the requests sent" });
  // And no further: one more scrape later they are still exactly there.
  const later = Date.now();
  await waitFor(async () => (await scrapedAfter(apacheTarget, later)) && (await scrapedAfter(standaloneTarget, later)), { timeoutMs: 15_000, intervalMs: 250, what: "one more scrape" });
  t.is(await valueFor(ok, apacheTarget), base.apache2xx + 7);
  t.is(await valueFor(notFound, apacheTarget), base.apache4xx + 3);
  t.is(await valueFor(ok, standaloneTarget), base.solo2xx + 5);
  t.is(await valueFor("sum by (instance) (ferry_app_request_duration_seconds_count)", apacheTarget), base.apache2xx + base.apache4xx + 10);
  t.is(await valueFor('sum by (instance) (ferry_app_processes{state="ready"})', apacheTarget), 1);
  t.true((await valueFor("ferry_core_module_connections", apacheTarget)) >= 0);
  t.true((await valueFor("ferry_app_spawns_total", apacheTarget)) >= 1);
  t.true((await valueFor("ferry_app_process_resident_memory_bytes", apacheTarget)) > 1_000_000);
});

test.serial("promtool check metrics passes on both expositions, labelled by app group", async (t) => {
  for (const target of [apacheTarget, standaloneTarget]) {
    const text = await (await fetch(`http://${target}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    t.is(await promtoolCheck(text), "", target);
    t.regex(text, /^ferry_app_requests_total\{app="[^"]+ \(\w+\)",status_class="2xx"\} \d+$/m);
  }
  const r = await fetch(`http://${apacheTarget}/other`, { signal: AbortSignal.timeout(5000) });
  t.is(r.status, 404);
});
