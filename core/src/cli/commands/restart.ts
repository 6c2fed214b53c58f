/** `ferry restart APP_ROOT|GROUP_NAME [--instance NAME|DIR]`: rolling restart through the admin API. */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { restartApp } from "../../control/client.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CliIo } from "../io.js";
import { chooseInstance } from "./instance.js";

export const RESTART_USAGE = `Usage: ferry restart APP_ROOT|GROUP_NAME [--instance NAME|DIR] [--instance-registry-dir DIR]

Rolling restart: new processes start first; old ones stop taking requests once
a new one is ready, then drain. If the new version fails to start, the old
processes keep serving and the error shows in "ferry status".
`;

export async function run(args: readonly string[], io: CliIo): Promise<number> {
  let values: { instance?: string; "instance-registry-dir"?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...args],
      options: {
        instance: { type: "string" },
        "instance-registry-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (e: unknown) {
    io.stderr.write(`ferry restart: ${e instanceof Error ? e.message : String(e)}\n\n${RESTART_USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help === true) {
    io.stdout.write(RESTART_USAGE);
    return EXIT_OK;
  }
  const target = positionals[0];
  if (target === undefined || positionals.length > 1) {
    io.stderr.write(`ferry restart: expected one APP_ROOT\n\n${RESTART_USAGE}`);
    return EXIT_USAGE;
  }
  // An existing directory is an app root (absolute, as the pool keys it); anything else a group name.
  let selector = target;
  try {
    const abs = path.resolve(io.cwd, target);
    if ((await fsp.stat(abs)).isDirectory()) selector = abs;
  } catch {
    // not a directory: a group name
  }
  try {
    const inst = await chooseInstance(io, values.instance, values["instance-registry-dir"]);
    const n = await restartApp(inst, selector);
    io.stdout.write(`Restarting ${selector}: ${n} app group${n === 1 ? "" : "s"} (rolling)\n`);
    return EXIT_OK;
  } catch (e: unknown) {
    io.stderr.write(`ferry restart: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FAILURE;
  }
}
