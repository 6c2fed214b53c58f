/**
 * End-to-end: Apache refuses to start, with a tagged error naming the
 * problem, when mod_ferry cannot start the core (docs/errors.md FERRY02xx).
 */
import test from "ava";
import { chmod, mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { ApacheServer, makeTempRoot, processesUnder } from "../helpers/apache.js";

let root = "";

test.before(async () => {
  root = await makeTempRoot("e2e-daemon-errors");
  await mkdir(path.join(root, "docs"), { recursive: true });
});

test.after.always(async () => {
  if (root === "") return;
  for (const pid of processesUnder(root)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  await rm(root, { recursive: true, force: true });
});

async function startFailure(global: readonly string[]): Promise<string> {
  try {
    const s = await ApacheServer.start({ root, global, vhosts: [{ serverName: "x.test", documentRoot: path.join(root, "docs") }] });
    const log = s.errorLog();
    await s.kill();
    return `started (pid ${s.pid}, port ${s.port}):\n${log}`;
  } catch (e: unknown) {
    return e instanceof Error ? e.message : String(e);
  }
}

test.serial("a PassengerRoot without build/core/src/main.js stops Apache with FERRY0215 naming the path", async (t) => {
  const bogus = path.join(root, "not-ferry");
  await mkdir(bogus, { recursive: true });
  const msg = await startFailure([`PassengerRoot "${bogus}"`]);
  t.regex(msg, /Cannot start Apache: it exited/);
  t.true(msg.includes(`FERRY0215: Cannot start the ferry core: ${bogus}/build/core/src/main.js is missing`), msg);
});

test.serial("a PassengerNodejs that does not exist stops Apache with FERRY0216", async (t) => {
  const msg = await startFailure(["PassengerNodejs /nonexistent/bin/node"]);
  t.regex(msg, /FERRY0216: Cannot start the ferry core: Node\.js interpreter "\/nonexistent\/bin\/node" not found/);
});

test.serial("a core that exits at once stops Apache with FERRY0209 and the core's own output", async (t) => {
  const fake = path.join(root, "broken-ferry");
  await mkdir(path.join(fake, "build", "core", "src"), { recursive: true });
  await writeFile(path.join(fake, "build", "core", "src", "main.js"), 'console.error("E2E-CORE-BOOT-FAILURE"); process.exit(7);\n');
  await chmod(fake, 0o755);
  const msg = await startFailure([`PassengerRoot "${fake}"`]);
  t.regex(msg, /E2E-CORE-BOOT-FAILURE/);
  t.regex(msg, /FERRY0209: Cannot start the ferry core: it exited with exit code 7 before listening/);
  t.deepEqual(processesUnder(root), []);
});
