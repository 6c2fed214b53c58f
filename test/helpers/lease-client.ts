/**
 * The module's side of protocol v3 (docs/protocol.md, "Version 3: leases") for
 * tests: sends REQUEST_HEAD/DONE frames and reads the core's answers with
 * recvmsg (os/native.ts's recvFd), so a descriptor passed with a LEASE is
 * received as mod_ferry receives it. A plain Node socket read would drop it.
 */
import net from "node:net";
import { recvFd } from "../../core/src/os/native.js";
import { FrameDecoder, encodeFrame } from "../../core/src/protocol/codec.js";
import type { DoneReport, Frame, WireMap } from "../../core/src/protocol/frames.js";

function fdOf(socket: net.Socket): number {
  const handle: unknown = Reflect.get(socket, "_handle");
  const fd: unknown = typeof handle === "object" && handle !== null ? Reflect.get(handle, "fd") : undefined;
  if (typeof fd !== "number" || fd < 0) throw new Error("Cannot read the socket's descriptor");
  return fd;
}

export interface ReceivedFrame {
  readonly frame: Frame;
  /** The descriptor that came with the frame's bytes, or -1. */
  readonly fd: number;
}

export class LeaseClient {
  readonly #socket: net.Socket;
  readonly #fd: number;
  readonly #decoder = new FrameDecoder();
  #pendingFd = -1;
  #eof = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#fd = fdOf(socket);
  }

  /** Connect without letting Node read the socket (reads go through recvmsg). */
  static connect(socketPath: string): Promise<LeaseClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ path: socketPath });
      s.pause();
      s.once("error", reject);
      s.once("connect", () => {
        s.pause();
        s.off("error", reject);
        s.on("error", () => undefined);
        resolve(new LeaseClient(s));
      });
    });
  }

  send(frame: Frame): void {
    this.#socket.write(encodeFrame(frame));
  }

  sendHead(head: WireMap): void {
    this.send({ kind: "request-head", head });
  }

  sendDone(report: DoneReport): void {
    this.send({ kind: "done", report });
  }

  /** The next frame from the core, with the descriptor that came with it; undefined at EOF. */
  async next(timeoutMs = 15_000): Promise<ReceivedFrame | undefined> {
    const started = Date.now();
    const deadline = started + timeoutMs;
    for (;;) {
      const f = this.#decoder.next();
      if (f !== undefined) {
        const fd = this.#pendingFd;
        this.#pendingFd = -1;
        return { frame: f, fd };
      }
      if (this.#eof) return undefined;
      let got: { data: Buffer; fd: number } | undefined;
      try {
        got = recvFd(this.#fd, 65536);
      } catch (e: unknown) {
        const code = typeof e === "object" && e !== null && "code" in e ? (e as { code: unknown }).code : undefined;
        if (code !== "EAGAIN") throw e;
      }
      if (got === undefined) {
        if (Date.now() > deadline) throw new Error(`Cannot read a frame from the core: none within ${timeoutMs} ms`);
        // Busy-poll for a moment (fast answers), then back off.
        await new Promise((r) => (Date.now() - started < 50 ? setImmediate(r) : setTimeout(r, 5)));
        continue;
      }
      if (got.fd >= 0) this.#pendingFd = got.fd;
      if (got.data.length === 0) this.#eof = true;
      else this.#decoder.push(got.data);
    }
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

/** One HTTP exchange over an app socket a LEASE handed out: write the head (+ body), read the whole response. */
export function httpOverSocket(app: net.Socket, head: Uint8Array, body?: Buffer, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`Cannot read the app's answer within ${timeoutMs} ms: ${JSON.stringify(text)}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      text += d.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const len = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
      const chunked = /\r\ntransfer-encoding: *chunked/i.test(text.slice(0, end));
      const done = len !== null ? text.length >= end + 4 + Number(len[1]) : chunked ? text.endsWith("0\r\n\r\n") : false;
      if (done) {
        clearTimeout(timer);
        app.off("data", onData);
        app.off("error", onError);
        resolve(text);
      }
    };
    app.on("data", onData);
    const onError = (e: Error): void => {
      clearTimeout(timer);
      app.off("data", onData);
      reject(e);
    };
    app.once("error", onError);
    app.write(head);
    if (body !== undefined) app.write(body);
  });
}
