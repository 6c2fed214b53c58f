/**
 * End-to-end cases every front end must pass the same way: the app pool as
 * a client (and `ps`) sees it. Process counts are observed from the OS
 * (processes whose cwd or command line is inside the app's root), not from
 * ferry's own status. Run through Apache by test/e2e/pool.test.ts and through
 * nginx by test/e2e/nginx/pool.test.ts.
 *
 * The cap on processes per app is server-wide (PassengerMaxInstancesPerApp /
 * passenger_max_instances_per_app in http{}: nginx takes it only there).
 */
import type { TestFn } from "ava";
import { utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { prepareApp, processesUnder, waitFor } from "../../helpers/apache.js";
import { getJson, request, type HttpResult } from "../../helpers/e2e-http.js";
import { type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

const IDLE_TIME_S = 3;
const MAX_INSTANCES = 3;

export function poolCases(test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {}): void {
  const apps = { scale: "", grow: "", crash: "", restart: "", sticky: "", queue: "" };
  const { fe, serial } = frontEndSuite(test, kind, "pool", async (root) => {
    for (const name of Object.keys(apps) as Array<keyof typeof apps>) apps[name] = await prepareApp(root, "e2e-app", name);
    const site = (name: keyof typeof apps, options: Readonly<Record<string, string | number>> = {}): { serverName: string; appRoot: string; options: Readonly<Record<string, string | number>> } =>
      ({ serverName: `${name}.test`, appRoot: apps[name], options });
    return {
      server: { PoolIdleTime: IDLE_TIME_S, MaxPoolSize: 12, StatThrottleRate: 0, MaxInstancesPerApp: MAX_INSTANCES },
      sites: [
        site("scale", { MinInstances: 1 }),
        site("grow", { MinInstances: 1 }),
        site("crash"),
        site("restart"),
        site("sticky", { StickySessions: "on", ForceMaxConcurrentRequestsPerProcess: 1 }),
        site("queue", { ForceMaxConcurrentRequestsPerProcess: 1, MaxRequestQueueSize: 2 }),
      ],
    };
  }, opts);

  async function pidOf(host: string): Promise<number> {
    const body = await getJson(fe().port, "/pid", host);
    if (typeof body.pid !== "number") throw new Error("Cannot read pid: no number");
    return body.pid;
  }

  /** Run `workers` clients doing back-to-back CPU-bound requests (50 ms each) until `done()` or the deadline. */
  async function sustainedLoad(host: string, workers: number, done: (pids: ReadonlySet<number>) => boolean, timeoutMs: number, onEach: () => void = () => {}): Promise<Set<number>> {
    const pids = new Set<number>();
    const deadline = Date.now() + timeoutMs;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop && Date.now() < deadline) {
        const b = await getJson(fe().port, "/cpu?ms=50", host);
        if (typeof b.pid === "number") pids.add(b.pid);
        onEach();
        if (done(pids)) stop = true;
      }
    };
    await Promise.all(Array.from({ length: workers }, () => worker()));
    return pids;
  }

  serial("concurrent load is served by at least 2 processes (no per-process limit set)", async (t) => {
    await pidOf("scale.test"); // first spawn
    const pids = await sustainedLoad("scale.test", 8, (p) => p.size >= 2, 40_000);
    t.true(pids.size >= 2, `pids seen: ${[...pids].join(",")}`);
  });

  serial("the pool grows to the per-app maximum under load and shrinks to the minimum when idle", async (t) => {
    await pidOf("grow.test");
    t.is(processesUnder(apps.grow).length, 1);
    let maxProcs = 1;
    const observe = (): void => {
      maxProcs = Math.max(maxProcs, processesUnder(apps.grow).length);
    };
    await sustainedLoad("grow.test", 10, () => maxProcs >= MAX_INSTANCES, 40_000, observe);
    // Keep the load a little longer: it must not grow past the cap.
    const until = Date.now() + 1500;
    await sustainedLoad("grow.test", 10, () => Date.now() > until, 10_000, observe);
    t.is(maxProcs, MAX_INSTANCES);
    await waitFor(() => processesUnder(apps.grow).length === 1, {
      timeoutMs: (IDLE_TIME_S + 25) * 1000,
      intervalMs: 250,
      what: "the pool to shrink back to 1 process",
    });
    t.is(processesUnder(apps.grow).length, 1);
    t.is((await request(fe().port, { path: "/", host: "grow.test" })).status, 200);
  });

  serial("an app dying mid-request gives 502, then the app is served again by a new process", async (t) => {
    const before = await pidOf("crash.test");
    const res = await request(fe().port, { path: "/crash", host: "crash.test" });
    t.is(res.status, 502, res.text.slice(0, 300));
    const after = await waitFor(
      async () => {
        const r = await request(fe().port, { path: "/pid", host: "crash.test" });
        return r.status === 200 ? (JSON.parse(r.text) as { pid: number }).pid : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: "the crashed app to serve again" },
    );
    t.not(after, before);
  });

  serial("touching tmp/restart.txt restarts the app with no failed request", async (t) => {
    const before = await pidOf("restart.test");
    const file = path.join(apps.restart, "tmp", "restart.txt");
    await writeFile(file, "");
    const now = new Date();
    await utimes(file, now, now);
    const failures: HttpResult[] = [];
    const after = await waitFor(
      async () => {
        const r = await request(fe().port, { path: "/pid", host: "restart.test" });
        if (r.status !== 200) failures.push(r);
        const pid = r.status === 200 ? (JSON.parse(r.text) as { pid: number }).pid : before;
        return pid !== before ? pid : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: "a new pid after restart.txt" },
    );
    t.not(after, before);
    t.deepEqual(failures.map((f) => f.status), []);
  });

  function routeCookie(res: HttpResult): string | undefined {
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      if (res.rawHeaders[i]?.toLowerCase() === "set-cookie") {
        const m = /^(_passenger_route=[^;]+)/.exec(res.rawHeaders[i + 1] ?? "");
        if (m?.[1] !== undefined) return m[1];
      }
    }
    return undefined;
  }

  serial("sticky sessions: a route cookie keeps a client on its process", async (t) => {
    // Two concurrent requests with a per-process limit of 1 land on two processes.
    const cookies = new Map<number, string>();
    await waitFor(
      async () => {
        const batch = await Promise.all([0, 1].map(() => request(fe().port, { path: "/slow?ms=600", host: "sticky.test" })));
        for (const r of batch) {
          const c = routeCookie(r);
          if (r.status === 200 && c !== undefined) cookies.set((JSON.parse(r.text) as { pid: number }).pid, c);
        }
        return cookies.size >= 2;
      },
      { timeoutMs: 40_000, intervalMs: 50, what: "route cookies for 2 processes" },
    );
    t.is(cookies.size, 2);
    for (const [pid, cookie] of cookies) {
      for (let i = 0; i < 6; i++) {
        const r = await request(fe().port, { path: "/pid", host: "sticky.test", headers: { Cookie: cookie } });
        t.is(r.status, 200);
        t.is((JSON.parse(r.text) as { pid: number }).pid, pid);
      }
    }
  });

  serial("a full request queue answers 503 at once while queued requests are served", async (t) => {
    await pidOf("queue.test"); // the single process is up
    const results = await Promise.all(
      Array.from({ length: 8 }, () => request(fe().port, { path: "/slow?ms=1500", host: "queue.test", timeoutMs: 60_000 })),
    );
    const statuses = results.map((r) => r.status).sort();
    t.true(statuses.includes(503), statuses.join(","));
    t.true(statuses.includes(200), statuses.join(","));
    t.true(statuses.every((s) => s === 200 || s === 503), statuses.join(","));
    // At most the processes' capacity (3 processes x 1) + 2 queued succeed; the rest are rejected.
    t.true(statuses.filter((s) => s === 200).length <= MAX_INSTANCES + 2, statuses.join(","));
    t.is((await request(fe().port, { path: "/", host: "queue.test" })).status, 200);
  });
}
