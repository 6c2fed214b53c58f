/**
 * End-to-end cases every front end must pass the same way: per-app limits
 * (issue 4), with the front end run as root and apps owned by a test user:
 * an app over PassengerMemoryLimit is replaced (and the core logs why); a
 * request over PassengerMaxRequestTime gets 504 and its process is recycled.
 * Run through Apache by test/e2e/security/limits.test.ts (which adds the
 * .htaccess cases: nginx has no per-directory config files) and through
 * nginx by test/e2e/nginx/security-limits.test.ts; each names its test user
 * after its front end (testUserName), so both run in parallel.
 */
import type { TestFn } from "ava";
import path from "node:path";
import { REPO_ROOT, isAlive, waitFor } from "../../helpers/apache.js";
import { getJson, request } from "../../helpers/e2e-http.js";
import { ensureUser, prepareTenantApp, removeUser, testUserName, type TestUser } from "../../helpers/users.js";
import { type FrontEnd, type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

const FIXTURE = path.join(REPO_ROOT, "test/fixtures/apps/tenant-app");
const MEMORY_LIMIT_MB = 120;
const MAX_REQUEST_TIME_S = 2;

/** The fixture of the tenant apps these cases serve (a front end's own cases may add more). */
export const TENANT_FIXTURE = FIXTURE;

export function limitsCases(
  test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {},
): { fe: () => FrontEnd; owner: () => TestUser; ownerName: string } {
  const ownerName = testUserName(kind, "l");
  let owner: TestUser | undefined;
  const { fe, serial } = frontEndSuite(test, kind, "limits", async (root) => {
    const u = owner = await ensureUser(ownerName);
    const mem = await prepareTenantApp(root, FIXTURE, "mem", u);
    const slow = await prepareTenantApp(root, FIXTURE, "slow", u);
    return {
      server: { MaxPoolSize: 6 },
      sites: [
        { serverName: "mem.test", appRoot: mem, options: { MemoryLimit: MEMORY_LIMIT_MB } },
        { serverName: "slow.test", appRoot: slow, options: { MaxRequestTime: MAX_REQUEST_TIME_S } },
      ],
    };
  }, opts);
  test.after.always(async () => {
    await removeUser(ownerName).catch(() => undefined);
  });

  async function pidOf(host: string): Promise<number> {
    const body = await getJson(fe().port, "/pid", host);
    if (typeof body["pid"] !== "number") throw new Error("Cannot read pid: no number");
    return body["pid"];
  }

  serial("an app over PassengerMemoryLimit is replaced by a new process, with a log line", async (t) => {
    const before = await pidOf("mem.test");
    const grown = await getJson(fe().port, `/alloc?mb=${MEMORY_LIMIT_MB + 60}`, "mem.test");
    t.is(grown["pid"], before);
    t.true(Number(grown["rss"]) > MEMORY_LIMIT_MB * 1024 * 1024, `rss ${String(grown["rss"])}`);
    // The pool samples RSS every few seconds; the process is retired after its requests, a new one serves.
    const after = await waitFor(async () => {
      const p = await pidOf("mem.test");
      return p !== before ? p : undefined;
    }, { timeoutMs: 40_000, intervalMs: 500, what: "a new process after the memory limit" });
    t.not(after, before);
    await waitFor(() => !isAlive(before), { timeoutMs: 30_000, what: `the old process ${before} to exit` });
    t.regex(fe().server.errorLog(), /memory limit/);
  });

  serial("a request over PassengerMaxRequestTime gets 504 and its process is recycled", async (t) => {
    const before = await pidOf("slow.test");
    const started = Date.now();
    const res = await request(fe().port, { path: "/sleep?ms=30000", host: "slow.test", timeoutMs: 60_000 });
    const took = Date.now() - started;
    t.is(res.status, 504, res.text.slice(0, 300));
    t.true(took >= MAX_REQUEST_TIME_S * 1000 - 100, `answered after ${took} ms`);
    t.true(took < 20_000, `answered after ${took} ms`);
    await waitFor(() => !isAlive(before), { timeoutMs: 30_000, what: `the timed-out process ${before} to exit` });
    const after = await pidOf("slow.test");
    t.not(after, before);
    // Short requests are unaffected.
    t.is((await request(fe().port, { path: "/sleep?ms=100", host: "slow.test" })).status, 200);
  });

  return {
    fe,
    ownerName,
    owner: () => {
      if (owner === undefined) throw new Error("Cannot run: the test user was not created");
      return owner;
    },
  };
}
