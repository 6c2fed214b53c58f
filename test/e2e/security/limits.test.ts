/**
 * Issue 4, per-app limits and .htaccess, through a real Apache run as root,
 * with apps owned by a test user: the shared limit cases of
 * test/e2e/shared/limits-cases.ts (nginx runs them in
 * test/e2e/nginx/security-limits.test.ts), and, Apache-only (nginx has no
 * per-directory config files): an app configured only by the tenant's
 * .htaccess (AllowOverride All) is served, as its owner, while a server-wide
 * directive in an .htaccess is refused.
 */
import test from "ava";
import { chown, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { request } from "../../helpers/e2e-http.js";
import { ensureUser, prepareTenantApp } from "../../helpers/users.js";
import { TENANT_FIXTURE, limitsCases } from "../shared/limits-cases.js";

const { fe, owner, ownerName } = limitsCases(test, "apache", {
  moreSites: async (root) => {
    const u = await ensureUser(ownerName);
    const ht = await prepareTenantApp(root, TENANT_FIXTURE, "ht", u);
    // The tenant's own .htaccess turns the app on and sets per-location options.
    const put = async (file: string, text: string): Promise<void> => {
      await writeFile(file, text, { mode: 0o644 });
      await chown(file, u.uid, u.gid);
    };
    await put(path.join(ht, "public", ".htaccess"),
      "PassengerEnabled on\nPassengerStickySessions on\nPassengerMaxRequestTime 30\n");
    await mkdir(path.join(ht, "public", "bad"));
    await chown(path.join(ht, "public", "bad"), u.uid, u.gid);
    await put(path.join(ht, "public", "bad", ".htaccess"), "PassengerMaxPoolSize 100\n");
    // Off for the vhost: only the .htaccess turns it on.
    return [{ serverName: "ht.test", appRoot: ht, raw: { apache: ["PassengerEnabled off"] } }];
  },
});

test.serial("an app configured in the tenant's .htaccess is served, as its owner", async (t) => {
  const res = await request(fe().port, { path: "/id", host: "ht.test" });
  t.is(res.status, 200, res.text.slice(0, 300));
  const body = JSON.parse(res.text) as { uid: number; gid: number };
  t.is(body.uid, owner().uid);
  t.is(body.gid, owner().gid);
  // PassengerStickySessions on from the .htaccess: the sticky cookie is set.
  const cookies = res.headers["set-cookie"] ?? [];
  t.true(cookies.some((c) => c.startsWith("_passenger_route=")), `Set-Cookie: ${cookies.join(" | ")}`);
});

test.serial("a server-wide directive in a tenant's .htaccess is refused with a clear error", async (t) => {
  const res = await request(fe().port, { path: "/bad/x", host: "ht.test" });
  t.is(res.status, 500);
  t.regex(fe().server.errorLog(), /PassengerMaxPoolSize not allowed here/);
});
