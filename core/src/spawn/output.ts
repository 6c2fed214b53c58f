/**
 * Line-by-line capture of an app process's stdout and stderr: each line is
 * logged with the app and pid (Passenger's "App <pid> output: …") and handed
 * to an optional sink; a bounded tail is kept for SpawnError.output.
 */
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type { Logger } from "../log.js";

export type OutputStream = "stdout" | "stderr";

export interface OutputLine {
  readonly app: string;
  readonly pid: number;
  readonly stream: OutputStream;
  readonly line: string;
}

/** Receives every captured line (e.g. a per-app log file). */
export type OutputSink = (line: OutputLine) => void;

export interface OutputCaptureOptions {
  /** Logger for the lines; should already carry `{ app }` (a child logger). */
  readonly log: Logger;
  readonly app: string;
  readonly pid: number;
  readonly sink?: OutputSink | undefined;
  /** Log each line to `log` too (default true; false when the app has its own log file). */
  readonly logLines?: boolean;
  /** Bytes of tail kept for errors; default 64 KiB. */
  readonly tailBytes?: number;
  /** Longer lines are split; default 16 KiB. */
  readonly maxLineBytes?: number;
}

export class OutputCapture {
  readonly #opts: OutputCaptureOptions;
  readonly #tailLimit: number;
  readonly #maxLine: number;
  #tail: string[] = [];
  #tailSize = 0;
  #open = 0;
  #closed: Promise<void>;
  #resolveClosed: () => void = () => undefined;

  constructor(opts: OutputCaptureOptions) {
    this.#opts = opts;
    this.#tailLimit = opts.tailBytes ?? 64 * 1024;
    this.#maxLine = opts.maxLineBytes ?? 16 * 1024;
    this.#closed = new Promise((resolve) => { this.#resolveClosed = resolve; });
  }

  /** Read `stream` to its end, line by line. */
  attach(stream: Readable | null, name: OutputStream): void {
    if (stream === null) return;
    this.#open++;
    const decoder = new StringDecoder("utf8");
    let partial = "";
    stream.on("data", (chunk: Buffer) => {
      partial += decoder.write(chunk);
      let nl: number;
      while ((nl = partial.indexOf("\n")) !== -1) {
        this.#emit(name, partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
      while (partial.length > this.#maxLine) {
        this.#emit(name, partial.slice(0, this.#maxLine));
        partial = partial.slice(this.#maxLine);
      }
    });
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      partial += decoder.end();
      if (partial !== "") this.#emit(name, partial);
      partial = "";
      if (--this.#open === 0) this.#resolveClosed();
    };
    stream.on("end", finish);
    stream.on("close", finish);
    stream.on("error", finish);
  }

  /** Resolves once every attached stream has ended. */
  closed(): Promise<void> {
    if (this.#open === 0) return Promise.resolve();
    return this.#closed;
  }

  /** The last lines captured (both streams, in arrival order), bounded. */
  tail(): string {
    return this.#tail.join("\n");
  }

  #emit(stream: OutputStream, raw: string): void {
    const whole = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    for (let i = 0; i < whole.length || i === 0; i += this.#maxLine) this.#emitOne(stream, whole.slice(i, i + this.#maxLine));
  }

  #emitOne(stream: OutputStream, line: string): void {
    const { log, app, pid, sink } = this.#opts;
    if (this.#opts.logLines !== false) {
      if (stream === "stderr") log.warn({ pid, stream }, line);
      else log.info({ pid, stream }, line);
    }
    if (sink !== undefined) {
      try {
        sink({ app, pid, stream, line });
      } catch (e: unknown) {
        log.error({ app, pid, err: e }, "Cannot write app output to its sink");
      }
    }
    this.#tail.push(line);
    this.#tailSize += line.length + 1;
    while (this.#tailSize > this.#tailLimit && this.#tail.length > 1) {
      this.#tailSize -= (this.#tail.shift()?.length ?? 0) + 1;
    }
  }
}
