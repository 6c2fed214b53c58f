/**
 * End-to-end through a real Apache: what `apachectl graceful` redeploys (the
 * shared cases of test/e2e/shared/redeploy-cases.ts; nginx runs them in
 * test/e2e/nginx/redeploy.test.ts). A graceful with a broken PassengerRoot
 * is Apache-only: mod_ferry checks PassengerRoot on every graceful and keeps
 * the running core (FERRY0215/FERRY0220), while nginx applies a changed
 * passenger_root only when it is started again (docs/nginx.md).
 */
import test from "ava";
import path from "node:path";
import { ApacheServer } from "../helpers/apache.js";
import { envOf, redeployCases, redeploySites } from "./shared/redeploy-cases.js";

const { fe, root } = redeployCases(test, "apache");

test.serial("a graceful with a broken PassengerRoot keeps the running core and Apache serving", async (t) => {
  const srv = fe().server;
  if (!(srv instanceof ApacheServer)) return t.fail("not Apache");
  const core = srv.corePid();
  const before = await envOf(fe(), "steady.test");
  await fe().reconfigure({ server: { Root: path.join(root(), "no-ferry-here") }, sites: redeploySites(root(), 3) });
  await fe().reload();
  t.true(srv.isRunning);
  t.is(srv.corePid(), core);
  t.regex(srv.errorLog(), /FERRY0215: Cannot start the ferry core: .*no-ferry-here\/build\/core\/src\/main\.js is missing/);
  t.regex(srv.errorLog(), /FERRY0220: The running ferry core keeps serving/);
  const after = await envOf(fe(), "steady.test");
  t.is(after.rev, "steady");
  t.true(after.pid > 0 && before.pid > 0);
});
