/**
 * Writing with backpressure (undici's `write() === false` ⇒ wait for
 * 'drain'): the one wait for a writable to drain, used by every front's
 * exchange and every relay, and the pump of a client's body into an HTTP
 * request to an app or a peer host.
 */
import type { ClientRequest } from "node:http";
import type { Readable } from "node:stream";

/** What drained() watches: a writable stream or socket, or an http.ServerResponse / ClientRequest. */
export interface DrainingWritable {
  readonly writableNeedDrain: boolean;
  readonly destroyed: boolean;
  on(event: "drain" | "close", listener: () => void): unknown;
  off(event: "drain" | "close", listener: () => void): unknown;
}

/** Resolves when `w` can take more data, or is closed (at once when it needs no drain). */
export function drained(w: DrainingWritable): Promise<void> {
  if (!w.writableNeedDrain || w.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      w.off("drain", done);
      w.off("close", done);
      resolve();
    };
    w.on("drain", done);
    w.on("close", done);
  });
}

/**
 * Stream a client's body into an HTTP request, pausing while the far side is
 * not reading, then end it. Stopping early (the request was destroyed: the
 * app answered without reading it all) leaves the client's stream to its
 * front end unless `destroyBodyOnStop`.
 */
export async function pumpBody(body: Readable, req: ClientRequest, destroyBodyOnStop = false): Promise<void> {
  for await (const chunk of body.iterator({ destroyOnReturn: destroyBodyOnStop })) {
    if (req.destroyed) return;
    const buf: Uint8Array = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
    if (!req.write(buf)) await drained(req);
  }
  if (!req.destroyed) req.end();
}
