/**
 * The core process of module mode: mod_ferry starts
 * `node build/core/src/main.js --config <instance dir>/config.json`
 * (docs/core-config.md). Reads and validates the config, starts the instance
 * (module-mode.ts, which assembles it with instance.ts) and wires the
 * signals: SIGHUP re-reads the config (graceful), SIGTERM/SIGINT drain and
 * exit, and the core also exits when its parent (Apache) is gone or the
 * lifeline fd reaches EOF. Tests build a core in-process with startModuleCore().
 */
import { realpathSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { readCoreConfig, unknownServerKeys, type CoreConfig } from "./config/core-config.js";
import { openLogger, type Logger } from "./log.js";
import { startModuleCore, type ModuleCore } from "./module-mode.js";
import { processGone } from "./os/probes.js";

/**
 * Request each PassengerPreStart URL so its app spawns before the first real
 * request. Apache may not listen yet when the core starts: retry for a while.
 */
export async function prestartUrls(urls: readonly string[], log: Logger, signal: AbortSignal): Promise<void> {
  await Promise.all(urls.map(async (url) => {
    const giveUp = Date.now() + 60_000;
    for (let delay = 500; !signal.aborted; delay = Math.min(delay * 2, 5_000)) {
      try {
        const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(120_000)]), redirect: "manual" });
        await res.arrayBuffer().catch(() => undefined);
        log.info({ url, status: res.status }, "Prestarted");
        return;
      } catch (e: unknown) {
        if (signal.aborted) return;
        if (Date.now() + delay > giveUp) {
          log.warn({ url, err: e }, "Cannot prestart: the URL did not answer");
          return;
        }
      }
      await new Promise<void>((r) => {
        const onAbort = (): void => {
          clearTimeout(t);
          r();
        };
        // Removed when the timer fires: one listener per retry would pile up on the shared signal.
        const t = setTimeout(() => {
          signal.removeEventListener("abort", onAbort);
          r();
        }, delay);
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
  }));
}

/** `main.js --config <file>`: run a module-mode core until told to stop. Returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let configFile: string;
  try {
    const { values } = parseArgs({ args: [...argv], options: { config: { type: "string" } }, strict: true });
    if (values.config === undefined) throw new Error("--config <file> is required");
    configFile = path.resolve(values.config);
  } catch (e: unknown) {
    process.stderr.write(`ferry core: ${e instanceof Error ? e.message : String(e)}\nusage: main.js --config <file>\n`);
    return 2;
  }
  let config: CoreConfig;
  let raw: unknown;
  try {
    ({ config, raw } = await readCoreConfig(configFile));
  } catch (e: unknown) {
    process.stderr.write(`ferry core: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  // Readable lines in Apache's error-log shape by default; to PassengerLogFile, else Apache's ErrorLog file
  // (opened by name, so a graceful after a rotation moves to the new file), else the stderr Apache gave us.
  const logHandle = openLogger({
    level: config.server.logLevel, file: config.server.logFile || config.server.errorLog || "", name: "ferry-core",
    format: config.server.logFormat ?? "text", style: "apache",
  });
  const log = logHandle.log;
  const unknown = unknownServerKeys(raw);
  if (unknown.length > 0) log.warn({ keys: unknown }, "Ignoring unknown server keys in the core config");

  let exiting = false;
  const die = async (code: number, why: string, err?: unknown): Promise<never> => {
    if (err !== undefined) log.fatal({ err }, why);
    else log.fatal(why);
    await logHandle.flush();
    process.exit(code);
  };
  process.on("unhandledRejection", (reason: unknown) => void die(1, "Unhandled promise rejection", reason));
  process.on("uncaughtException", (err: unknown) => void die(1, "Uncaught exception", err));

  let core: ModuleCore;
  try {
    core = await startModuleCore({ config, log, reopenCoreLog: () => logHandle.reopen(), setLogFormat: (f) => logHandle.setFormat(f) });
  } catch (e: unknown) {
    log.fatal({ logno: 304, err: e }, `Cannot start the Ferry core: ${e instanceof Error ? e.message : String(e)}`);
    await logHandle.flush();
    return 1;
  }
  const prestartAbort = new AbortController();
  void prestartUrls(config.prestart, log.child({ component: "prestart" }), prestartAbort.signal);

  const shutdown = async (why: string): Promise<void> => {
    if (exiting) return;
    exiting = true;
    log.info(`Shutting down: ${why}`);
    prestartAbort.abort();
    const hardStop = setTimeout(() => void die(1, "Shutdown did not finish in time"), 60_000);
    hardStop.unref();
    try {
      await core.stop(Math.min(30_000, Math.max(5_000, core.config.server.processShutdownTimeoutMs)));
    } catch (e: unknown) {
      log.error({ err: e }, "Cannot stop cleanly");
    }
    await logHandle.flush();
    process.exit(0);
  };

  let reloading = Promise.resolve();
  process.on("SIGHUP", () => {
    reloading = reloading.then(async () => {
      if (exiting) return;
      try {
        const next = await readCoreConfig(configFile);
        const unk = unknownServerKeys(next.raw);
        if (unk.length > 0) log.warn({ keys: unk }, "Ignoring unknown server keys in the core config");
        core.reload(next.config);
        // A graceful follows a log rotation (logrotate's postrotate): write to the new files from now on.
        await core.reopenLogs();
      } catch (e: unknown) {
        log.error({ logno: 305, err: e }, `Cannot reload the configuration, keeping the current one: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  });
  process.on("SIGUSR1", () => {
    core.reopenLogs().catch((e: unknown) => log.error({ err: e }, "Cannot reopen the log files"));
  });
  let signals = 0;
  const onStop = (sig: string): void => {
    if (++signals > 1) void die(1, `${sig} again: exiting without waiting`);
    else void shutdown(sig);
  };
  process.on("SIGTERM", () => onStop("SIGTERM"));
  process.on("SIGINT", () => onStop("SIGINT"));

  if (config.parentPid > 0) {
    const parent = config.parentPid;
    const watchedPpid = process.ppid;
    const timer = setInterval(() => {
      const reparented = watchedPpid === parent && process.ppid !== parent;
      if (reparented || processGone(parent)) {
        clearInterval(timer);
        void shutdown(`parent process ${parent} is gone`);
      }
    }, 1_000);
  }
  if (config.lifelineFd >= 0) {
    try {
      const lifeline = new net.Socket({ fd: config.lifelineFd, readable: true, writable: false });
      lifeline.on("data", () => undefined);
      lifeline.on("error", (e: unknown) => log.warn({ err: e }, "lifeline fd error"));
      lifeline.on("close", () => void shutdown(`lifeline fd ${config.lifelineFd} closed`));
      lifeline.unref();
    } catch (e: unknown) {
      log.warn({ err: e, fd: config.lifelineFd }, "Cannot watch the lifeline fd");
    }
  }
  return new Promise<number>(() => undefined);
}

/** Whether this file is the program node was started with (also through a symlinked PassengerRoot). */
function isEntryPoint(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`ferry core: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
