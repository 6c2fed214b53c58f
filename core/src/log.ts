/**
 * The one place that knows about pino. The core logs to stderr (or
 * PassengerLogFile / --log-file); components take a child logger with
 * `{ app, pid, reqId }`. Lines are readable by default (log-format.ts: a
 * terminal shape for `ferry start`, Apache's error-log shape under mod_ferry)
 * and pino's JSON with `format: "json"`. A log written to a file can be
 * reopened (log rotation: SIGUSR1, `ferry reopen-logs`, a graceful).
 */
import { pino, type Logger as PinoLogger } from "pino";
import { formatRecord, type LineStyle } from "./log-format.js";

export type Logger = PinoLogger;

/** PassengerLogFormat / --log-format. */
export type LogFormat = "text" | "json";

/** Passenger's PassengerLogLevel 0..7 mapped to pino levels. */
export function pinoLevelFor(passengerLevel: number): string {
  const levels = ["fatal", "error", "warn", "info", "info", "debug", "trace", "trace"];
  return levels[Math.max(0, Math.min(7, passengerLevel))] ?? "info";
}

export interface LoggerOptions {
  /** Passenger numbering 0..7; default 3 (notice). */
  readonly level?: number;
  /** A file to append to; "" or undefined = stderr. */
  readonly file?: string;
  /** Name shown in each JSON line. */
  readonly name?: string;
  /** "text" (default): readable lines; "json": one JSON object a line. */
  readonly format?: LogFormat;
  /** Shape of text lines; default "terminal". */
  readonly style?: LineStyle;
}

export interface LogHandle {
  readonly log: Logger;
  /** The file written, "" for stderr. */
  readonly file: string;
  /** Switch between readable and JSON lines (a graceful with a new PassengerLogFormat). */
  setFormat(format: LogFormat): void;
  /** Reopen the file by its name (after a rotation moved it); no-op for stderr. */
  reopen(): void;
  /** Flush buffered lines (bounded by `timeoutMs`). */
  flush(timeoutMs?: number): Promise<void>;
}

/** Open the logger and keep the handle to reopen its file. */
export function openLogger(opts: LoggerOptions = {}): LogHandle {
  const level = pinoLevelFor(opts.level ?? 3);
  const file = opts.file ?? "";
  const dest = file !== ""
    ? pino.destination({ dest: file, append: true, sync: false, mkdir: true })
    : pino.destination({ fd: 2, sync: false });
  const style = opts.style ?? "terminal";
  // Text: each record pino serialised is reformatted into one line (only lines that are logged pay for it).
  let json = opts.format === "json";
  const stream = {
    write: (line: string): boolean => dest.write(json ? line : formatRecord(line, style)),
    flush: (cb?: (err?: Error) => void): void => dest.flush(cb),
    flushSync: (): void => dest.flushSync(),
  };
  const log = pino({ name: opts.name ?? "ferry", level, base: { corePid: process.pid } }, stream);
  return {
    log,
    file,
    setFormat: (format) => {
      json = format === "json";
    },
    reopen: () => {
      if (file !== "") dest.reopen();
    },
    flush: (timeoutMs = 1_000) => new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      try {
        dest.flush(() => {
          clearTimeout(t);
          resolve();
        });
      } catch {
        clearTimeout(t);
        resolve();
      }
    }),
  };
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return openLogger(opts).log;
}

/** A logger that drops everything (tests). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
