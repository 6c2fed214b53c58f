/** `ferry status [--json] [--instance NAME|DIR] [--instance-registry-dir DIR]`: the pools of a running instance. */
import path from "node:path";
import { parseArgs } from "node:util";
import { fetchStatus } from "../../control/client.js";
import { formatStatus } from "../format-status.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CliIo } from "../io.js";
import { InstanceChoiceError, chooseInstance } from "./instance.js";

export const STATUS_USAGE = `Usage: ferry status [--json] [--instance NAME|DIR] [--instance-registry-dir DIR]

Shows app groups, processes (pid, in-flight sessions, processed, uptime, CPU,
memory, last used) and queue lengths of a running Ferry instance.
`;

export async function run(args: readonly string[], io: CliIo): Promise<number> {
  let values: { json?: boolean; instance?: string; "instance-registry-dir"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        json: { type: "boolean" },
        instance: { type: "string" },
        "instance-registry-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e: unknown) {
    io.stderr.write(`ferry status: ${e instanceof Error ? e.message : String(e)}\n\n${STATUS_USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help === true) {
    io.stdout.write(STATUS_USAGE);
    return EXIT_OK;
  }
  try {
    const inst = await chooseInstance(io, values.instance, values["instance-registry-dir"]);
    const status = await fetchStatus(inst);
    if (values.json === true) {
      io.stdout.write(JSON.stringify(status, null, 2) + "\n");
    } else {
      const pid = inst.properties["pid"];
      const mode = inst.properties["integration_mode"];
      io.stdout.write(formatStatus(status, {
        name: path.basename(inst.dir),
        mode: typeof mode === "string" ? mode : "apache",
        pid: typeof pid === "number" ? pid : undefined,
      }, Date.now()));
    }
    return EXIT_OK;
  } catch (e: unknown) {
    if (e instanceof InstanceChoiceError || e instanceof Error) {
      io.stderr.write(`ferry status: ${e.message}\n`);
      return EXIT_FAILURE;
    }
    throw e;
  }
}
