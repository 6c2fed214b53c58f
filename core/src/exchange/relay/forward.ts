/**
 * The relay path for a plain request (docs/protocol.md, "Which requests take
 * which path"): the core forwards the exchange to the app over HTTP/1.1 with
 * undici and relays the response back, both bodies streamed with backpressure.
 * Used by the standalone front, the affinity peer server, and module
 * connections that cannot take a lease (friendly error pages, protocol v2).
 */
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import type { FerryError } from "../../errors.js";
import type { Session, SessionOutcome } from "../../pool/session.js";
import { type AppAgents, oneShotClient } from "./app-agents.js";
import {
  CONNECT_CODES, Cancellation, RetryCheckout, appError, errCode, type RequestContext,
} from "../context.js";
import { addedResponseHeaders, appRequestHeaders, clientResponseHeaders } from "../headers.js";
import { endFailedExchange } from "./answer.js";

/**
 * The client's body as undici reads it: only once the app is connected, with
 * backpressure (undici awaits the socket's drain between chunks). Stopping
 * early (the app answered without reading it all) leaves the client's stream
 * to its front end instead of destroying it mid-response.
 */
async function* bodyChunks(body: Readable): AsyncGenerator<Buffer> {
  for await (const chunk of body.iterator({ destroyOnReturn: false })) {
    yield typeof chunk === "string" ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
  }
}

/**
 * Relays one app response to the exchange as undici hands it over (head, body
 * chunks with backpressure, end) and settles `done` once: resolved when the
 * response is complete, rejected with the failure or the cancellation reason.
 */
class Relay implements Dispatcher.DispatchHandlers {
  /** A connection to the app was established and the request is being written. */
  connected = false;
  headSent = false;
  readonly done: Promise<void>;
  #resolve: () => void = () => undefined;
  #reject: (e: unknown) => void = () => undefined;
  #settled = false;
  #abort: ((e?: Error) => void) | undefined;
  #cancelled: FerryError | undefined;
  #resume: (() => void) | undefined;

  constructor(private readonly ctx: RequestContext, private readonly session: Session, private readonly cancelWatch: Cancellation) {
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.done.catch(() => undefined);
  }

  /** Stop the exchange with the app (cancellation, or a failure on our side). */
  cancel(e: FerryError): void {
    this.#cancelled ??= e;
    this.#settle(e);
    this.#abort?.(e);
  }

  /** Cut the app request if it is still running (no-op once complete). */
  abort(): void {
    this.#abort?.(new Error("request ended"));
  }

  onConnect(abort: (e?: Error) => void): void {
    this.connected = true;
    this.#abort = abort;
    if (this.#cancelled !== undefined) abort(this.#cancelled);
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (status < 200) return true; // 1xx: informational, not relayed
    if (this.#settled) return false;
    const { ex } = this.ctx;
    const strs: string[] = new Array<string>(raw.length);
    for (let i = 0; i < raw.length; i++) strs[i] = raw[i]?.toString("latin1") ?? "";
    const out = clientResponseHeaders(status, strs);
    out.push(...addedResponseHeaders(ex.app, this.session.stickyId, ex.head.https));
    this.#resume = resume;
    try {
      ex.writeHead(status, out);
    } catch (e: unknown) {
      return this.#fail(e);
    }
    this.headSent = true;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#settled) return false;
    try {
      if (this.ctx.ex.write(chunk)) return true;
    } catch (e: unknown) {
      return this.#fail(e);
    }
    this.cancelWatch.drain(this.ctx.ex).then(() => {
      if (!this.#settled) this.#resume?.();
    }, (e: unknown) => this.#fail(e));
    return false;
  }

  /** A failure on our side while relaying: settle with it and cut the app request. */
  #fail(e: unknown): false {
    this.#settle(e);
    this.#abort?.(e instanceof Error ? e : new Error(String(e)));
    return false;
  }

  onComplete(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve();
  }

  onError(e: Error): void {
    this.#settle(e);
  }

  #settle(e: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(e);
  }
}

/** Forward a plain (non-upgrade) exchange and relay the answer; returns how it ended. */
export async function forward(ctx: RequestContext, session: Session, allowRetry: boolean): Promise<SessionOutcome> {
  const { ex, deps } = ctx;
  const cancel = new Cancellation(ex, session, ex.app);
  const relay = new Relay(ctx, session, cancel);
  cancel.onCancel((e) => relay.cancel(e));
  const oneShot = deps.agents === undefined ? oneShotClient(session.address) : undefined;
  let ok = false;
  try {
    // Step three: send the request; undici reads the body from the client only once the
    // app is connected. (A failure on a reused keep-alive connection is not retried: the
    // app may have received the request. Idle connections are dropped before the app's
    // keep-alive timeout, see app-agents.ts.)
    if (cancel.reason === undefined) {
      const dispatcher: Dispatcher = oneShot ?? (deps.agents as AppAgents).get(session.address);
      const opts: Dispatcher.DispatchOptions = {
        method: ex.head.method as Dispatcher.HttpMethod, // any token method goes through (validated by undici)
        path: ex.head.uri,
        headers: undiciHeaders(appRequestHeaders(ex.head)),
        headersTimeout: 0,
        bodyTimeout: 0,
        reset: oneShot !== undefined,
      };
      // undici takes async iterables as bodies (lib/core/request.js); its types only list streams.
      if (ex.head.hasBody) Reflect.set(opts, "body", bodyChunks(ex.body));
      dispatcher.dispatch(opts, relay);
    }
    try {
      await relay.done;
    } catch (e: unknown) {
      if (allowRetry && cancel.reason === undefined && !relay.connected && CONNECT_CODES.has(errCode(e))) {
        throw new RetryCheckout(appError(e, session, "connect"));
      }
      throw e;
    }
    // Step four happened in Relay: head, then the body with backpressure.
    if (cancel.reason !== undefined) throw cancel.reason;
    ex.end();
    ok = true;
    return "ok";
  } catch (e: unknown) {
    if (e instanceof RetryCheckout) throw e;
    return await endFailedExchange(ctx, session, cancel, e, relay.headSent, "send request", () => relay.abort());
  } finally {
    cancel.dispose();
    if (oneShot !== undefined) {
      (ok ? oneShot.close() : oneShot.destroy()).catch(() => undefined);
    }
  }
}

/** undici frames the body itself (chunked when the length is unknown) and refuses a Transfer-Encoding header. */
function undiciHeaders(headers: string[]): string[] {
  const n = headers.length;
  if (n >= 2 && headers[n - 2] === "Transfer-Encoding") headers.length = n - 2;
  return headers;
}
