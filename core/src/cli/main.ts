/**
 * The `ferry` command: parse the subcommand, dispatch to cli/commands/<name>.ts,
 * exit 0 (ok), 1 (failure) or 2 (usage). The only place that calls process.exit.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { FERRY_VERSION } from "../version.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CliIo, type CommandRun } from "./io.js";

export const USAGE = `Usage: ferry <command> [options]

Commands:
  start [APP_DIR]        serve an app with no web server in front (standalone mode)
  status [--json|--watch] show the pools of a running instance
  restart APP_ROOT       rolling restart of an app in a running instance
  reopen-logs            reopen every log file of a running instance (after log rotation)
  apache ...             Apache integration helpers
  nginx ...              nginx integration helpers
  help                   show this help
  version                show the version

Run "ferry <command> --help" for the options of a command.
`;

/** Commands and the module that implements each (loaded on demand). */
const COMMANDS: Readonly<Record<string, string>> = {
  start: "./commands/start.js",
  status: "./commands/status.js",
  restart: "./commands/restart.js",
  "reopen-logs": "./commands/reopen-logs.js",
  apache: "./commands/apache.js",
  nginx: "./commands/nginx.js",
};

async function loadCommand(name: string, specifier: string): Promise<CommandRun> {
  let mod: unknown;
  try {
    mod = await import(specifier);
  } catch (e: unknown) {
    const code = typeof e === "object" && e !== null ? Reflect.get(e, "code") : undefined;
    if (code === "ERR_MODULE_NOT_FOUND") {
      throw new Error(`Cannot run "ferry ${name}": this build does not include the command (${specifier} is missing)`, { cause: e });
    }
    throw e;
  }
  const run: unknown = typeof mod === "object" && mod !== null ? Reflect.get(mod, "run") : undefined;
  if (typeof run !== "function") throw new Error(`Cannot run "ferry ${name}": ${specifier} exports no run()`);
  return run as CommandRun;
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") {
    (cmd === undefined ? io.stderr : io.stdout).write(USAGE);
    return cmd === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (cmd === "version" || cmd === "--version" || cmd === "-v") {
    io.stdout.write(`Ferry ${FERRY_VERSION}\n`);
    return EXIT_OK;
  }
  const specifier = COMMANDS[cmd];
  if (specifier === undefined) {
    io.stderr.write(`ferry: unknown command "${cmd}"\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  try {
    const run = await loadCommand(cmd, specifier);
    return await run(rest, io);
  } catch (e: unknown) {
    io.stderr.write(`ferry ${cmd}: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FAILURE;
  }
}

/** True when this module is the program being run (bin/ferry.js or this file), not imported by a test. */
function isEntry(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  let entry: string;
  try {
    entry = realpathSync(arg);
  } catch {
    return false;
  }
  const self = fileURLToPath(import.meta.url);
  return entry === self || entry.endsWith(`${path.sep}bin${path.sep}ferry.js`);
}

if (isEntry()) {
  process.on("unhandledRejection", (e: unknown) => {
    process.stderr.write(`ferry: unhandled rejection: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(EXIT_FAILURE);
  });
  const io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
  main(process.argv.slice(2), io).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`ferry: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(EXIT_FAILURE);
    },
  );
}
