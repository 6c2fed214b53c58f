/** `ferry reopen-logs [--instance NAME|DIR]`: reopen an instance's log files after a rotation (docs/logging.md). */
import { parseArgs } from "node:util";
import { defaultRegistryDir } from "../../config/standalone-config.js";
import { reopenLogs } from "../../control/client.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CliIo } from "../io.js";
import { APACHE_RUNTIME_DIRS, chooseInstance, findInstancesIn } from "./instance.js";

export const REOPEN_LOGS_USAGE = `Usage: ferry reopen-logs [--instance NAME|DIR | --all] [--instance-registry-dir DIR]

Reopen the instance's log file (PassengerLogFile, --log-file, or Apache's
ErrorLog) and every app's log file (PassengerAppLogFile, --app-log-file) by
name, after logrotate moved them. The same as SIGUSR1 to the core. --all
reopens them in every instance found (the registry dir and Apache's runtime
dirs): what conf/logrotate.d/ferry runs.
`;

export async function run(args: readonly string[], io: CliIo): Promise<number> {
  let values: { instance?: string; "instance-registry-dir"?: string; all?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        instance: { type: "string" },
        all: { type: "boolean" },
        "instance-registry-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e: unknown) {
    io.stderr.write(`ferry reopen-logs: ${e instanceof Error ? e.message : String(e)}\n\n${REOPEN_LOGS_USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help === true) {
    io.stdout.write(REOPEN_LOGS_USAGE);
    return EXIT_OK;
  }
  if (values.all === true) {
    const registry = values["instance-registry-dir"] ?? io.env["PASSENGER_INSTANCE_REGISTRY_DIR"] ?? defaultRegistryDir(io.env);
    let failed = 0;
    for (const inst of await findInstancesIn([registry, ...APACHE_RUNTIME_DIRS])) {
      try {
        const n = await reopenLogs(inst);
        io.stdout.write(`Reopened ${n} log file${n === 1 ? "" : "s"} of ${inst.dir}\n`);
      } catch (e: unknown) {
        failed++;
        io.stderr.write(`ferry reopen-logs: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    }
    return failed === 0 ? EXIT_OK : EXIT_FAILURE;
  }
  try {
    const inst = await chooseInstance(io, values.instance, values["instance-registry-dir"]);
    const n = await reopenLogs(inst);
    io.stdout.write(`Reopened ${n} log file${n === 1 ? "" : "s"} of ${inst.dir}\n`);
    return EXIT_OK;
  } catch (e: unknown) {
    io.stderr.write(`ferry reopen-logs: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FAILURE;
  }
}
