/**
 * Rolling restarts through real processes: restart.txt with zero failed
 * requests under load, a broken deploy that keeps the old code serving, and
 * `restart` through the admin API.
 */
import test from "ava";
import { promises as fsp } from "node:fs";
import http from "node:http";
import path from "node:path";
import { controlRequest, fetchStatus, readInstance, restartApp } from "../../../core/src/control/client.js";
import { copyApp, makeTmp, pidOf, req, startApp, waitFor, type Running } from "../../helpers/standalone.js";

const running: Running[] = [];
const tmps: string[] = [];
test.after.always(async () => {
  await Promise.all(running.map((r) => r.stop()));
  await Promise.all(tmps.map((d) => fsp.rm(d, { recursive: true, force: true })));
});

async function appCopy(): Promise<string> {
  const tmp = await makeTmp("ferry-h3-app");
  tmps.push(tmp);
  const dir = await copyApp("h3-app", tmp);
  await fsp.mkdir(path.join(dir, "tmp"), { mode: 0o755 });
  return dir;
}

async function setVersion(dir: string, version: string): Promise<void> {
  const file = path.join(dir, "app.js");
  const src = await fsp.readFile(file, "utf8");
  await fsp.writeFile(file, src.replace(/const VERSION = "[^"]*";/, `const VERSION = "${version}";`));
}

async function touchRestart(dir: string): Promise<void> {
  const f = path.join(dir, "tmp", "restart.txt");
  await fsp.writeFile(f, String(Date.now()));
  const t = new Date();
  await fsp.utimes(f, t, t);
}

/**
 * Clients requesting /pid in loops; collects versions and any failure. With
 * `keepAlive` each client keeps its connection open between requests (as a
 * load balancer in front does).
 */
function load(port: number, clients: number, keepAlive = false): { versions: string[]; failures: string[]; stop(): Promise<void> } {
  let on = true;
  const versions: string[] = [];
  const failures: string[] = [];
  const agents: http.Agent[] = [];
  const loop = async (): Promise<void> => {
    const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
    if (agent !== false) agents.push(agent);
    while (on) {
      try {
        const r = await req(port, "/pid", { timeoutMs: 20_000, agent });
        if (r.status !== 200) failures.push(`${r.status} ${r.text.slice(0, 200)}`);
        else versions.push((JSON.parse(r.text) as { version: string }).version);
      } catch (e: unknown) {
        failures.push(e instanceof Error ? e.message : String(e));
      }
    }
  };
  const all = Array.from({ length: clients }, () => loop());
  return { versions, failures, async stop() { on = false; await Promise.all(all); for (const a of agents) a.destroy(); } };
}

for (const [handoff, keepAlive] of [[false, false], [true, false], [true, true]]) {
  const how = `${handoff ? "" : " (relay, --no-connection-handoff)"}${keepAlive ? " with kept-alive client connections" : ""}`;
  test(`touching restart.txt serves the new code with zero failed requests during the rolling restart${how}`, async (t) => {
    const dir = await appCopy();
    const r = await startApp(dir, { "min-instances": "2", "max-pool-size": "4", "connection-handoff": handoff });
    running.push(r);
    await pidOf(r.port);
    const l = load(r.port, 4, keepAlive);
    try {
      await waitFor("v1 answers", () => (l.versions.includes("v1") ? true : undefined));
      await setVersion(dir, "v2");
      await touchRestart(dir);
      await waitFor("20 v2 answers in a row", () => {
        const tail = l.versions.slice(-20);
        return tail.length === 20 && tail.every((v) => v === "v2") ? true : undefined;
      }, 40_000);
    } finally {
      await l.stop();
    }
    t.deepEqual(l.failures, []);
    t.true(l.versions.includes("v1") && l.versions.includes("v2"));
    const st = r.instance.pool.status().groups[0];
    t.is(st?.lastError ?? null, null);
  });
}

test("a broken deploy keeps the old code serving and shows the error in status", async (t) => {
  const dir = await appCopy();
  const r = await startApp(dir, { "min-instances": "1", environment: "production" });
  running.push(r);
  await pidOf(r.port);
  const good = await fsp.readFile(path.join(dir, "app.js"), "utf8");
  await fsp.writeFile(path.join(dir, "app.js"), 'throw new Error("broken deploy");\n');
  await touchRestart(dir);
  const l = load(r.port, 2);
  try {
    await waitFor("the failed restart in status", () => {
      const g = r.instance.pool.status().groups[0];
      return g !== undefined && g.lastError !== null ? g.lastError : undefined;
    }, 40_000);
    const n = l.versions.length;
    await waitFor("more answers after the failure", () => (l.versions.length >= n + 5 ? true : undefined));
  } finally {
    await l.stop();
  }
  t.deepEqual(l.failures, []);
  t.true(l.versions.length > 0 && l.versions.every((v) => v === "v1"));
  const inst = await readInstance(r.instance.instanceDir);
  if (inst === undefined) throw new Error("no instance");
  const status = await fetchStatus(inst);
  t.regex(status.groups[0]?.lastError?.output ?? "", /broken deploy/);

  // Fixing the app and touching restart.txt again deploys the fix.
  await fsp.writeFile(path.join(dir, "app.js"), good.replace('const VERSION = "v1";', 'const VERSION = "v3";'));
  await touchRestart(dir);
  await waitFor("v3 served", async () => ((await req(r.port, "/pid")).text.includes('"v3"') ? true : undefined), 40_000);
});

test("restart through the admin API is rolling and needs the admin token", async (t) => {
  const dir = await appCopy();
  const r = await startApp(dir, { "min-instances": "1" });
  running.push(r);
  const before = await pidOf(r.port);
  const inst = await readInstance(r.instance.instanceDir);
  if (inst === undefined) throw new Error("no instance");

  const denied = await controlRequest(inst.socketPath, { method: "POST", path: "/restart", body: { app: dir } });
  t.is(denied.status, 403, "the core's own uid may read status but not restart without the token");
  const wrong = await controlRequest(inst.socketPath, { method: "POST", path: "/restart", body: { app: dir }, token: "nope" });
  t.is(wrong.status, 401);
  const mode = (await fsp.stat(path.join(inst.dir, "admin_token"))).mode & 0o777;
  t.is(mode, 0o600);
  await t.throwsAsync(restartApp(inst, "/no/such/app"), { message: /no such app group/ });

  const l = load(r.port, 2);
  try {
    t.is(await restartApp(inst, dir), 1);
    await waitFor("a new pid", async () => ((await pidOf(r.port)) !== before ? true : undefined), 40_000);
  } finally {
    await l.stop();
  }
  t.deepEqual(l.failures, []);
});
