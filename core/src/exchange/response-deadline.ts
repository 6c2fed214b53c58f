/**
 * A deadline for the response head of one exchange (`ferry start
 * --request-timeout`): when the app has not answered within it, the client gets
 * a 504 (a 408 when its own request had not fully arrived yet) and the request path sees the client go away (its signal aborts), so a
 * hung app holds neither the client nor the front server. Once the head went
 * out the deadline no longer applies (streaming responses and WebSockets run on).
 */
import type { Duplex, Readable } from "node:stream";
import type { AppOptions } from "../config/schema.js";
import type { Exchange, LeaseTaker, RequestHead } from "./exchange.js";
import { timerDelay } from "../util/clock.js";

export class ResponseDeadlineExchange implements Exchange {
  readonly head: RequestHead;
  readonly app: AppOptions;
  readonly lease?: LeaseTaker | undefined;
  readonly body: Readable;
  readonly signal: AbortSignal;
  readonly #inner: Exchange;
  readonly #expired = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #headSent = false;

  constructor(inner: Exchange, ms: number) {
    this.#inner = inner;
    this.head = inner.head;
    this.app = inner.app;
    this.body = inner.body;
    if (inner.lease !== undefined) this.lease = inner.lease;
    this.signal = AbortSignal.any([inner.signal, this.#expired.signal]);
    this.#timer = setTimeout(() => this.#expire(ms), timerDelay(ms));
    inner.signal.addEventListener("abort", () => this.#clear(), { once: true });
  }

  /** The deadline passed before the app answered: the client got a 504. */
  get expired(): boolean {
    return this.#expired.signal.aborted;
  }

  #clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #expire(ms: number): void {
    this.#timer = undefined;
    if (this.#headSent) return;
    // The request itself still incomplete: the client was too slow (408), else the app (504).
    const complete: unknown = Reflect.get(this.body, "complete");
    const clientSlow = complete === false || (complete === undefined && !this.body.readableEnded);
    this.#expired.abort();
    const text = clientSlow
      ? `408 Request Timeout: the request did not arrive within ${ms / 1000} s (ferry start --request-timeout)\n`
      : `504 Gateway Timeout: the app did not answer within ${ms / 1000} s (ferry start --request-timeout)\n`;
    this.#inner.writeHead(clientSlow ? 408 : 504, ["Content-Type", "text/plain; charset=utf-8", "Content-Length", String(Buffer.byteLength(text)), "Connection", "close"]);
    this.#inner.write(Buffer.from(text));
    this.#inner.end();
  }

  writeHead(status: number, headers: readonly string[]): void {
    if (this.expired) return;
    this.#headSent = true;
    this.#clear();
    this.#inner.writeHead(status, headers);
  }

  write(chunk: Uint8Array): boolean {
    if (this.expired) return true;
    return this.#inner.write(chunk);
  }

  waitDrain(): Promise<void> {
    return this.expired ? Promise.resolve() : this.#inner.waitDrain();
  }

  end(): void {
    this.#clear();
    if (!this.expired) this.#inner.end();
  }

  abort(code: string, message: string): void {
    this.#clear();
    if (!this.expired) this.#inner.abort(code, message);
  }

  upgraded(): Duplex {
    return this.#inner.upgraded();
  }

  tunnelEnded(bytesToClient: number): void {
    this.#inner.tunnelEnded(bytesToClient);
  }
}
