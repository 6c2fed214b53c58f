/**
 * Forwards an exchange to the core that owns its session (peer-server.ts on
 * the other side): HTTP/1.1 with keep-alive connections per peer (a fresh one
 * for an upgrade), optionally TLS, signed with the shared secret
 * (peer-auth.ts). A request body is only read once the peer accepted the
 * request (`Expect: 100-continue`), so when the peer cannot be reached, refuses
 * us, or no longer has the process, nothing of the exchange was consumed and
 * the caller serves it locally instead ("declined"). Once accepted, the
 * answer, a 101 upgrade included, streams back with backpressure.
 */
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "../log.js";
import type { Exchange } from "../exchange/exchange.js";
import { clientResponseHeaders, getHeader } from "../exchange/headers.js";
import { pumpBody } from "../util/backpressure.js";
import type { Clock } from "../util/clock.js";
import {
  META_HEADER, SIGNATURE_HEADER, encodeMeta, isEndToEnd, newNonce, signRequest, type PeerMeta,
} from "./peer-auth.js";
import { GONE_HEADER } from "./peer-server.js";

export interface PeerTarget {
  readonly node: string;
  /** host:port */
  readonly peer: string;
  readonly tls: boolean;
}

/** served: the peer answered (the exchange is complete); declined: serve it locally, nothing was consumed. */
export type ForwardResult = "served" | "declined";

export interface PeerClientOptions {
  readonly self: string;
  readonly secret: Uint8Array;
  readonly log: Logger;
  readonly clock: Clock;
  /** CA for peers' TLS certificates (default the system CAs). */
  readonly ca?: string | Buffer;
  /** Connecting to a peer gives up after this long (then: declined). Default 1000 ms. */
  readonly connectTimeoutMs?: number;
}

export function splitHostPort(peer: string): { host: string; port: number } | undefined {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(peer);
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535 || m[1] === undefined || m[1] === "") return undefined;
  return { host: m[1], port };
}

type First =
  | { readonly kind: "continue" }
  | { readonly kind: "response"; readonly res: http.IncomingMessage }
  | { readonly kind: "upgrade"; readonly res: http.IncomingMessage; readonly socket: Socket; readonly head: Buffer }
  | { readonly kind: "error"; readonly err: unknown };

export class PeerClient {
  readonly #opts: PeerClientOptions;
  readonly #agents = new Map<string, http.Agent>();
  /** Requests forwarded / declined (for status and tests). */
  forwarded = 0;
  declined = 0;

  constructor(opts: PeerClientOptions) {
    this.#opts = opts;
  }

  #agent(t: PeerTarget): http.Agent {
    const key = `${t.tls ? "tls" : "tcp"}://${t.peer}`;
    let a = this.#agents.get(key);
    if (a === undefined) {
      const o = { keepAlive: true, keepAliveMsecs: 1_000, maxFreeSockets: 64, timeout: 20_000, scheduling: "lifo" as const };
      a = t.tls ? new https.Agent({ ...o, ...(this.#opts.ca !== undefined ? { ca: this.#opts.ca } : {}) }) : new http.Agent(o);
      this.#agents.set(key, a);
    }
    return a;
  }

  /** Forward `ex` (sticky id `sticky`) to its owner. Never rejects. */
  /** `appKey`: the affinity key the session is pinned under (site-key.ts); the peer resolves its own app by it. */
  async forward(ex: Exchange, target: PeerTarget, sticky: string, appKey: string = ex.app.appGroupName, retried = false): Promise<ForwardResult> {
    const log = this.#opts.log.child({ peer: target.node });
    const addr = splitHostPort(target.peer);
    if (addr === undefined) {
      log.warn(`Cannot forward to node ${target.node}: bad peer address "${target.peer}"; serving locally`);
      this.declined++;
      return "declined";
    }
    const h = ex.head;
    const headers: string[] = [];
    for (let i = 0; i + 1 < h.headers.length; i += 2) {
      const name = h.headers[i] ?? "";
      if (isEndToEnd(name)) headers.push(name, h.headers[i + 1] ?? "");
    }
    const meta: PeerMeta = {
      from: this.#opts.self, app: appKey, sticky, ts: this.#opts.clock.now(), nonce: newNonce(),
      proto: h.proto === "HTTP/1.0" ? "HTTP/1.0" : "HTTP/1.1", remoteAddr: h.remoteAddr, remotePort: h.remotePort,
      serverName: h.serverName, serverPort: h.serverPort, https: h.https, hasBody: h.hasBody, upgrade: h.upgrade,
    };
    const metaText = encodeMeta(meta);
    const wire = [...headers, META_HEADER, metaText, SIGNATURE_HEADER, signRequest(this.#opts.secret, h.method, h.uri, metaText, headers)];
    if (h.upgrade) {
      wire.push("Connection", "Upgrade", "Upgrade", getHeader(h.headers, "upgrade") ?? "websocket");
    } else if (h.hasBody) {
      if (getHeader(headers, "content-length") === undefined) wire.push("Transfer-Encoding", "chunked");
      wire.push("Expect", "100-continue");
    }
    const lib = target.tls ? https : http;
    const req = lib.request({
      host: addr.host,
      port: addr.port,
      method: h.method,
      path: h.uri,
      headers: wire,
      setHost: false,
      agent: h.upgrade ? false : this.#agent(target),
      ...(target.tls && h.upgrade && this.#opts.ca !== undefined ? { ca: this.#opts.ca } : {}),
    });
    let connected = false;
    const connectTimer = setTimeout(() => {
      if (!connected) req.destroy(Object.assign(new Error(`no connection within ${this.#opts.connectTimeoutMs ?? 1000} ms`), { code: "ETIMEDOUT" }));
    }, this.#opts.connectTimeoutMs ?? 1_000);
    req.once("socket", (s: Socket) => {
      if (!s.connecting) connected = true;
      else s.once(target.tls ? "secureConnect" : "connect", () => { connected = true; });
    });
    const onClientGone = (): void => {
      req.destroy();
    };
    ex.signal.addEventListener("abort", onClientGone, { once: true });
    try {
      const wait = (): Promise<First> => new Promise<First>((resolve) => {
        const done = (f: First): void => {
          req.off("continue", onContinue);
          req.off("response", onResponse);
          req.off("upgrade", onUpgrade);
          req.off("error", onError);
          resolve(f);
        };
        const onContinue = (): void => done({ kind: "continue" });
        const onResponse = (res: http.IncomingMessage): void => done({ kind: "response", res });
        const onUpgrade = (res: http.IncomingMessage, socket: Socket, head: Buffer): void => done({ kind: "upgrade", res, socket, head });
        const onError = (err: unknown): void => done({ kind: "error", err });
        req.on("continue", onContinue);
        req.on("response", onResponse);
        req.on("upgrade", onUpgrade);
        req.on("error", onError);
      });
      let first = wait();
      if (!h.hasBody || h.upgrade) req.end();
      else req.flushHeaders();
      let f = await first;
      let bodySent = false;
      if (f.kind === "continue") {
        clearTimeout(connectTimer);
        bodySent = true;
        first = wait();
        req.on("error", () => undefined);
        pumpBody(ex.body, req, true).catch((e: unknown) => req.destroy(e instanceof Error ? e : new Error(String(e))));
        f = await first;
      }
      clearTimeout(connectTimer);
      switch (f.kind) {
        case "error": {
          if (ex.signal.aborted) return "served";
          if (!bodySent && req.reusedSocket && !retried) {
            // A keep-alive connection the peer closed just as we reused it: once more on a fresh one.
            return await this.forward(ex, target, sticky, appKey, true);
          }
          if (!bodySent) {
            const code = typeof f.err === "object" && f.err !== null ? String(Reflect.get(f.err, "code") ?? "") : "";
            log.warn({ code }, `Cannot forward to node ${target.node} at ${target.peer}: ${f.err instanceof Error ? f.err.message : String(f.err)}; serving locally`);
            this.declined++;
            return "declined";
          }
          this.#badGateway(ex, log, `the connection to node ${target.node} broke`);
          return "served";
        }
        case "response": {
          const res = f.res;
          const mark = res.headers[GONE_HEADER.toLowerCase()];
          if (!bodySent && (mark === "gone" || mark === "refused")) {
            res.resume();
            req.destroy();
            if (mark === "refused") log.error(`Cannot forward to node ${target.node}: it refused our signature (is PassengerAffinitySecretFile the same on every host?); serving locally`);
            else log.debug(`node ${target.node} no longer has process ${sticky}; re-pinning locally`);
            this.declined++;
            return "declined";
          }
          this.forwarded++;
          await this.#relay(ex, res, req, log, target);
          return "served";
        }
        case "upgrade": {
          this.forwarded++;
          ex.writeHead(101, clientResponseHeaders(101, f.res.rawHeaders));
          const client = ex.upgraded();
          if (f.head.length > 0) client.write(f.head);
          ex.tunnelEnded(f.head.length + await pipeBoth(client, f.socket, log));
          return "served";
        }
        case "continue":
          // A second 100 cannot come; treat as a broken peer.
          req.destroy();
          this.#badGateway(ex, log, `node ${target.node} sent two 100 Continue`);
          return "served";
      }
    } finally {
      clearTimeout(connectTimer);
      ex.signal.removeEventListener("abort", onClientGone);
    }
  }

  async #relay(ex: Exchange, res: http.IncomingMessage, req: http.ClientRequest, log: Logger, t: PeerTarget): Promise<void> {
    const status = res.statusCode ?? 502;
    ex.writeHead(status, clientResponseHeaders(status, res.rawHeaders));
    const onGone = (): void => {
      res.destroy();
    };
    ex.signal.addEventListener("abort", onGone, { once: true });
    try {
      for await (const chunk of res) {
        const buf: Uint8Array = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
        if (!ex.write(buf)) await ex.waitDrain();
        if (ex.signal.aborted) return;
      }
      if (!res.complete) throw new Error("the peer closed the connection before the end of the body");
      ex.end();
      if (!req.writableFinished) req.destroy();
    } catch (e: unknown) {
      if (ex.signal.aborted) return;
      log.warn(`Cannot relay the answer of node ${t.node}: ${e instanceof Error ? e.message : String(e)}`);
      ex.abort("FERRY_ERR_APP_RESPONSE", "The owning node broke the response");
    } finally {
      ex.signal.removeEventListener("abort", onGone);
    }
  }

  #badGateway(ex: Exchange, log: Logger, why: string): void {
    log.warn(`Cannot complete forwarded request: ${why}`);
    try {
      const body = Buffer.from("502 Bad Gateway: the host owning this session failed\n");
      ex.writeHead(502, ["Content-Type", "text/plain; charset=utf-8", "Content-Length", String(body.length)]);
      if (ex.head.method !== "HEAD") ex.write(body);
      ex.end();
    } catch {
      ex.abort("FERRY_ERR_APP_RESPONSE", why);
    }
  }

  /** Close idle peer connections. */
  destroy(): void {
    for (const a of this.#agents.values()) a.destroy();
    this.#agents.clear();
  }
}

/**
 * Pipe both ways with half-close until both sides closed; an error destroys
 * both. Resolves with the bytes the peer sent through it.
 */
function pipeBoth(client: Duplex, peer: Duplex, log: Logger): Promise<number> {
  return new Promise((resolve) => {
    let open = 2;
    let bytesToClient = 0;
    const closed = (): void => {
      open--;
      if (open === 0) resolve(bytesToClient);
    };
    client.on("error", (e: unknown) => {
      log.debug({ err: e }, "forwarded upgrade: client error");
      peer.destroy();
    });
    peer.on("error", (e: unknown) => {
      log.debug({ err: e }, "forwarded upgrade: peer error");
      client.destroy();
    });
    client.once("close", () => {
      if (!peer.destroyed) peer.end();
      setTimeout(() => peer.destroy(), 30_000).unref();
      closed();
    });
    peer.once("close", () => {
      if (!client.destroyed) client.end();
      setTimeout(() => client.destroy(), 30_000).unref();
      closed();
    });
    client.pipe(peer);
    peer.pipe(client);
    peer.on("data", (chunk: Buffer) => {
      bytesToClient += chunk.length;
    });
  });
}
