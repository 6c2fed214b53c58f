/**
 * Shared affinity in module mode: the core as mod_ferry runs it (`main.js
 * --config` with the `server.affinity_*` keys of docs/core-config.md), spoken
 * to over its module socket, next to a standalone host. A session pinned on
 * either one reaches the same process through the other.
 */
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, promises as fsp, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ClientSession, startHost, writeSecret, type Host } from "../../helpers/affinity-cluster.js";
import { frameRequest, headerValue, requestHeadMap } from "../../helpers/frame-client.js";
import { RedisServer, redisGet } from "../../helpers/redis.js";
import { FIXTURE_APPS, makeTmp, pidGone, waitFor } from "../../helpers/standalone.js";

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../build/core/src/main.js");
const APP = path.join(FIXTURE_APPS, "affinity-counter");
let redis: RedisServer;
let tmp = "";
let host: Host | undefined;
let core: ChildProcess | undefined;
let coreOut = "";
let moduleSocket = "";
const appPids = new Set<number>();

test.before(async () => {
  redis = await RedisServer.start();
  tmp = await makeTmp("ferry-affinity-module");
  const secretFile = await writeSecret(tmp);
  host = await startHost({ appDir: APP, tmp, name: "standalone", redisUrl: redis.url, secretFile });
  const dir = path.join(tmp, "inst");
  moduleSocket = path.join(dir, "module.sock");
  const configFile = path.join(tmp, "core.json");
  writeFileSync(configFile, JSON.stringify({
    version: 1, generation: 1, instance_dir: dir, apache_uid: process.getuid?.() ?? 0, apache_gid: process.getgid?.() ?? 0,
    parent_pid: process.pid, lifeline_fd: -1,
    server: {
      max_pool_size: 2, log_level: 3, log_file: path.join(tmp, "core.log"),
      affinity_redis: redis.url, affinity_node_name: "module", affinity_listen: "127.0.0.1:0",
      affinity_secret_file: secretFile, affinity_ttl: 600, affinity_redis_timeout: 100,
    },
  }));
  core = spawn(process.execPath, [MAIN, "--config", configFile], { stdio: ["ignore", "pipe", "pipe"] });
  core.stdout?.on("data", (d: Buffer) => { coreOut += d.toString(); });
  core.stderr?.on("data", (d: Buffer) => { coreOut += d.toString(); });
  await waitFor("the module core to start", () => {
    if (core?.exitCode !== null) throw new Error(`core exited: ${coreOut}`);
    return existsSync(path.join(dir, "core.pid")) ? true : undefined;
  }, 30_000);
  await waitFor("both nodes registered", async () =>
    (await redisGet(redis.port, "ferry:node:module")) !== undefined && (await redisGet(redis.port, "ferry:node:standalone")) !== undefined ? true : undefined, 20_000);
});

test.after.always(async () => {
  core?.kill("SIGKILL");
  host?.child.kill("SIGKILL");
  for (const pid of appPids) if (!pidGone(pid)) process.kill(pid, "SIGKILL");
  await redis?.destroy();
  if (tmp !== "") await fsp.rm(tmp, { recursive: true, force: true });
});

/**
 * One request through the module socket, as Apache would send it. Its vhost
 * is the name the standalone host is reached by (127.0.0.1): one site, so one
 * affinity key on both hosts (docs/affinity.md).
 */
async function viaModule(session: string, cookie: string | undefined): Promise<{ status: number; pid: number; count: number; setCookie: string | undefined }> {
  const headers = ["Host", "127.0.0.1", ...(cookie !== undefined ? ["Cookie", cookie] : [])];
  const res = await frameRequest(moduleSocket, requestHeadMap({ uri: `/hit?s=${session}`, headers, server_name: "127.0.0.1" }, { app_root: APP, sticky_sessions: true }));
  const setCookie = headerValue(res.headers, "set-cookie");
  if (res.status !== 200) return { status: res.status, pid: 0, count: 0, setCookie };
  const v = JSON.parse(res.body.toString()) as { pid: number; count: number };
  appPids.add(v.pid);
  return { status: res.status, pid: v.pid, count: v.count, setCookie };
}

test.serial("a session pinned on the standalone host reaches its process through the module core", async (t) => {
  if (host === undefined) throw new Error("no host");
  const s = new ClientSession(`m1-${Date.now()}`);
  const first = await s.hit(host);
  t.is(first.status, 200);
  appPids.add(first.pid);
  for (let n = 2; n <= 5; n++) {
    const r = await viaModule(s.id, s.cookie);
    if (r.status !== 200) t.fail(`${r.status}\n${coreOut}\n${readFileSync(path.join(tmp, "core.log"), "utf8").slice(-2000)}`);
    t.is(r.pid, first.pid);
    t.is(r.count, n);
  }
});

test.serial("a session pinned by the module core reaches its process through the standalone host", async (t) => {
  if (host === undefined) throw new Error("no host");
  const id = `m2-${Date.now()}`;
  const first = await viaModule(id, undefined);
  t.is(first.status, 200);
  t.not(first.setCookie, undefined);
  const s = new ClientSession(id);
  s.cookie = (first.setCookie ?? "").split(";")[0];
  for (let n = 2; n <= 5; n++) {
    const r = await s.hit(host);
    t.is(r.status, 200);
    t.is(r.pid, first.pid, "forwarded to the module core's process");
    t.is(r.count, n);
  }
});
