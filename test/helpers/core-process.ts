/**
 * The module-mode core as mod_ferry runs it (`node build/core/src/main.js
 * --config <file>`), started as a real process for integration tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { until } from "./until.js";

export { until } from "./until.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const MAIN = path.join(ROOT, "build/core/src/main.js");

export interface RunningCore {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly configFile: string;
  readonly moduleSocket: string;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
  /** SIGKILL the core (tests' teardown). */
  kill(): void;
}


/** Write a core config file for the instance directory `dir`; `extra` overrides its keys. */
export function writeCoreConfig(configFile: string, dir: string, extra: Readonly<Record<string, unknown>> = {}): void {
  writeFileSync(configFile, JSON.stringify({
    version: 1,
    generation: 1,
    instance_dir: dir,
    module_socket: path.join(dir, "module.sock"),
    control_socket: path.join(dir, "control.sock"),
    apache_uid: 33,
    apache_gid: 33,
    parent_pid: process.pid,
    lifeline_fd: -1,
    redeploy_on_graceful: "all",
    server: { max_pool_size: 2, log_level: 3 },
    ...extra,
  }));
}

/**
 * Start a core with its instance directory `dir`; `extra` overrides keys of
 * the core config file; `stdio` may add pipes (a lifeline on fd 3).
 */
export async function startCoreProcess(
  dir: string, extra: Readonly<Record<string, unknown>> = {}, stdio: Array<"ignore" | "pipe"> = ["ignore", "pipe", "pipe"],
): Promise<RunningCore> {
  const configFile = `${dir}.json`;
  writeCoreConfig(configFile, dir, extra);
  const child = spawn(process.execPath, [MAIN, "--config", configFile], { stdio });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await until(() => existsSync(path.join(dir, "core.pid")) || child.exitCode !== null, "core.pid");
  if (child.exitCode !== null) throw new Error(`Cannot start the core: it exited early: ${out}`);
  return {
    child, dir, configFile, moduleSocket: path.join(dir, "module.sock"), output: () => out, exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
