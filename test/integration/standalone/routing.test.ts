/** Standalone routing through real app processes: least-busy spreading and sticky sessions. */
import test from "ava";
import http from "node:http";
import path from "node:path";
import { FIXTURE_APPS, pidOf, readyPids, req, startApp, waitFor, type Running } from "../../helpers/standalone.js";

const running: Running[] = [];
test.after.always(async () => { await Promise.all(running.map((r) => r.stop())); });

async function start(flags: Record<string, unknown>): Promise<Running> {
  const r = await startApp(path.join(FIXTURE_APPS, "h3-app"), flags);
  running.push(r);
  return r;
}

test("concurrent slow requests spread over at least 2 pids (least busy)", async (t) => {
  const r = await start({ "min-instances": "2", "max-pool-size": "4" });
  await pidOf(r.port);
  await waitFor("2 ready processes", () => (readyPids(r).length >= 2 ? true : undefined));
  const pids = await Promise.all([0, 1, 2, 3].map(() => pidOf(r.port, "/slow?ms=800")));
  t.true(new Set(pids).size >= 2, `pids: ${pids.join(",")}`);
});

test("a sticky cookie pins a client to one pid while cookieless clients spread", async (t) => {
  const r = await start({ "min-instances": "2", "max-pool-size": "4", "sticky-sessions": true });
  const first = await req(r.port, "/pid");
  t.is(first.status, 200);
  const setCookie = first.headers["set-cookie"] ?? [];
  const route = setCookie.find((c) => c.startsWith("_passenger_route="));
  t.truthy(route, `Set-Cookie: ${setCookie.join(" | ")}`);
  t.regex(route ?? "", /^_passenger_route=\d+; Path=\/; SameSite=Lax$/);
  t.false(/HttpOnly/i.test(route ?? ""));
  t.false(/Secure/i.test(route ?? ""), "no Secure on plain HTTP");
  const cookie = (route ?? "").split(";")[0] ?? "";
  const pinned = (JSON.parse(first.text) as { pid: number }).pid;
  await waitFor("2 ready processes", () => (readyPids(r).length >= 2 ? true : undefined));

  // While the pinned client sends concurrent requests, all land on its pid.
  const pinnedPids = await Promise.all([0, 1, 2, 3].map(() => pidOf(r.port, "/slow?ms=300", { headers: { Cookie: `a=b; ${cookie}` } })));
  t.deepEqual(new Set(pinnedPids), new Set([pinned]));
  // Cookieless clients spread.
  const free = await Promise.all([0, 1, 2, 3].map(() => pidOf(r.port, "/slow?ms=800")));
  t.true(new Set(free).size >= 2, `cookieless pids: ${free.join(",")}`);
});

test("a stale sticky cookie is served by a live process and re-pinned with a new cookie", async (t) => {
  const r = await start({ "sticky-sessions": true, "sticky-sessions-cookie-name": "route" });
  const res = await req(r.port, "/pid", { headers: { Cookie: "route=12345" } });
  t.is(res.status, 200);
  const cookie = (res.headers["set-cookie"] ?? []).find((c) => c.startsWith("route="));
  t.truthy(cookie);
  t.not(cookie, undefined);
  t.false((cookie ?? "").startsWith("route=12345;"));
});

test("sticky sessions per request: one kept-alive connection carrying two sessions' cookies alternately reaches each session's process every time", async (t) => {
  // A load balancer in front multiplexes many users onto one keep-alive connection.
  const r = await start({ "min-instances": "2", "max-pool-size": "2", "sticky-sessions": true }); // handoff is on by default: sticky apps keep the relay
  await pidOf(r.port);
  await waitFor("2 ready processes", () => (readyPids(r).length >= 2 ? true : undefined));
  // Two sessions pinned to two different processes (concurrent first requests spread).
  const firsts = await Promise.all([0, 1].map(() => req(r.port, "/slow?ms=500")));
  const sessions = firsts.map((f) => ({
    cookie: ((f.headers["set-cookie"] ?? []).find((c) => c.startsWith("_passenger_route=")) ?? "").split(";")[0] ?? "",
    pid: (JSON.parse(f.text) as { pid: number }).pid,
  }));
  t.not(sessions[0]?.pid, sessions[1]?.pid, "the two sessions live on different processes");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const sockets = new Set<unknown>();
  agent.on("free", (s) => sockets.add(s));
  for (let i = 0; i < 12; i++) {
    const s = sessions[i % 2];
    if (s === undefined) return t.fail("no session");
    const res = await req(r.port, "/pid", { agent, headers: { Cookie: s.cookie } });
    t.is(res.status, 200);
    t.is((JSON.parse(res.text) as { pid: number }).pid, s.pid, `request ${i + 1} (session ${i % 2})`);
  }
  t.is(sockets.size, 1, "every request went over the same client connection");
});
