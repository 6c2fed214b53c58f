import test from "ava";
import { makeAppOptions } from "../../../core/src/config/schema.js";
import { passSticky } from "../../../core/src/exchange/lease.js";
import { addedResponseHeaders } from "../../../core/src/exchange/headers.js";
import type { GroupPassView } from "../../../core/src/pool/session.js";

const VIEW: GroupPassView = {
  queueLength: 0, restarting: false, alwaysRestart: false, restartFile: "/srv/a/tmp/restart.txt", restartMtimeNs: -1n,
  ready: ["n.1", "n.2", "n.3"], readyStickyIds: ["111", "222", "333"],
};

test("passSticky() names each process's sticky id and Set-Cookie values in the order of the pass's procs", (t) => {
  const app = makeAppOptions("/srv/a", { stickySessions: true, baseURI: "/shop" });
  const s = passSticky(app, ["n.2", "n.1", "n.3"], VIEW);
  t.is(s.cookie, "_passenger_route");
  t.deepEqual(s.ids, ["222", "111", "333"]);
  t.deepEqual(s.setCookie, ["222", "111", "333"].map((id) => `_passenger_route=${id}; Path=/shop; SameSite=Lax`));
  t.deepEqual(s.setCookieHttps, ["222", "111", "333"].map((id) => `_passenger_route=${id}; Path=/shop; SameSite=Lax; Secure`));
});

test("passSticky() gives a pass response the headers of a leased one: its own add_headers plus the chosen process's cookie", (t) => {
  const app = makeAppOptions("/srv/a", { stickySessions: true, stickySessionsCookieName: "route", stickySessionsCookieAttributes: "SameSite=None; Secure" });
  const s = passSticky(app, ["n.3"], VIEW);
  t.is(s.cookie, "route");
  for (const https of [false, true]) {
    const onPass = [...s.addHeaders, "Set-Cookie", (https ? s.setCookieHttps : s.setCookie)[0]];
    t.deepEqual(onPass, addedResponseHeaders(app, "333", https), `https ${String(https)}`);
  }
});
