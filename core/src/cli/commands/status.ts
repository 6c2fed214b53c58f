/** `ferry status [--json] [--instance NAME|DIR] [--instance-registry-dir DIR]`: the pools of a running instance. */
import path from "node:path";
import { parseArgs } from "node:util";
import { fetchStatus } from "../../control/client.js";
import { formatStatus } from "../format-status.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CliIo } from "../io.js";
import { InstanceChoiceError, chooseInstance } from "./instance.js";

export const STATUS_USAGE = `Usage: ferry status [--json | --watch [--interval SECONDS]] [--instance NAME|DIR] [--instance-registry-dir DIR]

Shows app groups, processes (pid, in-flight sessions, processed, uptime, CPU,
memory, last used, event loop, health), queue lengths, restarts, spawn
failures, crashes and the last exit of a running Ferry instance, and the
shared-affinity cluster. --json: every field, a stable interface
(docs/status-json.md). --watch: redraw in place every --interval seconds
(default 2) until Ctrl-C.
`;

/** Clear the terminal and move the cursor home. */
const CLEAR = "\x1b[H\x1b[2J";

export async function run(args: readonly string[], io: CliIo): Promise<number> {
  let values: { json?: boolean; watch?: boolean; interval?: string; instance?: string; "instance-registry-dir"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        json: { type: "boolean" },
        watch: { type: "boolean", short: "w" },
        interval: { type: "string" },
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
  const interval = Number(values.interval ?? "2");
  if (!Number.isFinite(interval) || interval < 0.1 || interval > 3600) {
    io.stderr.write(`ferry status: --interval must be a number of seconds 0.1-3600, got "${values.interval ?? ""}"\n`);
    return EXIT_USAGE;
  }
  if (values.watch === true && values.json === true) {
    io.stderr.write(`ferry status: --watch and --json do not go together\n\n${STATUS_USAGE}`);
    return EXIT_USAGE;
  }
  try {
    const inst = await chooseInstance(io, values.instance, values["instance-registry-dir"]);
    const pid = inst.properties["pid"];
    const mode = inst.properties["integration_mode"];
    const label = { name: path.basename(inst.dir), mode: typeof mode === "string" ? mode : "apache", pid: typeof pid === "number" ? pid : undefined };
    if (values.watch === true) return await watch(io, async () => formatStatus(await fetchStatus(inst), label, Date.now()), interval * 1000);
    const status = await fetchStatus(inst);
    if (values.json === true) {
      io.stdout.write(JSON.stringify(status, null, 2) + "\n");
    } else {
      io.stdout.write(formatStatus(status, label, Date.now()));
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

/**
 * Redraw `render()` in place every `everyMs` until SIGINT/SIGTERM (or `stop`
 * aborts, for tests). A failed fetch is shown in place of the status and
 * retried: the instance may be restarting.
 */
export async function watch(io: CliIo, render: () => Promise<string>, everyMs: number, stop?: AbortSignal): Promise<number> {
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const signal = stop === undefined ? ac.signal : AbortSignal.any([ac.signal, stop]);
  try {
    while (!signal.aborted) {
      let text: string;
      try {
        text = await render();
      } catch (e: unknown) {
        text = `ferry status: ${e instanceof Error ? e.message : String(e)} (retrying)\n`;
      }
      io.stdout.write(`${CLEAR}${text}\n(every ${everyMs / 1000} s; Ctrl-C to quit)\n`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, everyMs);
        function done(): void {
          clearTimeout(t);
          signal.removeEventListener("abort", done);
          resolve();
        }
        signal.addEventListener("abort", done, { once: true });
      });
    }
    return EXIT_OK;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
