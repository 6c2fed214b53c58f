/**
 * End-to-end cases every front end must pass the same way: what a reload
 * (`apachectl graceful` / `nginx -s reload`) redeploys under
 * PassengerRedeployOnGraceful changed / off (`all` is in lifecycle-cases.ts).
 * Run through Apache by test/e2e/redeploy.test.ts (which adds the Apache-only
 * broken-PassengerRoot case) and through nginx by
 * test/e2e/nginx/redeploy.test.ts.
 */
import type { TestFn } from "ava";
import { prepareApp, waitFor } from "../../helpers/apache.js";
import { getJson } from "../../helpers/e2e-http.js";
import { type AppSite, type FrontEnd, type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

export function redeploySites(root: string, rev: number): AppSite[] {
  return [
    { serverName: "steady.test", appRoot: `${root}/apps/steady`, env: { E2E_REV: "steady" } },
    { serverName: "edited.test", appRoot: `${root}/apps/edited`, env: { E2E_REV: String(rev) } },
  ];
}

export async function envOf(fe: FrontEnd, host: string): Promise<{ pid: number; rev: string }> {
  const body = (await getJson(fe.port, "/env", host)) as { env: Record<string, string> };
  const pid = (await getJson(fe.port, "/pid", host)) as { pid: number };
  return { pid: pid.pid, rev: body.env.E2E_REV ?? "" };
}

export function redeployCases(test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {}): { fe: () => FrontEnd; root: () => string } {
  const { fe, root, serial } = frontEndSuite(test, kind, "redeploy", async (r) => {
    await prepareApp(r, "e2e-app", "steady");
    await prepareApp(r, "e2e-app", "edited");
    return { server: { RedeployOnGraceful: "changed" }, sites: redeploySites(r, 1) };
  }, opts);

  serial("redeploy on graceful changed: a reload restarts only the app whose config changed", async (t) => {
    const steady = await envOf(fe(), "steady.test");
    const edited = await envOf(fe(), "edited.test");
    t.is(edited.rev, "1");
    const core = fe().server.corePid();
    await fe().reconfigure({ server: { RedeployOnGraceful: "changed" }, sites: redeploySites(root(), 2) });
    await fe().reload();
    const after = await waitFor(
      async () => {
        const e = await envOf(fe(), "edited.test");
        return e.rev === "2" ? e : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: "the edited app to run with its new environment" },
    );
    t.not(after.pid, edited.pid);
    const steadyAfter = await envOf(fe(), "steady.test");
    t.is(steadyAfter.pid, steady.pid);
    t.is(fe().server.corePid(), core);
  });

  serial("redeploy on graceful off: a reload keeps every app process", async (t) => {
    const steady = await envOf(fe(), "steady.test");
    const edited = await envOf(fe(), "edited.test");
    await fe().reconfigure({ server: { RedeployOnGraceful: "off" }, sites: redeploySites(root(), 3) });
    await fe().reload();
    for (let i = 0; i < 5; i++) {
      t.is((await envOf(fe(), "steady.test")).pid, steady.pid);
      t.is((await envOf(fe(), "edited.test")).pid, edited.pid);
    }
  });

  return { fe, root };
}
