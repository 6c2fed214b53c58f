/**
 * Argument checks shared by the commands that run a private web server
 * (`ferry apache start|stop`, `ferry nginx …`): a UsageError means exit 2
 * with the usage text, as does a util.parseArgs error (isUsageError()).
 */
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CliIo } from "./io.js";

/** Bad command-line input: the command prints the message and its usage, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A UsageError, or util.parseArgs' own complaint (unknown option, missing value). */
export function isUsageError(e: unknown): e is Error {
  return e instanceof UsageError || (e instanceof TypeError && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS"));
}

/** `--port N`: 1-65535, or `fallback` when absent. */
export function parsePort(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new UsageError(`--port must be an integer 1-65535, got "${value}"`);
  }
  return Number(value);
}

/** `--address`: an IP address or a host name, or `fallback` when absent. */
export function parseAddress(value: string | undefined, fallback: string): string {
  if (value === undefined) return fallback;
  if (net.isIP(value) === 0 && !/^[A-Za-z0-9.-]+$/.test(value)) {
    throw new UsageError(`--address must be an IP address or host name, got "${value}"`);
  }
  return value;
}

/** A private server's default dir: $TMPDIR/ferry-<kind>-<port>. */
export function defaultServerDir(kind: string, port: number): string {
  return path.join(os.tmpdir(), `ferry-${kind}-${port}`);
}

/** The address to probe for a server bound to `address` (a wildcard is probed on loopback). */
export function connectAddress(address: string): string {
  return address === "0.0.0.0" ? "127.0.0.1" : address === "::" ? "::1" : address;
}

/**
 * `ferry <command> <subcommand> …`: run the subcommand; no subcommand prints
 * the usage (exit 2), `help` prints it (exit 0); a UsageError or a parseArgs
 * complaint prints the message and the usage (exit 2), any other error its
 * message (exit 1).
 */
export async function runSubcommands(
  command: string, usage: string, subs: Readonly<Record<string, (args: readonly string[]) => Promise<number>>>,
  args: readonly string[], io: Pick<CliIo, "stderr" | "stdout">,
): Promise<number> {
  const [sub, ...rest] = args;
  try {
    if (sub === undefined || sub === "help" || sub === "--help" || sub === "-h") {
      (sub === undefined ? io.stderr : io.stdout).write(usage);
      return sub === undefined ? EXIT_USAGE : EXIT_OK;
    }
    const run = Object.hasOwn(subs, sub) ? subs[sub] : undefined;
    if (run === undefined) throw new UsageError(`unknown subcommand "${sub}"`);
    return await run(rest);
  } catch (e: unknown) {
    io.stderr.write(`ferry ${command}: ${e instanceof Error ? e.message : String(e)}\n`);
    if (isUsageError(e)) {
      io.stderr.write(usage);
      return EXIT_USAGE;
    }
    return EXIT_FAILURE;
  }
}

/** `start [--port N] [--address A] [--dir DIR] [--environment E] [--module PATH] [APP_DIR]` of a private server. */
export interface DevStartArgs {
  readonly port: number;
  readonly address: string;
  readonly environment: string;
  readonly appDir: string;
  readonly dir: string;
  /** --module, resolved; undefined: the package's own build. */
  readonly module: string | undefined;
}

/** Parse a private server's `start` arguments; `kind` names its default dir ($TMPDIR/ferry-<kind>-<port>). */
export function parseDevStartArgs(kind: string, args: readonly string[], cwd: string, defaults: { readonly port: number; readonly address: string }): DevStartArgs {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      port: { type: "string" },
      address: { type: "string" },
      dir: { type: "string" },
      environment: { type: "string", short: "e" },
      module: { type: "string" },
    },
  });
  if (positionals.length > 1) throw new UsageError("start takes at most one APP_DIR");
  const port = parsePort(values.port, defaults.port);
  const address = parseAddress(values.address, defaults.address);
  const environment = values.environment ?? "development";
  if (!/^[A-Za-z0-9_.-]+$/.test(environment)) throw new UsageError(`--environment must be a word, got "${environment}"`);
  return {
    port, address, environment,
    appDir: path.resolve(cwd, positionals[0] ?? "."),
    dir: path.resolve(values.dir ?? defaultServerDir(kind, port)),
    module: values.module === undefined ? undefined : path.resolve(values.module),
  };
}

/** A private server's `stop [--dir DIR | --port N]`: its dir. */
export function parseDevStopDir(kind: string, args: readonly string[], defaultPort: number): string {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { dir: { type: "string" }, port: { type: "string" } },
  });
  if (positionals.length > 0) throw new UsageError("stop takes no positional arguments");
  return path.resolve(values.dir ?? defaultServerDir(kind, parsePort(values.port, defaultPort)));
}
