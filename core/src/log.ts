/**
 * The one place that knows about pino. The core logs JSON lines to stderr (or
 * PassengerLogFile); components take a child logger with `{ app, pid, reqId }`.
 */
import { pino, type Logger as PinoLogger } from "pino";

export type Logger = PinoLogger;

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
  /** Name shown in each line. */
  readonly name?: string;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = pinoLevelFor(opts.level ?? 3);
  const dest = opts.file !== undefined && opts.file !== ""
    ? pino.destination({ dest: opts.file, append: true, sync: false, mkdir: true })
    : pino.destination({ fd: 2, sync: false });
  return pino({ name: opts.name ?? "ferry", level, base: { corePid: process.pid } }, dest);
}

/** A logger that drops everything (tests). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
