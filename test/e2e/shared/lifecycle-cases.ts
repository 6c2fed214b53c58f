/**
 * End-to-end cases every front end must pass the same way: the core's life
 * as the module manages it. A reload (`apachectl graceful` / `nginx -s
 * reload`) under a load loop fails no request and serves the new code;
 * stopping the server ends the core and the apps. Run through Apache by
 * test/e2e/lifecycle.test.ts and through nginx by
 * test/e2e/nginx/lifecycle.test.ts. The cases run in order on one server, so
 * a file registers them itself (registerReloadCase(), then
 * registerStopCase() last) around its own.
 */
import type { TestFn } from "ava";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { isAlive, prepareApp, processesUnder, waitFor } from "../../helpers/apache.js";
import { request } from "../../helpers/e2e-http.js";
import { type FrontEnd, type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

/** What each module logs once it stopped the core. */
const STOPPED_CORE: Readonly<Record<FrontEndKind, RegExp>> = {
  apache: /FERRY0212: Stopped ferry core/,
  nginx: /FERRY0414: Stopped ferry core/,
};

export async function appVersion(fe: FrontEnd): Promise<{ status: number; version?: string; error?: string }> {
  try {
    const r = await request(fe.port, { path: "/version", host: "grace.test", timeoutMs: 30_000 });
    if (r.status !== 200) return { status: r.status, error: r.text.slice(0, 200) };
    return { status: 200, version: (JSON.parse(r.text) as { version: string }).version };
  } catch (e: unknown) {
    return { status: 0, error: e instanceof Error ? e.message : String(e) };
  }
}

export function lifecycleCases(
  test: TestFn,
  kind: FrontEndKind,
  opts: SharedCaseOptions = {},
): { fe: () => FrontEnd; app: () => string; registerReloadCase: () => void; registerStopCase: () => void } {
  let app = "";
  const { fe, serial } = frontEndSuite(test, kind, "life", async (root) => {
    app = await prepareApp(root, "e2e-app", "grace");
    return { sites: [{ serverName: "grace.test", appRoot: app, options: { MinInstances: 2 } }] };
  }, opts);
  const version = (): ReturnType<typeof appVersion> => appVersion(fe());

  const registerReloadCase = (): void => serial("a reload under a load loop fails no request and then serves the new code", async (t) => {
    t.is((await version()).version, "v1");
    const failures: string[] = [];
    const seen = { v1: 0, v2: 0, other: 0 };
    let stopLoad = false;
    let firstV2At = 0;
    const slowStatuses: Array<number | string> = [];
    const worker = async (): Promise<void> => {
      while (!stopLoad) {
        const r = await version();
        if (r.status !== 200) failures.push(`${r.status} ${r.error ?? ""}`);
        else if (r.version === "v1") seen.v1++;
        else if (r.version === "v2") {
          seen.v2++;
          if (firstV2At === 0) firstV2At = Date.now();
        } else seen.other++;
      }
    };
    const workers = Array.from({ length: 4 }, () => worker());
    try {
      await waitFor(() => seen.v1 >= 20, { timeoutMs: 20_000, what: "load on v1" });
      // Deploy new code, then reload (what a deploy script does), with slow
      // requests in flight across the reload: they must complete too.
      const file = path.join(app, "app.js");
      await writeFile(file, (await readFile(file, "utf8")).replace('const VERSION = "v1";', 'const VERSION = "v2";'));
      let sent = 0;
      const inFlight = Array.from({ length: 4 }, () =>
        request(fe().port, { path: "/slow?ms=1500", host: "grace.test", timeoutMs: 60_000, onSent: () => sent++ }).then(
          (r) => r.status,
          (e: unknown) => `error ${e instanceof Error ? e.message : String(e)}`,
        ),
      );
      await waitFor(() => sent === 4, { timeoutMs: 10_000, what: "the slow requests to be sent" });
      await fe().reload();
      slowStatuses.push(...(await Promise.all(inFlight)));
      await waitFor(() => firstV2At !== 0 && Date.now() - firstV2At > 2000 && seen.v2 >= 20, {
        timeoutMs: 60_000,
        what: `v2 served steadily after ${fe().reloadCommand}`,
      });
    } finally {
      stopLoad = true;
      await Promise.all(workers);
    }
    t.deepEqual(failures, []);
    t.deepEqual(slowStatuses, [200, 200, 200, 200]);
    t.true(seen.v1 >= 20 && seen.v2 >= 20, JSON.stringify(seen));
    // Once v2 is out, v1 is gone for good.
    const after = await Promise.all(Array.from({ length: 10 }, () => version()));
    t.deepEqual(after.map((r) => r.version), Array.from({ length: 10 }, () => "v2"));
  });

  const registerStopCase = (): void => {
    serial("stopping the server stops the core and the apps", async (t) => {
      t.is((await version()).status, 200);
      const srv = fe().server;
      const core = srv.corePid();
      const appPids = processesUnder(app);
      const instanceDir = srv.instanceDir;
      t.true(core !== undefined && isAlive(core));
      t.true(appPids.length >= 1);
      await srv.stop();
      t.false(srv.isRunning);
      t.false(core !== undefined && isAlive(core));
      t.deepEqual(appPids.filter((p) => isAlive(p)), []);
      t.false(existsSync(instanceDir), `${instanceDir} still exists`);
      t.regex(srv.errorLog(), STOPPED_CORE[kind]);
    });
  };
  return { fe, app: () => app, registerReloadCase, registerStopCase };
}
