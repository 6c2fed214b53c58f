/**
 * Connection handoff, the default of `ferry start` (docs/standalone.md):
 * client connections are passed to the app processes, which serve them with
 * no proxy hop, while the core still routes new connections to the least busy
 * process and counts every request (status, max requests).
 * `--no-connection-handoff` relays every request.
 */
import test from "ava";
import http from "node:http";
import path from "node:path";
import WebSocket from "ws";
import { FIXTURE_APPS, json, pidGone, pidOf, readyPids, req, startApp, waitFor, type Running } from "../../helpers/standalone.js";

const running: Running[] = [];
test.after.always(async () => { await Promise.all(running.map((r) => r.stop())); });

async function start(app: string, flags: Record<string, unknown> = {}): Promise<Running> {
  const r = await startApp(path.join(FIXTURE_APPS, app), flags); // no flag: handoff is the default
  running.push(r);
  ok200(await req(r.port, "/")); // the first request spawns the first process (relayed)
  await waitFor("a ready process", () => (readyPids(r).length >= 1 ? true : undefined));
  return r;
}

function ok200(res: { status: number }): void {
  if (res.status !== 200) throw new Error(`Cannot start: the first request got ${res.status}`);
}

function processed(r: Running): number {
  return (r.instance.pool.status().groups[0]?.processes ?? []).reduce((n, p) => n + p.processed, 0);
}

/** GET /socket on a kept-alive connection: what the app sees, and the client's own local port. */
async function socketSeen(port: number, agent: http.Agent): Promise<{ seen: { remoteAddress: string | null; remotePort: number | null }; clientPort: number }> {
  return new Promise((resolve, reject) => {
    const q = http.get({ host: "127.0.0.1", port, path: "/socket", agent, signal: AbortSignal.timeout(20_000) }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ seen: JSON.parse(text) as { remoteAddress: string | null; remotePort: number | null }, clientPort: q.socket?.localPort ?? 0 }));
    });
    q.on("error", reject);
  });
}

test("by default the app process serves the client's own connection (it sees the client's address and port)", async (t) => {
  const r = await start("h3-app");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const { seen, clientPort } = await socketSeen(r.port, agent);
  t.is(seen.remoteAddress, "127.0.0.1");
  t.is(seen.remotePort, clientPort);
});

test("--no-connection-handoff relays: the app sees Ferry's connection, not the client's", async (t) => {
  const r = await start("h3-app", { "no-connection-handoff": true });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const { seen, clientPort } = await socketSeen(r.port, agent);
  t.not(seen.remotePort, clientPort);
});

test("a kept-alive connection is served by the app process itself and each request is counted", async (t) => {
  const r = await start("h3-app", { "min-instances": "1" });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const before = processed(r);
  const pids = new Set<number>();
  for (let i = 0; i < 20; i++) pids.add(await pidOf(r.port, "/pid", { agent }));
  t.is(pids.size, 1, "one connection, one process");
  await waitFor("20 requests counted", () => (processed(r) - before >= 20 ? true : undefined), 10_000);
  // The app sees the client as the relay shows it: X-Forwarded-For and -Proto.
  const h = (await json(r.port, "/headers", { agent }))["headers"] as Record<string, string>;
  t.is(h["x-forwarded-for"], "127.0.0.1");
  t.is(h["x-forwarded-proto"], "http");
  // A client's own values: X-Forwarded-For is extended, X-Forwarded-Proto replaced, both last (as the relay sends them).
  const spoof = await json(r.port, "/headers", { agent, headers: { "X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.1", "X-Other": "1" } });
  const raw = spoof["rawHeaders"] as string[];
  t.deepEqual(raw.slice(-4), ["X-Forwarded-For", "10.0.0.1, 127.0.0.1", "X-Forwarded-Proto", "http"]);
  t.is(raw.filter((x) => /^x-forwarded-/i.test(x)).length, 2, "the client's own lines are gone");
  const st = r.instance.pool.status().groups[0]?.processes[0];
  t.is(st?.inFlight, 0);
});

test("new connections go to the least busy process", async (t) => {
  const r = await start("h3-app", { "min-instances": "2", "max-pool-size": "2" });
  await waitFor("2 ready processes", () => (readyPids(r).length >= 2 ? true : undefined));
  const pids = await Promise.all([0, 1, 2, 3].map(() => pidOf(r.port, "/slow?ms=800")));
  t.true(new Set(pids).size >= 2, `pids: ${pids.join(",")}`);
});

test("max-requests recycles a process after N requests on one kept-alive connection; requests keep succeeding", async (t) => {
  const r = await start("h3-app", { "max-requests": "5", "min-instances": "1" });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const first = await pidOf(r.port, "/pid", { agent });
  await waitFor("the first process retired", async () => {
    const res = await req(r.port, "/pid", { agent });
    if (res.status !== 200) throw new Error(`request failed: ${res.status}`);
    return (JSON.parse(res.text) as { pid: number }).pid !== first ? true : undefined;
  }, 20_000, 20);
  t.pass();
});

test("a WebSocket works on a handed-off connection and shows in status as upgraded", async (t) => {
  const r = await start("h3-ws");
  const ws = new WebSocket(`ws://127.0.0.1:${r.port}/ws`, { handshakeTimeout: 20_000 });
  ws.on("error", () => undefined);
  const greeting = await new Promise<string>((resolve) => ws.once("message", (d: Buffer) => resolve(d.toString())));
  t.regex(greeting, /^hello from \d+$/);
  const echoed = new Promise<string>((resolve) => ws.once("message", (d: Buffer) => resolve(d.toString())));
  ws.send("ping");
  t.is(await echoed, "ping");
  await waitFor("one upgraded connection", () => r.instance.pool.status().groups[0]?.processes.find((x) => x.upgraded === 1));
  const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
  ws.close();
  await closed;
  await waitFor("released", () => (r.instance.pool.status().groups[0]?.processes.every((x) => x.upgraded === 0) === true ? true : undefined));
});

test("sticky sessions keep the relay (per-request routing): the flag changes nothing there", async (t) => {
  const r = await start("h3-app", { "sticky-sessions": true });
  const res = await req(r.port, "/pid");
  t.truthy((res.headers["set-cookie"] ?? []).find((c) => c.startsWith("_passenger_route=")), "the relay sets the sticky cookie");
});

test("graceful stop under kept-alive load: requests in flight and those on open connections are answered; only new connections are refused", async (t) => {
  const r = await start("h3-app", { "min-instances": "2", "max-pool-size": "2" });
  await waitFor("2 ready processes", () => (readyPids(r).length >= 2 ? true : undefined));
  let on = true;
  let served = 0;
  const failures: string[] = [];
  const client = async (): Promise<void> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (on) {
        try {
          const res = await req(r.port, "/slow?ms=100", { agent, timeoutMs: 20_000 });
          if (res.status === 200) served++;
          else failures.push(`${res.status}`);
        } catch (e: unknown) {
          // After the stop began, a new connection is refused: that is the end of service, not a failed request.
          if (/ECONNREFUSED/.test(e instanceof Error ? e.message : String(e))) return;
          failures.push(e instanceof Error ? e.message : String(e));
        }
      }
    } finally {
      agent.destroy();
    }
  };
  const clients = [0, 1, 2, 3].map(() => client());
  await waitFor("40 answers", () => (served >= 40 ? true : undefined), 20_000);
  const pids = readyPids(r);
  await r.instance.stop(15_000);
  on = false;
  await Promise.all(clients);
  t.deepEqual(failures, []);
  t.true(pids.every(pidGone), `app pids still alive: ${pids.join(",")}`);
});

for (const [mode, flags] of [["", {}], [" (relay)", { "connection-handoff": false }]] as const) {
  test(`responses carry Ferry's X-Powered-By after the app's own${mode}`, async (t) => {
    const r = await start("h3-app", { "show-version-in-header": false, ...flags });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    const { seen, clientPort } = await socketSeen(r.port, agent);
    t.is(seen.remotePort === clientPort, mode === "", "handed off by default, relayed with the flag off");
    for (const p of ["/pid", "/", "/nocontent", "/cookies", "/head-pairs", "/head-flat"]) {
      const res = await req(r.port, p, { agent });
      t.is(res.headers["x-powered-by"], "Ferry", p);
    }
    const own = await req(r.port, "/powered", { agent });
    const values: string[] = [];
    for (let i = 0; i + 1 < own.rawHeaders.length; i += 2) {
      if (own.rawHeaders[i]?.toLowerCase() === "x-powered-by") values.push(own.rawHeaders[i + 1] ?? "");
    }
    t.deepEqual(values, ["Express", "Ferry"]);
  });
}

for (const abort of [true, false]) {
  test(`a rolling restart ${abort ? "closes a handed-off WebSocket (default)" : "waits for a handed-off WebSocket with --no-abort-websockets-on-process-shutdown"}`, async (t) => {
    const r = await start("h3-ws", abort ? {} : { "no-abort-websockets-on-process-shutdown": true });
    const ws = new WebSocket(`ws://127.0.0.1:${r.port}/ws`, { handshakeTimeout: 20_000 });
    ws.on("error", () => undefined);
    const greeting = await new Promise<string>((resolve) => ws.once("message", (d: Buffer) => resolve(d.toString())));
    const pid = Number(/\d+$/.exec(greeting)?.[0]);
    await waitFor("the upgrade counted", () => r.instance.pool.status().groups[0]?.processes.find((x) => x.pid === pid && x.upgraded === 1));
    const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
    t.is(await r.instance.pool.restartApp(r.config.appRoot), 1);
    await waitFor("a new process ready", () => (readyPids(r).some((p) => p !== pid) ? true : undefined), 30_000);
    if (abort) {
      await closed;
      await waitFor(`pid ${pid} gone`, () => (pidGone(pid) ? true : undefined), 15_000);
      return;
    }
    // Still open and echoing well after the new process took over.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const echoed = new Promise<string>((resolve) => ws.once("message", (d: Buffer) => resolve(d.toString())));
    ws.send("still here");
    t.is(await echoed, "still here");
    t.false(pidGone(pid));
    ws.close();
    await closed;
    await waitFor(`pid ${pid} gone once its WebSocket closed`, () => (pidGone(pid) ? true : undefined), 15_000);
  });
}

test("a connection relayed for want of a ready process is closed after its answer; the next one is handed off", async (t) => {
  const r = await startApp(path.join(FIXTURE_APPS, "h3-app"), { "min-instances": "1" });
  running.push(r);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  // No process yet (the tests start none in advance): the relay serves it while the first one spawns.
  const first = await req(r.port, "/pid", { agent });
  t.is(first.status, 200);
  t.is(first.headers["connection"], "close");
  const { seen, clientPort } = await socketSeen(r.port, agent);
  t.is(seen.remotePort, clientPort, "the next connection is the app's own");
});
