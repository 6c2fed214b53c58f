/**
 * A stand-in core for tests: spawns the apps given as `<appRoot>[|generic command]`
 * arguments through ChildSpawner, GETs / from each, prints
 * `{"pids":[…],"bodies":[…],"uid":N}` and stays alive until killed.
 */
import http from "node:http";
import path from "node:path";
import { makeAppOptions, SERVER_DEFAULTS } from "../../core/src/config/schema.js";
import { silentLogger } from "../../core/src/log.js";
import { ChildSpawner } from "../../core/src/spawn/child-spawner.js";

const [socketDir, ...apps] = process.argv.slice(2);
const spawner = new ChildSpawner({ log: silentLogger(), socketDir: socketDir ?? "/tmp" });
const pids: number[] = [];
const bodies: string[] = [];
for (const a of apps) {
  const [root, command] = a.split("|");
  const app = makeAppOptions(path.resolve(root ?? "."), command === undefined ? {} : { appType: "generic", appStartCommand: command });
  const p = await spawner.spawn({ app, server: SERVER_DEFAULTS, signal: AbortSignal.timeout(30_000) });
  pids.push(p.pid);
  const target = p.address.kind === "unix" ? { socketPath: p.address.path } : { host: p.address.host, port: p.address.port };
  bodies.push(await new Promise<string>((resolve, reject) => {
    http.get({ ...target, agent: false, signal: AbortSignal.timeout(10_000) }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { text += c; });
      res.on("end", () => resolve(text));
    }).on("error", reject);
  }));
}
process.stdout.write(`${JSON.stringify({ pids, bodies, uid: process.getuid?.() })}\n`);
setInterval(() => undefined, 60_000);
