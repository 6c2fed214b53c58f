/**
 * End-to-end through a real Apache: what a visitor sees when an app cannot
 * start. The friendly-page cases are shared with nginx
 * (test/e2e/shared/error-page-cases.ts); PassengerCustomErrorPage's
 * cases live here (nginx's passenger_custom_error_page has its own in
 * test/e2e/nginx/compat-config.test.ts).
 */
import test from "ava";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { request } from "../helpers/e2e-http.js";
import { brokenAppRoot, errorPageCases } from "./shared/error-page-cases.js";

const CUSTOM_PAGE = "<html><body><h1>CUSTOM-DOWN-PAGE</h1></body></html>\n";

const { fe } = errorPageCases(test, "apache", {
  moreSites: async (root) => {
    const customPage = path.join(root, "app-down.html");
    await writeFile(customPage, CUSTOM_PAGE, { mode: 0o644 });
    const common = { StartTimeout: 20, CustomErrorPage: customPage };
    return [
      { serverName: "custom.test", appRoot: brokenAppRoot(root), options: { ...common, FriendlyErrorPages: "off", AppGroupName: "broken-custom" } },
      { serverName: "custom-friendly.test", appRoot: brokenAppRoot(root), options: { ...common, FriendlyErrorPages: "on", AppGroupName: "broken-custom-friendly" } },
    ];
  },
});

test.serial("PassengerCustomErrorPage replaces the error page when friendly pages are off (Passenger 6.0.23), same status", async (t) => {
  const res = await request(fe().port, { path: "/", host: "custom.test", timeoutMs: 60_000 });
  t.true(res.status >= 500 && res.status < 600, String(res.status));
  t.regex(String(res.headers["content-type"]), /text\/html/);
  t.is(res.text, CUSTOM_PAGE);
});

test.serial("PassengerCustomErrorPage leaves the friendly page alone when friendly pages are on", async (t) => {
  const res = await request(fe().port, { path: "/", host: "custom-friendly.test", timeoutMs: 60_000 });
  t.true(res.status >= 500 && res.status < 600, String(res.status));
  t.regex(res.text, /E2E-BOOT-MARKER/);
  t.notRegex(res.text, /CUSTOM-DOWN-PAGE/);
});
