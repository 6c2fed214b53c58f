/**
 * `ferry start` deadlines (issue 13): a slow-header client is cut after
 * --header-timeout; a slow-body client gets 408 after --request-timeout; an
 * app that does not answer gets its client a 504 after --request-timeout;
 * meanwhile other clients are served. Values outside their range are refused.
 */
import test from "ava";
import net from "node:net";
import path from "node:path";
import { FIXTURE_APPS, json, startApp, waitFor, type Running } from "../../helpers/standalone.js";

/** Both paths apply the deadlines: the loader on a handed-off connection (the default), the front server on the relay. */
const MODES = { "": {}, " (relay)": { "connection-handoff": false } } as const;
const apps = new Map<string, Running>();

test.before(async () => {
  await Promise.all(Object.entries(MODES).map(async ([mode, flags]) => {
    const r = await startApp(path.join(FIXTURE_APPS, "h3-app"), { "header-timeout": "1", "request-timeout": "2", "metrics-listen": "127.0.0.1:0", ...flags });
    apps.set(mode, r);
    await json(r.port, "/pid"); // the app is up
  }));
});

test.after.always(async () => {
  await Promise.all([...apps.values()].map((r) => r.stop()));
});

function running(mode: string): Running {
  const r = apps.get(mode);
  if (r === undefined) throw new Error("Cannot run: the instance did not start");
  return r;
}

/** The instance's ferry_app_requests_total of one status class (docs/metrics.md). */
async function requestsCounted(mode: string, statusClass: string): Promise<number> {
  const url = running(mode).instance.metricsUrl;
  if (url === undefined) throw new Error("Cannot find the metrics URL");
  const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split("\n").find((l) => l.startsWith("ferry_app_requests_total{") && l.includes(`status_class="${statusClass}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** Open a raw connection, send `first`, then nothing; resolves with what came back and when the server closed. */
function rawClient(port: number, first: string, dripMs = 0, drip = ""): Promise<{ text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const s = net.connect(port, "127.0.0.1");
    let text = "";
    let timer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => {
      s.destroy();
      reject(new Error(`Cannot see the server close the connection within 15 s (got ${JSON.stringify(text)})`));
    }, 15_000);
    s.on("connect", () => {
      s.write(first);
      if (dripMs > 0) timer = setInterval(() => s.write(drip), dripMs);
    });
    s.on("data", (d) => (text += d.toString("latin1")));
    s.on("error", () => undefined);
    s.on("close", () => {
      clearTimeout(giveUp);
      clearInterval(timer);
      resolve({ text, ms: Date.now() - started });
    });
  });
}

for (const mode of Object.keys(MODES)) {
  test(`a client that never finishes its request head is cut after --header-timeout, others are served${mode}`, async (t) => {
    const p = rawClient(running(mode).port, "GET /pid HTTP/1.1\r\nHost: x\r\nX-Slow: ", 300, "a");
    const during = await json(running(mode).port, "/pid");
    t.is(typeof during["pid"], "number");
    const { ms } = await p;
    t.true(ms >= 900 && ms < 8_000, `closed after ${ms} ms`);
  });

  test(`a client that sends its body too slowly gets 408 after --request-timeout${mode}`, async (t) => {
    const { text, ms } = await rawClient(running(mode).port, "POST /hash HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nxx", 200, "x");
    t.regex(text, /^HTTP\/1\.1 408 /);
    t.true(ms >= 1_900 && ms < 10_000, `closed after ${ms} ms`);
  });

  test(`an app that does not answer within --request-timeout gets its client a 504, counted under 5xx; the next request is served${mode}`, async (t) => {
    const counted = await requestsCounted(mode, "5xx");
    const started = Date.now();
    const r = await fetch(`http://127.0.0.1:${running(mode).port}/slow?ms=30000`);
    const ms = Date.now() - started;
    t.is(r.status, 504);
    t.regex(await r.text(), /did not answer within 2 s/);
    t.true(ms >= 1_900 && ms < 10_000, `answered after ${ms} ms`);
    t.is(typeof (await json(running(mode).port, "/pid"))["pid"], "number");
    // The 504 is what the client got, so that is what the metrics count (no other case here answers 5xx).
    await waitFor("the 504 to be counted", async () => ((await requestsCounted(mode, "5xx")) === counted + 1 ? true : undefined), 5_000, 50);
    t.pass();
  });

  test(`a request the client abandons before the response head counts as aborted${mode}`, async (t) => {
    const counted = await requestsCounted(mode, "aborted");
    await t.throwsAsync(fetch(`http://127.0.0.1:${running(mode).port}/slow?ms=1000`, { signal: AbortSignal.timeout(300) }), { any: true });
    await waitFor("the abandoned request to be counted", async () => ((await requestsCounted(mode, "aborted")) === counted + 1 ? true : undefined), 5_000, 50);
    t.pass();
  });

  test(`a streaming response whose head went out in time is not cut by --request-timeout${mode}`, async (t) => {
    const r = await fetch(`http://127.0.0.1:${running(mode).port}/drip?chunks=6&interval=500`);
    t.is(r.status, 200);
    const body = await r.text();
    t.regex(body, /chunk 5\ndone\n$/, "all chunks over 2.5 s arrived");
  });
}
