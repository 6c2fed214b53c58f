/**
 * A small client of the mod_ferry ↔ core protocol (docs/protocol.md): plays
 * the Apache module's part against a core's module socket. Sends frames,
 * reads response frames, and after a 101 switches to raw bytes.
 */
import net from "node:net";
import { FrameDecoder, encodeFrame } from "../../core/src/protocol/codec.js";
import type { Frame, WireMap } from "../../core/src/protocol/frames.js";

/** A REQUEST_HEAD map with the fields a module always sends; override any. */
export function requestHeadMap(overrides: Readonly<Record<string, unknown>> = {}, app: Readonly<Record<string, unknown>> = {}): WireMap {
  return {
    v: 1,
    method: "GET",
    uri: "/",
    proto: "HTTP/1.1",
    headers: ["Host", "localhost"],
    remote_addr: "127.0.0.1",
    remote_port: 40000,
    server_name: "localhost",
    server_port: 80,
    https: false,
    has_body: false,
    upgrade: false,
    gen: 1,
    app: { app_root: "/srv/app", ...app },
    env: [],
    ...overrides,
  };
}

export interface FrameResponse {
  readonly status: number;
  /** Flat [name, value, …] as received. */
  readonly headers: readonly string[];
  readonly body: Buffer;
  /** How the response ended. */
  readonly ending: "end" | "abort" | "eof";
  readonly abort?: { readonly code: string; readonly message: string };
}

/** The value of the first header `name` (case-insensitive) in a flat list. */
export function headerValue(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]?.toLowerCase() === name.toLowerCase()) return headers[i + 1];
  }
  return undefined;
}

type Waiter = () => void;

export class FrameClient {
  readonly socket: net.Socket;
  readonly #decoder = new FrameDecoder();
  readonly #frames: Frame[] = [];
  #raw: Buffer[] = [];
  #rawMode = false;
  #eof = false;
  #closed = false;
  #error: Error | undefined;
  #waiters: Waiter[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      if (this.#rawMode) {
        this.#raw.push(chunk);
      } else {
        try {
          this.#decoder.push(chunk);
          this.#drainFrames();
        } catch (e: unknown) {
          this.#error = e instanceof Error ? e : new Error(String(e));
        }
      }
      this.#wake();
    });
    socket.on("drain", () => this.#wake());
    socket.on("end", () => {
      this.#eof = true;
      this.#wake();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#eof = true;
      this.#wake();
    });
    socket.on("error", (e: Error) => {
      this.#error ??= e;
      this.#wake();
    });
  }

  /** Connect to a module socket (deadline `timeoutMs`). */
  static connect(path: string, timeoutMs = 10_000): Promise<FrameClient> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path, allowHalfOpen: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`Cannot connect to ${path}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve(new FrameClient(socket));
      });
    });
  }

  /** The socket was closed (both directions). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The core closed its sending side (EOF seen). */
  get ended(): boolean {
    return this.#eof;
  }

  send(frame: Frame): boolean {
    return this.socket.write(encodeFrame(frame));
  }

  sendHead(head: WireMap): boolean {
    return this.send({ kind: "request-head", head });
  }

  sendBody(data: Uint8Array | string): boolean {
    return this.send({ kind: "body", data: typeof data === "string" ? Buffer.from(data) : data });
  }

  sendEnd(): boolean {
    return this.send({ kind: "end" });
  }

  sendAbort(code = "client_aborted", message = "client went away"): boolean {
    return this.send({ kind: "abort", code, message });
  }

  /** Write arbitrary bytes (malformed frames, or raw bytes after a 101). */
  writeRaw(bytes: Uint8Array | string): boolean {
    return this.socket.write(bytes);
  }

  /** Wait until the socket can take more data. */
  async drain(timeoutMs = 10_000): Promise<void> {
    if (!this.socket.writableNeedDrain) return;
    await this.#until(() => !this.socket.writableNeedDrain || this.#closed, timeoutMs, "drain");
  }

  /** The next frame from the core; throws on EOF, a protocol error or the deadline. */
  async nextFrame(timeoutMs = 10_000): Promise<Frame> {
    await this.#until(() => this.#frames.length > 0 || this.#eof || this.#error !== undefined, timeoutMs, "a frame");
    const f = this.#frames.shift();
    if (f !== undefined) return f;
    if (this.#error !== undefined) throw this.#error;
    throw new Error("Cannot read frame: the core closed the connection");
  }

  /** Read RESPONSE_HEAD, BODY frames and END/ABORT (or EOF) into one response. */
  async readResponse(timeoutMs = 20_000): Promise<FrameResponse> {
    const deadline = Date.now() + timeoutMs;
    const head = await this.nextFrame(timeoutMs);
    if (head.kind !== "response-head") {
      if (head.kind === "abort") return { status: 0, headers: [], body: Buffer.alloc(0), ending: "abort", abort: head };
      throw new Error(`Cannot read response: got a ${head.kind} frame first`);
    }
    if (head.status === 101) return { status: 101, headers: head.headers, body: Buffer.alloc(0), ending: "end" };
    const parts: Buffer[] = [];
    for (;;) {
      let f: Frame;
      try {
        f = await this.nextFrame(Math.max(1, deadline - Date.now()));
      } catch (e: unknown) {
        if (this.#eof && this.#frames.length === 0 && this.#error === undefined) {
          return { status: head.status, headers: head.headers, body: Buffer.concat(parts), ending: "eof" };
        }
        throw e;
      }
      if (f.kind === "body") parts.push(Buffer.from(f.data));
      else if (f.kind === "end") return { status: head.status, headers: head.headers, body: Buffer.concat(parts), ending: "end" };
      else if (f.kind === "abort") return { status: head.status, headers: head.headers, body: Buffer.concat(parts), ending: "abort", abort: f };
      else throw new Error(`Cannot read response: unexpected ${f.kind} frame`);
    }
  }

  /** After a 101: stop decoding frames; what follows is raw. */
  switchToRaw(): void {
    if (this.#rawMode) return;
    this.#rawMode = true;
    const rest = this.#decoder.takeRaw();
    if (rest.length > 0) this.#raw.push(rest);
  }

  /** Raw mode: wait until at least `n` raw bytes arrived, return and consume exactly n. */
  async readRaw(n: number, timeoutMs = 10_000): Promise<Buffer> {
    await this.#until(() => this.#rawLength() >= n || this.#eof, timeoutMs, `${n} raw bytes`);
    const all = Buffer.concat(this.#raw);
    if (all.length < n) throw new Error(`Cannot read ${n} raw bytes: the connection ended after ${all.length}`);
    this.#raw = all.length > n ? [all.subarray(n)] : [];
    return all.subarray(0, n);
  }

  /** Raw mode: everything until the core closes its side. */
  async readRawToEnd(timeoutMs = 10_000): Promise<Buffer> {
    await this.#until(() => this.#eof, timeoutMs, "end of the raw stream");
    const all = Buffer.concat(this.#raw);
    this.#raw = [];
    return all;
  }

  /** Half-close our side (the module's `shutdown(SHUT_WR)`). */
  endWrite(): void {
    this.socket.end();
  }

  /** Wait until the core closed the connection. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    await this.#until(() => this.#eof, timeoutMs, "the connection to close");
  }

  destroy(): void {
    this.socket.destroy();
  }

  #rawLength(): number {
    return this.#raw.reduce((n, b) => n + b.length, 0);
  }

  #drainFrames(): void {
    for (;;) {
      const f = this.#decoder.next();
      if (f === undefined) return;
      this.#frames.push(f);
      // The 101 ends framing: whatever follows in this chunk is raw.
      if (f.kind === "response-head" && f.status === 101) {
        this.switchToRaw();
        return;
      }
    }
  }

  #wake(): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w();
  }

  #until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== check);
        reject(new Error(`Cannot wait for ${what}: not there within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): void => {
        if (cond()) {
          clearTimeout(timer);
          resolve();
        } else {
          this.#waiters.push(check);
        }
      };
      this.#waiters.push(check);
    });
  }
}

/** One whole exchange: connect, send head (+ body chunks) + END, read the response, close. */
export async function frameRequest(path: string, head: WireMap, body: readonly (Uint8Array | string)[] = []): Promise<FrameResponse> {
  const c = await FrameClient.connect(path);
  try {
    c.sendHead(head);
    for (const chunk of body) c.sendBody(chunk);
    c.sendEnd();
    return await c.readResponse();
  } finally {
    c.destroy();
  }
}
