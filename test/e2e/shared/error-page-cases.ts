/**
 * End-to-end cases every front end must pass the same way: what a visitor
 * sees when an app cannot start, with friendly error pages on and off. Run
 * through Apache by test/e2e/error-pages.test.ts (which adds the Apache-only
 * PassengerCustomErrorPage cases) and through nginx by
 * test/e2e/nginx/error-pages.test.ts.
 */
import type { TestFn } from "ava";
import { prepareApp } from "../../helpers/apache.js";
import { request } from "../../helpers/e2e-http.js";
import { type FrontEnd, type FrontEndKind, type SharedCaseOptions, frontEndSuite } from "./front-end.js";

/** The app every site of the suite serves: test/fixtures/apps/e2e-crash-on-start under <root>/apps/broken. */
export function brokenAppRoot(root: string): string {
  return `${root}/apps/broken`;
}

export function errorPageCases(test: TestFn, kind: FrontEndKind, opts: SharedCaseOptions = {}): { fe: () => FrontEnd } {
  const { fe, serial } = frontEndSuite(test, kind, "errors", async (root) => {
    const broken = await prepareApp(root, "e2e-crash-on-start", "broken");
    return {
      sites: [
        { serverName: "friendly.test", appRoot: broken, options: { FriendlyErrorPages: "on", StartTimeout: 20 } },
        { serverName: "plain.test", appRoot: broken, options: { FriendlyErrorPages: "off", StartTimeout: 20, AppGroupName: "broken-plain" } },
      ],
    };
  }, opts);

  serial("friendly error pages on: the page shows why the app failed to start", async (t) => {
    const res = await request(fe().port, { path: "/", host: "friendly.test", timeoutMs: 60_000 });
    t.true(res.status >= 500 && res.status < 600, String(res.status));
    t.regex(String(res.headers["content-type"]), /text\/html/);
    t.regex(res.text, /E2E-BOOT-MARKER/);
  });

  serial("friendly error pages off: the page hides the details", async (t) => {
    const res = await request(fe().port, { path: "/", host: "plain.test", timeoutMs: 60_000 });
    t.true(res.status >= 500 && res.status < 600, String(res.status));
    t.notRegex(res.text, /E2E-BOOT-MARKER/);
    t.notRegex(res.text, /cannot start|about to fail/);
  });

  return { fe };
}
