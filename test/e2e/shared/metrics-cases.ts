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
import WebSocket from "ws";
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
    const relayedRoot = await prepareApp(r, "e2e-app", "relayed");
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
      // metered.test takes the direct path (the module's DONE reports),
      // relayed.test the relay path (friendly error pages: the core relays
      // every request). Both must count the same (docs/metrics.md), so
      // `npm run test:e2e:relay` does not change them.
      sites: [
        { serverName: "metered.test", appRoot },
        { serverName: "relayed.test", appRoot: relayedRoot, options: { FriendlyErrorPages: "on" } },
      ],
      serverEnv: { FERRY_DATA_PATH: "direct" },
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

  /** The series of `name` of app `app` (its dir name) on the front end's exposition, read directly. */
  async function series(name: string, labels = "", app = "metered"): Promise<number> {
    const text = await (await fetch(`http://${feTarget}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const line = text.split("\n").find((l) => l.startsWith(`${name}{app="`) && l.includes(`/${app} (production)"`) && l.includes(labels));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
  }

  /** The two sites: the direct path and the relay path. */
  const paths = [
    { path: "direct", host: "metered.test", app: "metered" },
    { path: "relay", host: "relayed.test", app: "relayed" },
  ] as const;

  for (const { path: dataPath, host, app } of paths) {
    serial(`${dataPath} path: a WebSocket counts once under 1xx, and the bytes the app sent through the tunnel count as response bytes`, async (t) => {
      const port = fe().port;
      // The app is up (a first request spawns it), so its series exist.
      t.is((await request(port, { path: "/version", host })).status, 200);
      const upgraded = await series("ferry_app_requests_total", 'status_class="1xx"', app);
      const bytes = await series("ferry_app_response_bytes_total", "", app);
      const got = await new Promise<string[]>((resolve, reject) => {
        const out: string[] = [];
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { Host: host }, handshakeTimeout: 20_000 });
        const timer = setTimeout(() => {
          ws.terminate();
          reject(new Error("Cannot finish the WebSocket exchange: timed out"));
        }, 20_000);
        ws.on("message", (d: Buffer) => {
          out.push(d.toString("utf8"));
          if (out.length === 1) ws.send("hello");
          else ws.close(1000);
        });
        ws.on("close", () => {
          clearTimeout(timer);
          resolve(out);
        });
        ws.on("error", (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
      t.regex(got[0] ?? "", /^welcome \d+$/);
      t.is(got[1], "hello");
      // Two unmasked frames from the app at least: a 2-byte header each, then the payload.
      const atLeast = 2 + (got[0] ?? "").length + 2 + "hello".length;
      await waitFor(async () => (await series("ferry_app_requests_total", 'status_class="1xx"', app)) === upgraded + 1, { timeoutMs: 10_000, intervalMs: 100, what: "the WebSocket to be counted" });
      const moved = (await series("ferry_app_response_bytes_total", "", app)) - bytes;
      t.true(moved >= atLeast && moved <= atLeast + 8, `response bytes moved by ${moved}, expected ${atLeast} (+ a close frame)`);
    });

    // The client hangs up while the app works on its request (docs/metrics.md):
    // nginx notices at once, mod_ferry once the wait for the head has gone on
    // for 100 ms; both stop waiting and count "aborted", on either path.
    serial(`${dataPath} path: a request the client abandons before the response head counts once, as aborted`, async (t) => {
      const port = fe().port;
      t.is((await request(port, { path: "/version", host })).status, 200);
      const classes = ["1xx", "2xx", "3xx", "4xx", "5xx", "aborted"];
      const count = (): Promise<number[]> => Promise.all(classes.map((c) => series("ferry_app_requests_total", `status_class="${c}"`, app)));
      const before = await count();
      const delta = async (): Promise<Record<string, number>> => {
        const now = await count();
        return Object.fromEntries(classes.map((c, i) => [c, (now[i] ?? 0) - (before[i] ?? 0)]).filter(([, n]) => n !== 0));
      };
      await t.throwsAsync(request(port, { path: "/slow?ms=1000", host, timeoutMs: 300 }));
      // A companion sent after it and answered after the app answered the
      // abandoned one: once it is counted, so is the abandoned request, once.
      t.is((await request(port, { path: "/slow?ms=2000", host })).status, 200);
      const settled = (d: Record<string, number>): boolean =>
        Object.values(d).reduce((a, b) => a + b, 0) === 2 && (d["2xx"] ?? 0) >= 1;
      await waitFor(async () => settled(await delta()), { timeoutMs: 10_000, intervalMs: 100, what: "both requests to be counted" });
      t.deepEqual(await delta(), { "2xx": 1, aborted: 1 });
    });
  }

  serial(`a reload (${kind === "apache" ? "apachectl graceful" : "nginx -s reload"}) keeps the metrics endpoint, and its counters keep counting from where they were`, async (t) => {
    const srv = fe();
    const ok = 'sum by (instance) (ferry_app_requests_total{status_class="2xx"})';
    const since = Date.now();
    await waitFor(() => scrapedAfter(feTarget, since), { timeoutMs: 15_000, intervalMs: 250, what: "a scrape before the reload" });
    const base = await valueFor(ok, feTarget);
    const spawns = await valueFor("sum by (instance) (ferry_app_spawns_total)", feTarget);
    t.true(base >= 8, String(base));
    await srv.reload();
    for (let i = 0; i < 4; i++) t.is((await request(srv.port, { path: "/version", host: "metered.test" })).status, 200);
    await waitFor(async () => (await valueFor(ok, feTarget)) === base + 4, { timeoutMs: 20_000, intervalMs: 250, what: "the 2xx counter to move by 4 after the reload" });
    // The reload redeployed the app (a new process) and the series kept its app label.
    t.true((await valueFor("sum by (instance) (ferry_app_spawns_total)", feTarget)) > spawns);
    const text = await (await fetch(`http://${feTarget}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    t.is(await promtoolCheck(text), "");
    t.regex(text, /^ferry_app_requests_total\{app="[^"]+\/metered \(production\)",status_class="2xx"\} \d+$/m);
  });
}
