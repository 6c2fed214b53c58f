/**
 * `ferry start [APP_DIR] [options]`: serve one app in standalone mode, like
 * `passenger start`. Options come from defaults < Passengerfile.json/ferry.json
 * < PASSENGER_* environment variables < flags (config/standalone-config.ts). SIGTERM/SIGINT
 * stop gracefully: stop accepting, drain in-flight requests until the
 * deadline, stop the app processes, exit 0.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { STANDALONE_OPTIONS } from "../../config/options.js";
import { readAppConfigFile, resolveStandaloneConfig } from "../../config/standalone-config.js";
import { ConfigError } from "../../errors.js";
import { openLogger } from "../../log.js";
import { startStandalone } from "../../standalone-mode.js";
import { timerDelay } from "../../util/clock.js";
import { FERRY_VERSION } from "../../version.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type CliIo } from "../io.js";

/** Seconds in-flight requests get to finish on SIGTERM before connections are cut. */
const DRAIN_DEADLINE_MS = 30_000;

type Options = NonNullable<ParseArgsConfig["options"]>;

function flagOptions(): Options {
  const opts: Options = {
    help: { type: "boolean", short: "h" },
    "drain-timeout": { type: "string" },
  };
  for (const spec of STANDALONE_OPTIONS) {
    if (spec.kind.t === "bool") {
      opts[spec.flag] = { type: "boolean" };
      opts[`no-${spec.flag}`] = { type: "boolean" };
    } else if (spec.kind.t === "envvars") opts[spec.flag] = { type: "string", multiple: true };
    else opts[spec.flag] = { type: "string" };
  }
  const short: Record<string, string> = { port: "p", address: "a", environment: "e" };
  for (const [flag, s] of Object.entries(short)) {
    const o = opts[flag];
    if (o !== undefined) opts[flag] = { ...o, short: s };
  }
  return opts;
}

export function startUsage(): string {
  const lines = STANDALONE_OPTIONS.map((s) => {
    if (s.kind.t === "bool") return `  --${`[no-]${s.flag}`.padEnd(48)} ${s.help}`;
    const k = s.kind;
    const arg = k.t === "envvars" ? " NAME=VALUE" : k.t === "int" ? " N" : k.t === "seconds" ? " SECONDS"
      : k.t === "enum" ? ` ${k.values.join("|")}` : ` ${s.key.toUpperCase()}`;
    return `  --${(s.flag + arg).padEnd(48)} ${s.help}`;
  });
  return `Usage: ferry start [APP_DIR] [options]

Serves the app in APP_DIR (default: the current directory) with no web server
in front. Reads Passengerfile.json or ferry.json in APP_DIR (snake_case keys as
below), then PASSENGER_<KEY> environment variables, then these flags:

${lines.join("\n")}
  --${"drain-timeout SECONDS".padEnd(48)} on SIGTERM, wait this long for in-flight requests (default 30)
`;
}

export async function run(args: readonly string[], io: CliIo): Promise<number> {
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: [...args], options: flagOptions(), strict: true, allowPositionals: true }));
  } catch (e: unknown) {
    io.stderr.write(`ferry start: ${e instanceof Error ? e.message : String(e)}\n\n${startUsage()}`);
    return EXIT_USAGE;
  }
  if (values["help"] === true) {
    io.stdout.write(startUsage());
    return EXIT_OK;
  }
  if (positionals.length > 1) {
    io.stderr.write(`ferry start: expected at most one APP_DIR\n\n${startUsage()}`);
    return EXIT_USAGE;
  }
  const appRoot = path.resolve(io.cwd, positionals[0] ?? ".");
  try {
    if (!(await fsp.stat(appRoot)).isDirectory()) throw new Error("not a directory");
  } catch (e: unknown) {
    io.stderr.write(`ferry start: Cannot serve ${appRoot}: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FAILURE;
  }
  let drainMs = DRAIN_DEADLINE_MS;
  const drain = values["drain-timeout"];
  if (typeof drain === "string") {
    const n = Number(drain);
    if (!/^\d+(\.\d+)?$/.test(drain) || !Number.isFinite(n)) {
      io.stderr.write(`ferry start: Cannot use flag --drain-timeout = "${drain}": expected a number of seconds\n`);
      return EXIT_USAGE;
    }
    drainMs = timerDelay(Math.round(n * 1000));
  }

  let config;
  try {
    const file = await readAppConfigFile(appRoot);
    config = resolveStandaloneConfig({ appRoot, file, env: io.env, flags: values });
  } catch (e: unknown) {
    if (e instanceof ConfigError) {
      io.stderr.write(`ferry start: ${e.message}\n`);
      return e.message.includes("flag --") ? EXIT_USAGE : EXIT_FAILURE;
    }
    throw e;
  }

  for (const key of config.ignoredKeys) {
    io.stderr.write(`ferry start: ignoring ${config.configFile} key "${key}": a Passenger Standalone option that does not apply to Ferry\n`);
  }
  const logHandle = openLogger({
    level: config.server.logLevel, file: config.server.logFile, name: "ferry", format: config.server.logFormat ?? "text", style: "terminal",
  });
  const log = logHandle.log;
  let instance;
  try {
    instance = await startStandalone({ config, log, reopenLog: () => logHandle.reopen() });
  } catch (e: unknown) {
    log.flush();
    io.stderr.write(`ferry start: Cannot start: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FAILURE;
  }
  io.stdout.write(
    `Ferry ${FERRY_VERSION} serving ${appRoot} (${config.app.appEnv}) on ${instance.url}\n` +
    `Instance: ${instance.instanceDir}\n` +
    (config.configFile !== "" ? `Config: ${config.configFile}\n` : "") +
    (instance.metricsUrl !== undefined ? `Metrics: ${instance.metricsUrl}\n` : "") +
    "Press Ctrl-C or send SIGTERM to stop.\n",
  );

  const running = instance;
  const onUsr1 = (): void => {
    running.reopenLogs().catch((e: unknown) => log.error({ err: e }, "Cannot reopen the log files"));
  };
  process.on("SIGUSR1", onUsr1);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (s: NodeJS.Signals): void => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      resolve(s);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  process.off("SIGUSR1", onUsr1);
  log.info({ signal }, "stopping: draining in-flight requests");
  io.stdout.write(`Stopping (${signal}): draining in-flight requests...\n`);
  try {
    await instance.stop(drainMs);
  } catch (e: unknown) {
    log.error({ err: e }, "Cannot stop cleanly");
    log.flush();
    return EXIT_FAILURE;
  }
  log.info("stopped");
  log.flush();
  io.stdout.write("Stopped.\n");
  return EXIT_OK;
}
