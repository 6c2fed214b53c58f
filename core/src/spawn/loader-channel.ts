/**
 * The core's reader of one loader control channel (fd 3 of a Node app
 * process): splits the stream into JSON lines, validates each
 * (loader/messages.ts) and hands the messages to the current listeners, from
 * the first byte until the process exits. Readiness (readiness.ts) listens
 * during the spawn; the pool listens to the periodic "loop" reports after.
 * Malformed lines are dropped.
 */
import type { Duplex } from "node:stream";
import { MAX_MESSAGE_BYTES, parseLoaderMessage, splitLines, type LoaderMessage } from "../loader/messages.js";

export type LoaderMessageListener = (msg: LoaderMessage) => void;

export class LoaderChannel {
  private readonly listeners = new Set<LoaderMessageListener>();
  private buf = "";

  constructor(readonly stream: Duplex) {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => this.onData(chunk));
    stream.on("error", () => { /* the process exit is what matters */ });
  }

  /** Call `listener` with every later message; returns a function that stops it. */
  subscribe(listener: LoaderMessageListener): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    const { lines, rest } = splitLines(this.buf);
    this.buf = rest.length > MAX_MESSAGE_BYTES ? "" : rest;
    for (const line of lines) {
      const msg = parseLoaderMessage(line);
      if (msg === undefined) continue;
      for (const l of [...this.listeners]) l(msg);
    }
  }
}
