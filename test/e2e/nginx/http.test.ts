/**
 * End-to-end through a real nginx + ngx_http_ferry_module + the core: the
 * shared front-end cases (test/e2e/shared/http-cases.ts, run through Apache
 * by test/e2e/http.test.ts) and nginx's own: a request while the core is
 * down.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { isAlive, waitFor } from "../../helpers/apache.js";
import { request } from "../../helpers/e2e-http.js";
import { httpCases } from "../shared/http-cases.js";

const { fe } = httpCases(test, "nginx");
const srv = (): ReturnType<typeof fe>["server"] => fe().server;

/** Does connecting to the Unix socket at p fail with ECONNREFUSED (or ENOENT)? */
function connectRefused(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(p);
    sock.once("connect", () => {
      sock.destroy();
      resolve(false);
    });
    sock.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED" || e.code === "ENOENT"));
  });
}

test.serial("a request while the core is down gets 503 (FERRY0430); once restarted the core serves again", async (t) => {
  const core = await waitFor(() => srv().corePid(), { timeoutMs: 20_000, what: "core.pid" });
  const stat = readFileSync(`/proc/${core}/stat`, "utf8");
  const supervisor = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  // Hold the supervisor so the killed core is not restarted before the request.
  process.kill(supervisor, "SIGSTOP");
  try {
    process.kill(core, "SIGKILL");
    // The thread-group leader shows as a zombie before its last thread has
    // closed the listening socket: wait until connecting is refused.
    await waitFor(() => !isAlive(core) && connectRefused(path.join(srv().instanceDir, "module.sock")), {
      timeoutMs: 10_000,
      what: "the core to die and its socket to refuse connections",
    });
    const res = await request(srv().port, { path: "/", host: "main.test" });
    t.is(res.status, 503);
    t.regex(srv().errorLog(), /FERRY0430: Cannot connect to the ferry core at /);
  } finally {
    process.kill(supervisor, "SIGCONT");
  }
  await waitFor(async () => (await request(srv().port, { path: "/", host: "main.test" })).status === 200, {
    timeoutMs: 30_000,
    what: "the restarted core to serve",
  });
  t.pass();
});
