/**
 * End-to-end cases every front end must pass the same way: a real
 * Prometheus scrapes Ferry's /metrics, served by the core behind the front
 * end (PassengerMetricsListen / passenger_metrics_listen) and, with
 * `standalone`, by `ferry start` (--metrics-listen) beside it. Every target
 * is up, the request counters move by exactly the requests sent (labelled by
 * status class), and promtool accepts the exposition, labelled by app group.
 * Run through Apache (with the standalone target) by
 * test/e2e/metrics.test.ts and through nginx by test/e2e/nginx/metrics.test.ts.
 */
import type { TestFn } from "ava";
import { rm } from "node:fs/promises";
import path from "node:path";
import { freePort, makeTempRoot, prepareApp, waitFor } from "../../helpers/apache.js";
import { request } from "../../helpers/e2e-http.js";
import { PrometheusServer, promtoolCheck } from "../../helpers/prometheus.js";
import { startApp, type Running } from "../../helpers/standalone.js";
import { type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

export interface MetricsCaseOptions extends SharedCaseOptions {
  /** Also scrape a `ferry start` instance (the front end's file that covers standalone mode). */
  readonly standalone?: boolean;
}

export function metricsCases(test: TestFn, kind: FrontEndKind, opts: MetricsCaseOptions = {}): void {
  let standalone: Running | undefined;
  let prom: PrometheusServer | undefined;
  let feTarget = "";
  let standaloneTarget = "";

  // Prometheus and `ferry start` live in a temp dir of their own: the front
  // end's teardown waits for everything under its root to be gone.
  let ownDir = "";
  test.after.always(async () => {
    await prom?.stop();
    await standalone?.stop();
    if (ownDir !== "") await rm(ownDir, { recursive: true, force: true });
  });

  const { fe, serial } = frontEndSuite(test, kind, "metrics", async (r) => {
    const appRoot = await prepareApp(r, "e2e-app", "metered");
    feTarget = `127.0.0.1:${await freePort()}`;
    ownDir = await makeTempRoot(`e2e-${kind}-metrics-prometheus`);
    if (opts.standalone === true) {
      standalone = await startApp(await prepareApp(ownDir, "e2e-app", "solo"), { "metrics-listen": "127.0.0.1:0" });
      const url = standalone.instance.metricsUrl;
      if (url === undefined) throw new Error("Cannot find the standalone metrics URL");
      standaloneTarget = new URL(url).host;
    }
    // Scraping starts before the front end is up: the first case waits for up = 1.
    prom = await PrometheusServer.start(path.join(ownDir, "prometheus"), targets());
    return {
      server: { MetricsListen: feTarget },
      sites: [{ serverName: "metered.test", appRoot }],
    };
  }, opts);

  test.afterEach.always((t) => {
    if (!t.passed && prom !== undefined) t.log(prom.output.slice(-2000));
  });

  function targets(): string[] {
    return standaloneTarget === "" ? [feTarget] : [feTarget, standaloneTarget];
  }

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

  async function allScrapedAfter(since: number): Promise<boolean> {
    for (const target of targets()) if (!(await scrapedAfter(target, since))) return false;
    return true;
  }

  serial(`Prometheus scrapes ${opts.standalone === true ? "both targets" : "the target"}: up is 1`, async (t) => {
    for (const target of targets()) {
      await waitFor(async () => (await valueFor("up", target)) === 1, { timeoutMs: 30_000, intervalMs: 250, what: `up{instance="${target}"} = 1` });
    }
    t.pass();
  });

  serial("request counters move by exactly the requests sent, by status class", async (t) => {
    const port = fe().port;
    const solo = standalone;
    // A first request spawns the apps, so the baseline scrape sees their series.
    await request(port, { path: "/", host: "metered.test" });
    if (solo !== undefined) await request(solo.port, { path: "/" });
    const ok = 'sum by (instance) (ferry_app_requests_total{status_class="2xx"})';
    const notFound = 'sum by (instance) (ferry_app_requests_total{status_class="4xx"})';
    const since = Date.now();
    await waitFor(() => allScrapedAfter(since), { timeoutMs: 15_000, intervalMs: 250, what: "a scrape after the first requests" });
    const base = {
      fe2xx: await valueFor(ok, feTarget), fe4xx: await valueFor(notFound, feTarget),
      solo2xx: solo === undefined ? 0 : await valueFor(ok, standaloneTarget),
    };
    t.true(base.fe2xx >= 1 && (solo === undefined || base.solo2xx >= 1), JSON.stringify(base));

    for (let i = 0; i < 7; i++) t.is((await request(port, { path: "/version", host: "metered.test" })).status, 200);
    for (let i = 0; i < 3; i++) t.is((await request(port, { path: "/no-such-route", host: "metered.test" })).status, 404);
    if (solo !== undefined) for (let i = 0; i < 5; i++) t.is((await request(solo.port, { path: "/version" })).status, 200);

    const moved = async (): Promise<boolean> => (await valueFor(ok, feTarget)) === base.fe2xx + 7 && (await valueFor(notFound, feTarget)) === base.fe4xx + 3 &&
      (solo === undefined || (await valueFor(ok, standaloneTarget)) === base.solo2xx + 5);
    await waitFor(moved, { timeoutMs: 20_000, intervalMs: 250, what: "counters to move by the requests sent" });
    // And no further: one more scrape later they are still exactly there.
    const later = Date.now();
    await waitFor(() => allScrapedAfter(later), { timeoutMs: 15_000, intervalMs: 250, what: "one more scrape" });
    t.is(await valueFor(ok, feTarget), base.fe2xx + 7);
    t.is(await valueFor(notFound, feTarget), base.fe4xx + 3);
    if (solo !== undefined) t.is(await valueFor(ok, standaloneTarget), base.solo2xx + 5);
    t.is(await valueFor("sum by (instance) (ferry_app_request_duration_seconds_count)", feTarget), base.fe2xx + base.fe4xx + 10);
    t.is(await valueFor('sum by (instance) (ferry_app_processes{state="ready"})', feTarget), 1);
    t.true((await valueFor("ferry_core_module_connections", feTarget)) >= 0);
    t.true((await valueFor("ferry_app_spawns_total", feTarget)) >= 1);
    t.true((await valueFor("ferry_app_process_resident_memory_bytes", feTarget)) > 1_000_000);
  });

  serial(`promtool check metrics passes on ${opts.standalone === true ? "both expositions" : "the exposition"}, labelled by app group`, async (t) => {
    for (const target of targets()) {
      const text = await (await fetch(`http://${target}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
      t.is(await promtoolCheck(text), "", target);
      t.regex(text, /^ferry_app_requests_total\{app="[^"]+ \(\w+\)",status_class="2xx"\} \d+$/m);
    }
    const r = await fetch(`http://${feTarget}/other`, { signal: AbortSignal.timeout(5000) });
    t.is(r.status, 404);
  });
}
