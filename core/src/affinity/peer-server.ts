/**
 * Accepts requests forwarded by peer cores (PassengerAffinityListen), over
 * HTTP/1.1 keep-alive on TCP, optionally TLS. Each request is checked
 * (peer-auth.ts: HMAC under the shared secret, time window, nonce replay)
 * before anything else: a refused one gets 403 and a log line. An accepted
 * one whose app or process this core no longer has gets 421 + `X-Ferry-Peer:
 * gone` before its body is read (the sender re-pins locally). Otherwise it
 * becomes an Exchange served from this core's own pool as if it were local
 * (the handler is the request path); the answer, a 101 upgrade included,
 * streams back on the same connection.
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { AppOptions } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { Exchange, RequestHead } from "../exchange/exchange.js";
import { ExchangeTracker, NodeHttpExchange, NodeUpgradeExchange, listenTcp } from "../front/http/node-exchange.js";
import { META_HEADER, SIGNATURE_HEADER, isEndToEnd, type PeerMeta, type PeerVerifier } from "./peer-auth.js";

export const GONE_HEADER = "X-Ferry-Peer";

export interface PeerTlsOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** CA to verify peers' certificates (client side); default the system CAs. */
  readonly ca?: string | Buffer;
}

export interface PeerServerOptions {
  readonly verifier: PeerVerifier;
  readonly log: Logger;
  /** The app options this core serves under that group name, if any. */
  readonly resolveApp: (appGroupName: string) => AppOptions | undefined;
  /** Whether this core has a live process of the app with that sticky id. */
  readonly hasProcess: (appGroupName: string, stickyId: string) => boolean;
  /** Serve one exchange (the request path, without forwarding). Never rejects. */
  readonly handler: (ex: Exchange) => Promise<void>;
  readonly tls?: PeerTlsOptions;
}

/** The request head the request path sees for a forwarded request. */
function headOf(req: http.IncomingMessage, meta: PeerMeta): RequestHead {
  const headers: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? "";
    if (isEndToEnd(name)) headers.push(name, raw[i + 1] ?? "");
    else if (meta.upgrade && name.toLowerCase() === "upgrade") headers.push(name, raw[i + 1] ?? "");
  }
  return {
    method: req.method ?? "GET",
    uri: req.url ?? "/",
    proto: meta.proto,
    headers,
    remoteAddr: meta.remoteAddr,
    remotePort: meta.remotePort,
    serverName: meta.serverName,
    serverPort: meta.serverPort,
    https: meta.https,
    hasBody: meta.hasBody,
    upgrade: meta.upgrade,
  };
}

/** The app's headers without our peer marker (only this server may say "gone" or "refused"). */
function withoutMarker(headers: readonly string[]): string[] {
  const out: string[] = [];
  const marker = GONE_HEADER.toLowerCase();
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if ((headers[i] ?? "").toLowerCase() !== marker) out.push(headers[i] ?? "", headers[i + 1] ?? "");
  }
  return out;
}

type Admission =
  | { readonly kind: "serve"; readonly app: AppOptions; readonly meta: PeerMeta }
  | { readonly kind: "refuse"; readonly status: number; readonly reason: string; readonly gone: boolean };

export class PeerServer {
  readonly server: http.Server;
  readonly #opts: PeerServerOptions;
  readonly #log: Logger;
  readonly #exchanges: ExchangeTracker;
  /** Forwarded requests refused for authentication (for status and tests). */
  refused = 0;

  constructor(opts: PeerServerOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    // requireHostHeader: a client without Host is forwarded as it came.
    const serverOpts = { requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 30_000, requireHostHeader: false };
    this.server = opts.tls !== undefined
      ? https.createServer({ ...serverOpts, cert: opts.tls.cert, key: opts.tls.key })
      : http.createServer(serverOpts);
    this.#exchanges = new ExchangeTracker(this.server);
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const a = this.#admit(req);
      if (a.kind === "refuse") {
        res.writeHead(a.status, { "Content-Type": "text/plain", [GONE_HEADER]: a.gone ? "gone" : "refused", Connection: "close" });
        res.end(`${a.reason}\n`);
        req.resume();
        return;
      }
      if (req.headers.expect !== undefined) res.writeContinue();
      this.#exchanges.track(opts.handler(new NodeHttpExchange(a.app, headOf(req, a.meta), req, res, withoutMarker)));
    };
    this.server.on("request", onRequest);
    this.server.on("checkContinue", onRequest);
    this.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, rest: Buffer) => {
      socket.on("error", (e: unknown) => this.#log.debug({ err: e }, "forwarded upgrade socket error"));
      const a = this.#admit(req);
      if (a.kind === "refuse") {
        const extra = `${GONE_HEADER}: ${a.gone ? "gone" : "refused"}\r\n`;
        socket.end(`HTTP/1.1 ${a.status} ${http.STATUS_CODES[a.status] ?? ""}\r\n${extra}Connection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      this.#exchanges.trackUpgraded(socket);
      this.#exchanges.track(opts.handler(new NodeUpgradeExchange(a.app, headOf(req, a.meta), socket, rest, withoutMarker)));
    });
    this.server.on("clientError", (err: unknown, socket: Duplex) => {
      this.#log.debug({ err }, "peer connection error");
      socket.destroy();
    });
  }

  #admit(req: http.IncomingMessage): Admission {
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return typeof v === "string" ? v : undefined;
    };
    const v = this.#opts.verifier.verify({
      method: req.method ?? "",
      uri: req.url ?? "",
      headers: req.rawHeaders,
      metaText: header(META_HEADER),
      signature: header(SIGNATURE_HEADER),
    });
    const from = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? 0}`;
    if (!v.ok) {
      this.refused++;
      this.#log.warn({ peer: from, reason: v.reason }, `Refusing forwarded request from ${from}: ${v.reason}`);
      return { kind: "refuse", status: 403, reason: `Forbidden: ${v.reason}`, gone: false };
    }
    const { meta } = v;
    const app = this.#opts.resolveApp(meta.app);
    if (app === undefined) {
      this.#log.info({ peer: meta.from, app: meta.app }, `Cannot serve request forwarded by ${meta.from}: app "${meta.app}" is not served here`);
      return { kind: "refuse", status: 421, reason: "app not served here", gone: true };
    }
    if (!this.#opts.hasProcess(meta.app, meta.sticky)) {
      this.#log.debug({ peer: meta.from, app: meta.app, sticky: meta.sticky }, "forwarded request for a process that is gone");
      return { kind: "refuse", status: 421, reason: "process gone", gone: true };
    }
    return { kind: "serve", app, meta };
  }


  listen(port: number, host: string): Promise<AddressInfo> {
    return listenTcp(this.server, { port, host }, (e) => this.#log.error({ err: e }, "peer server error"));
  }

  /** Stop accepting, let forwarded exchanges finish until the deadline, then cut the rest. */
  async close(deadlineMs: number): Promise<void> {
    await this.#exchanges.close(deadlineMs);
  }
}
