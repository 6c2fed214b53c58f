/**
 * End-to-end cases every front end must pass the same way: the
 * shared-hosting scenario (issue 4), with the front end run as root. 30
 * sites, each app owned by a different user, PassengerMaxPoolSize 8.
 * Requests go to all of them round-robin (a few clients in parallel): every
 * request succeeds, the process table never shows more than 8 app processes
 * (sampled continuously, from /proc, not from Ferry's own status), and each
 * app answers as its owner (uid/gid reported by the app and seen in /proc).
 * Run through Apache by test/e2e/security/shared-hosting.test.ts and through
 * nginx by test/e2e/nginx/security-shared-hosting.test.ts; each names its 30
 * users after its front end (testUserName), so both run in parallel.
 */
import type { TestFn } from "ava";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "../../helpers/apache.js";
import { request } from "../../helpers/e2e-http.js";
import { ensureUsers, prepareTenantApp, procIdentity, removeUser, testUserName, type TestUser } from "../../helpers/users.js";
import { type AppSite, type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

const FIXTURE = path.join(REPO_ROOT, "test/fixtures/apps/tenant-app");
const TENANTS = 30;
const POOL_SIZE = 8;
const ROUNDS = 3;
const CLIENTS = 4;

/** Live (non-zombie) processes whose cwd is inside `dir`, with their uid/gid. */
function appProcesses(dir: string): Array<{ pid: number; uid: number; gid: number; cwd: string }> {
  const out: Array<{ pid: number; uid: number; gid: number; cwd: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (!cwd.startsWith(dir + "/")) continue;
      const status = readFileSync(`/proc/${entry}/status`, "utf8");
      if (/^State:\s+[ZX]/m.test(status)) continue;
      const id = procIdentity(status);
      out.push({ pid: Number(entry), uid: id.uid, gid: id.gid, cwd });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export function sharedHostingCases(test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {}): void {
  const names = Array.from({ length: TENANTS }, (_, i) => testUserName(kind, `h${String(i + 1).padStart(2, "0")}`));
  let users: TestUser[] = [];
  let appsDir = "";
  const { fe, serial } = frontEndSuite(test, kind, "hosting", async (root) => {
    appsDir = path.join(root, "apps");
    users = await ensureUsers(names);
    const sites: AppSite[] = [];
    for (const [i, u] of users.entries()) {
      sites.push({ serverName: `t${i + 1}.test`, appRoot: await prepareTenantApp(root, FIXTURE, `t${i + 1}`, u) });
    }
    return { server: { MaxPoolSize: POOL_SIZE, MinInstances: 1, StartTimeout: 60 }, sites };
  }, opts);
  test.after.always(async () => {
    for (const n of names) await removeUser(n).catch(() => undefined);
  });

  serial("30 tenants round-robin under PassengerMaxPoolSize 8: all served, never more than 8 app processes, each as its owner", async (t) => {
    const port = fe().port;
    // Sample the process table continuously while the requests run.
    let maxSeen = 0;
    let samples = 0;
    let sampling = true;
    const wrongOwner: string[] = [];
    const sampler = (async (): Promise<void> => {
      while (sampling) {
        const procs = appProcesses(appsDir);
        samples++;
        maxSeen = Math.max(maxSeen, procs.length);
        for (const p of procs) {
          const i = Number(/\/t(\d+)(\/|$)/.exec(p.cwd.slice(appsDir.length))?.[1] ?? "0") - 1;
          const u = users[i];
          if (u === undefined || p.uid !== u.uid || p.gid !== u.gid) wrongOwner.push(`${p.pid} in ${p.cwd} as ${p.uid}:${p.gid}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const order: number[] = [];
    for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < TENANTS; i++) order.push(i);
    const failures: string[] = [];
    let served = 0;
    let next = 0;
    const client = async (): Promise<void> => {
      for (let k = next++; k < order.length; k = next++) {
        const i = order[k] ?? 0;
        const u = users[i];
        const res = await request(port, { path: "/id", host: `t${i + 1}.test`, timeoutMs: 90_000 }).catch((e: unknown) => ({
          status: 0, text: e instanceof Error ? e.message : String(e),
        }));
        if (res.status !== 200) {
          failures.push(`t${i + 1}: ${res.status} ${res.text.slice(0, 200)}`);
          continue;
        }
        const body = JSON.parse(res.text) as { uid: number; gid: number; env: Record<string, string> };
        if (u === undefined || body.uid !== u.uid || body.gid !== u.gid || body.env["USER"] !== u.name) {
          failures.push(`t${i + 1}: answered as ${body.uid}:${body.gid} (${body.env["USER"] ?? "?"}), expected ${u?.uid}:${u?.gid}`);
          continue;
        }
        served++;
      }
    };
    try {
      await Promise.all(Array.from({ length: CLIENTS }, () => client()));
    } finally {
      sampling = false;
      await sampler;
    }
    t.deepEqual(failures, []);
    t.is(served, TENANTS * ROUNDS);
    t.true(samples > 10, `only ${samples} samples`);
    t.true(maxSeen <= POOL_SIZE, `${maxSeen} app processes seen at once`);
    t.true(maxSeen >= 2, `${maxSeen} app processes seen at once (sampler saw nothing?)`);
    t.deepEqual(wrongOwner, []);
    t.log(`${served} requests, at most ${maxSeen} app processes in ${samples} samples`);
  });
}
