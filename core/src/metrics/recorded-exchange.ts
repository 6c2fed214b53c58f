/**
 * recordedExchange(): an Exchange that reports its end to a RequestRecorder
 * once, with the status it sent, its duration and the body bytes written.
 * Front ends wrap each exchange with it before handing it to the request path,
 * so the request path itself stays free of metrics code.
 */
import type { Duplex, Readable } from "node:stream";
import type { AppOptions } from "../config/schema.js";
import type { DoneReport, Lease } from "../protocol/frames.js";
import type { Exchange, LeaseTaker, RequestHead } from "../exchange/exchange.js";
import type { RequestRecorder } from "../pool/request-recorder.js";

class RecordedExchange implements Exchange {
  readonly #ex: Exchange;
  readonly #recorder: RequestRecorder;
  readonly #start = performance.now();
  #status = 0;
  #bytes = 0;
  #done = false;
  readonly lease: LeaseTaker | undefined;

  constructor(ex: Exchange, recorder: RequestRecorder) {
    this.#ex = ex;
    this.#recorder = recorder;
    const inner = ex.lease;
    // The direct path (docs/protocol.md, leases): the module's DONE report says how the exchange ended.
    this.lease = inner === undefined ? undefined : {
      held: inner.held,
      pass: inner.pass,
      passSticky: inner.passSticky,
      take: async (lease: Lease, appFd: number | undefined): Promise<DoneReport | undefined> => {
        const report = await inner.take(lease, appFd);
        if (report?.outcome === "stale") {
          this.#done = true; // retried as a new exchange, which is counted
        } else {
          this.#status = report?.status ?? 0;
          this.#bytes = report?.bytesOut ?? 0;
          this.finish();
        }
        return report;
      },
    };
  }

  get head(): RequestHead {
    return this.#ex.head;
  }

  get app(): AppOptions {
    return this.#ex.app;
  }

  get body(): Readable {
    return this.#ex.body;
  }

  get signal(): AbortSignal {
    return this.#ex.signal;
  }

  writeHead(status: number, headers: readonly string[]): void {
    this.#ex.writeHead(status, headers);
    this.#status = status;
  }

  write(chunk: Uint8Array): boolean {
    this.#bytes += chunk.byteLength;
    return this.#ex.write(chunk);
  }

  waitDrain(): Promise<void> {
    return this.#ex.waitDrain();
  }

  end(): void {
    try {
      this.#ex.end();
    } finally {
      this.finish();
    }
  }

  abort(code: string, message: string): void {
    try {
      this.#ex.abort(code, message);
    } finally {
      this.finish();
    }
  }

  upgraded(): Duplex {
    return this.#ex.upgraded();
  }

  /** The relay path's tunnel closed: what went to the client through it counts as response bytes. */
  tunnelEnded(bytesToClient: number): void {
    this.#bytes += bytesToClient;
    this.#ex.tunnelEnded(bytesToClient);
  }

  /** Report the exchange once (also when the request path ended without end() or abort()). */
  finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#recorder.requestFinished(this.#ex.app.appGroupName, this.#status, (performance.now() - this.#start) / 1000, this.#bytes);
  }
}

/**
 * Run `handle` on `ex` wrapped so the recorder hears of its end exactly once:
 * at end()/abort(), or when `handle` settles without either (client gone
 * while queued, tunnel closed).
 */
export async function recordExchange(ex: Exchange, recorder: RequestRecorder, handle: (ex: Exchange) => Promise<void>): Promise<void> {
  const rec = new RecordedExchange(ex, recorder);
  try {
    await handle(rec);
  } finally {
    rec.finish();
  }
}
