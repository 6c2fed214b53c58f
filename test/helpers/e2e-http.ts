/**
 * Small HTTP clients for end-to-end tests: one request on a fresh connection
 * (node:http, no agent reuse), and a raw socket exchange for malformed input.
 * Every call has a deadline.
 */
import http, { type IncomingHttpHeaders } from "node:http";
import net from "node:net";
import type { Readable } from "node:stream";

export interface HttpResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  readonly text: string;
}

export interface RequestOptions {
  readonly path: string;
  readonly method?: string;
  /** Host header (selects the VirtualHost); default 127.0.0.1. */
  readonly host?: string;
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  /** A Buffer (sent with Content-Length) or a stream (sent chunked unless a length header is given). */
  readonly body?: Buffer | Readable;
  readonly timeoutMs?: number;
  /** Called once the whole request has been written to the socket. */
  readonly onSent?: () => void;
}

export function request(port: number, opts: RequestOptions): Promise<HttpResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[]> = { Host: opts.host ?? "127.0.0.1" };
    for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k] = typeof v === "string" ? v : [...v];
    if (Buffer.isBuffer(opts.body)) headers["Content-Length"] = String(opts.body.length);
    const req = http.request({
      host: "127.0.0.1",
      port,
      path: opts.path,
      method: opts.method ?? "GET",
      headers,
      agent: false,
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (opts.onSent !== undefined) req.on("finish", opts.onSent);
    req.on("error", (e) => reject(new Error(`Cannot ${opts.method ?? "GET"} ${opts.path}: ${e.message}`, { cause: e })));
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", (e) => reject(e));
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body, text: body.toString("utf8") });
      });
    });
    if (opts.body === undefined) req.end();
    else if (Buffer.isBuffer(opts.body)) req.end(opts.body);
    else opts.body.pipe(req);
  });
}

/** GET and parse a JSON body; throws with the body text when the status is not 200. */
export async function getJson(port: number, path: string, host?: string): Promise<Record<string, unknown>> {
  const res = await request(port, host === undefined ? { path } : { path, host });
  if (res.status !== 200) throw new Error(`Cannot GET ${path}: status ${res.status}: ${res.text.slice(0, 300)}`);
  const v: unknown = JSON.parse(res.text);
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`Cannot GET ${path}: not a JSON object`);
  return v as Record<string, unknown>;
}

/**
 * Write `bytes` on a raw TCP connection and collect what comes back until the
 * server closes (or `timeoutMs`, then whatever arrived).
 */
export function rawExchange(port: number, bytes: Buffer | string, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    const finish = (): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(Buffer.concat(chunks).toString("latin1"));
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on("connect", () => sock.write(bytes));
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("error", finish);
    sock.on("close", finish);
  });
}

/** Status code of the first HTTP response line in `text`, or 0. */
export function statusOf(text: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return m?.[1] === undefined ? 0 : Number(m[1]);
}
