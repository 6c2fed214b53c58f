/**
 * Log rotation under load (standalone instance, real app processes): while
 * clients make the app write numbered lines, the core log and the app log
 * file are moved away and reopened (`ferry reopen-logs`'s admin API call).
 * No line is lost, and no line written after the reopen lands in the moved
 * files.
 */
import test from "ava";
import { promises as fsp } from "node:fs";
import path from "node:path";
import { reopenLogs } from "../../../core/src/control/client.js";
import { copyApp, makeTmp, req, startApp, waitFor, type Running } from "../../helpers/standalone.js";

let running: Running | undefined;
let tmp = "";

test.after.always(async () => {
  await running?.stop();
  if (tmp !== "") await fsp.rm(tmp, { recursive: true, force: true });
});

const lines = async (file: string): Promise<string[]> => (await fsp.readFile(file, "utf8").catch(() => "")).split("\n").filter((l) => l !== "");

test("a rotation under load loses no line and writes none to the moved files after the reopen", async (t) => {
  tmp = await makeTmp("ferry-rotation");
  const app = await copyApp("e2e-app", tmp);
  await fsp.symlink(path.resolve("node_modules"), path.join(app, "node_modules")).catch(() => undefined);
  const appLog = path.join(tmp, "app.log");
  running = await startApp(app, { "app-log-file": appLog, "min-instances": "2", "max-instances-per-app": "2" });
  const r = running;
  const instanceDir = r.instance.instanceDir;

  let seq = 0;
  let stop = false;
  let afterReopen = Number.POSITIVE_INFINITY;
  const sent: number[] = [];
  const client = async (): Promise<void> => {
    while (!stop) {
      const n = seq++;
      const res = await req(r.port, `/say?line=line-${n}`);
      if (res.status !== 200) throw new Error(`request ${n}: ${res.status}`);
      sent.push(n);
    }
  };
  const clients = Array.from({ length: 4 }, () => client());
  await waitFor("100 lines", () => (seq > 100 ? true : undefined), 30_000, 10);

  await fsp.rename(appLog, `${appLog}.1`);
  await fsp.rename(r.logFile, `${r.logFile}.1`);
  const n = await reopenLogs({ dir: instanceDir, socketPath: r.instance.controlSocket, properties: {} });
  afterReopen = seq; // every request numbered from here on starts after the reopen
  t.true(n >= 3, `reopened ${n}`); // the core log and one app log per process

  await waitFor("100 more lines", () => (seq > afterReopen + 100 ? true : undefined), 30_000, 10);
  stop = true;
  await Promise.all(clients);

  const want = new Set(sent.map((x) => `line-${x}`));
  await waitFor("every line in the app logs", async () => {
    const got = [...await lines(`${appLog}.1`), ...await lines(appLog)];
    return got.filter((l) => want.has(l.replace(/^.*stdout: /, ""))).length >= want.size ? true : undefined;
  }, 10_000);
  const old = (await lines(`${appLog}.1`)).map((l) => l.replace(/^.*stdout: /, ""));
  const cur = (await lines(appLog)).map((l) => l.replace(/^.*stdout: /, ""));
  const all = [...old, ...cur].filter((l) => l.startsWith("line-"));
  t.is(all.length, want.size, "each line exactly once");
  const byNumber = (a: string, b: string): number => Number(a.slice(5)) - Number(b.slice(5));
  t.deepEqual([...new Set(all)].sort(byNumber), [...want].sort(byNumber));
  const lateInOld = old.filter((l) => l.startsWith("line-") && Number(l.slice(5)) >= afterReopen);
  t.deepEqual(lateInOld, [], "lines written after the reopen went to the moved file");
  t.true(cur.some((l) => l.startsWith("line-")));
  // The core log moved too: the reopen notice and later lines are in the new file.
  await waitFor("the core log to be reopened", async () => ((await lines(r.logFile)).some((l) => l.includes("Log files reopened")) ? true : undefined), 10_000);
  t.false((await lines(`${r.logFile}.1`)).some((l) => l.includes("Log files reopened")));
});
