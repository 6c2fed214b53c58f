/**
 * Black-box compatibility through a real Apache + mod_ferry: the shared cases
 * of test/e2e/shared/compat-http-cases.ts (nginx runs them in
 * test/e2e/nginx/compat-http.test.ts) and two Apache-only ones:
 * PassengerMaxInstances (a per-app process cap; nginx's
 * passenger_max_instances is Passenger Enterprise's and accepted with no
 * effect; the full-queue behaviour through nginx is in
 * test/e2e/shared/pool-cases.ts) and PassengerErrorOverride (nginx's own
 * error_page does that job).
 */
import test from "ava";
import { request, type HttpResult } from "../../helpers/e2e-http.js";
import { compatHttpCases, compatSite } from "../shared/compat-http-cases.js";

const { fe } = compatHttpCases(test, "apache", {
  moreCompatSites: (apps) => [
    compatSite("queue.test", apps.web, {
      AppGroupName: "queue-group",
      MaxInstances: 1,
      ForceMaxConcurrentRequestsPerProcess: 1,
      MaxRequestQueueSize: 1,
    }),
    { ...compatSite("override.test", apps.web, { ErrorOverride: "on" }), raw: { apache: ['ErrorDocument 404 "apache says not found"'] } },
  ],
});

function get(host: string, p: string): Promise<HttpResult> {
  return request(fe().port, { path: p, host, timeoutMs: 45_000 });
}

test.serial("PassengerMaxRequestQueueSize: past the queue, requests get 503 at once; the others are served", async (t) => {
  t.is((await get("queue.test", "/")).status, 200); // the process is up
  const results = await Promise.all(Array.from({ length: 4 }, () => get("queue.test", "/slow")));
  const statuses = results.map((r) => r.status).sort();
  // One process, one request at a time, one queued: 2 served, 2 refused.
  t.deepEqual(statuses, [200, 200, 503, 503]);
});


test.serial("PassengerErrorOverride on: Apache's ErrorDocument replaces the app's 404", async (t) => {
  const res = await get("override.test", "/fail?code=404");
  t.is(res.status, 404);
  t.is(res.text, "apache says not found");
  const ok = await get("override.test", "/fail?code=500");
  t.is(ok.status, 500);
});

