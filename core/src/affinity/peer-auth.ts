/**
 * Authentication of forwarded requests between cores (docs/affinity.md
 * "Peer protocol"). The sender puts the request's context in a meta header and
 * signs it with HMAC-SHA256 under the shared secret (PassengerAffinitySecretFile):
 *
 *   mac = HMAC(secret, "ferry-peer-v1\n" METHOD "\n" URI "\n" META "\n" sha256(headers))
 *
 * META (base64url JSON) carries a timestamp and a random nonce; the receiver
 * refuses a timestamp outside ±window and a nonce it has seen within it
 * (replay), then compares MACs in constant time. Pure apart from crypto and
 * an injected clock.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { RequestHead } from "../protocol/request-head.js";
import type { Clock } from "../util/clock.js";

export const META_HEADER = "x-ferry-peer-meta";
export const SIGNATURE_HEADER = "x-ferry-peer-signature";
/** Requests older or newer than this are refused. */
export const DEFAULT_WINDOW_MS = 30_000;
/** Smallest secret accepted. */
export const MIN_SECRET_BYTES = 16;

/** The forwarded request's context (what the receiving core's Exchange needs besides method, URI and headers). */
export interface PeerMeta extends Omit<RequestHead, "method" | "uri" | "headers"> {
  /** Sending node. */
  readonly from: string;
  /** App group name. */
  readonly app: string;
  /** Sticky id the client asked for. */
  readonly sticky: string;
  readonly ts: number;
  readonly nonce: string;
}

/** Headers that are per hop (or ours) and therefore not signed. */
const UNSIGNED = new Set([
  "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect",
  META_HEADER, SIGNATURE_HEADER,
]);

/** Whether a header crosses the hop as the client's own (and is signed). */
export function isEndToEnd(name: string): boolean {
  return !UNSIGNED.has(name.toLowerCase());
}

/** sha256 over the end-to-end headers (flat list of Node byte strings), in order. */
export function headersDigest(headers: readonly string[]): string {
  const h = createHash("sha256");
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i] ?? "";
    if (!isEndToEnd(name)) continue;
    h.update(Buffer.from(name.toLowerCase(), "latin1"));
    h.update("\0");
    h.update(Buffer.from(headers[i + 1] ?? "", "latin1"));
    h.update("\n");
  }
  return h.digest("hex");
}

export function encodeMeta(meta: PeerMeta): string {
  return Buffer.from(JSON.stringify(meta), "utf8").toString("base64url");
}

/** unknown (the meta header) → PeerMeta, or an error string. */
export function decodeMeta(text: string | undefined): PeerMeta | string {
  if (text === undefined || text === "") return "no meta header";
  if (text.length > 8192 || !/^[A-Za-z0-9_-]+$/.test(text)) return "malformed meta header";
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    return "meta header is not JSON";
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "meta header is not an object";
  const o = v as Readonly<Record<string, unknown>>;
  const s = (k: string): string | undefined => (typeof o[k] === "string" ? (o[k] as string) : undefined);
  const n = (k: string): number | undefined => (typeof o[k] === "number" && Number.isSafeInteger(o[k]) ? (o[k] as number) : undefined);
  const b = (k: string): boolean | undefined => (typeof o[k] === "boolean" ? (o[k] as boolean) : undefined);
  const from = s("from"), app = s("app"), sticky = s("sticky"), nonce = s("nonce"), proto = s("proto");
  const remoteAddr = s("remoteAddr"), serverName = s("serverName");
  const ts = n("ts"), remotePort = n("remotePort"), serverPort = n("serverPort");
  const https = b("https"), hasBody = b("hasBody"), upgrade = b("upgrade");
  if (from === undefined || app === undefined || sticky === undefined || nonce === undefined || proto === undefined ||
    remoteAddr === undefined || serverName === undefined || ts === undefined || remotePort === undefined ||
    serverPort === undefined || https === undefined || hasBody === undefined || upgrade === undefined) {
    return "meta header lacks a field";
  }
  if (!/^[0-9a-f]{16,64}$/.test(nonce)) return "malformed nonce";
  if (proto !== "HTTP/1.1" && proto !== "HTTP/1.0") return "malformed proto";
  return { from, app, sticky, ts, nonce, proto, remoteAddr, remotePort, serverName, serverPort, https, hasBody, upgrade };
}

export function newNonce(): string {
  return randomBytes(16).toString("hex");
}

/** The MAC (hex) of a forwarded request. */
export function signRequest(secret: Uint8Array, method: string, uri: string, metaText: string, headers: readonly string[]): string {
  return createHmac("sha256", secret)
    .update(`ferry-peer-v1\n${method}\n`)
    .update(Buffer.from(uri, "latin1"))
    .update(`\n${metaText}\n${headersDigest(headers)}`)
    .digest("hex");
}

/** Remembers nonces within the window; bounded (oldest dropped first). */
export class NonceCache {
  readonly #seen = new Map<string, number>();
  readonly #max: number;

  constructor(max = 200_000) {
    this.#max = max;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Record a nonce valid until `expiresAt`; false when it was already seen (replay). */
  add(nonce: string, expiresAt: number, now: number): boolean {
    for (const [n, exp] of this.#seen) {
      if (exp > now && this.#seen.size < this.#max) break;
      this.#seen.delete(n);
    }
    const prev = this.#seen.get(nonce);
    if (prev !== undefined && prev > now) return false;
    this.#seen.set(nonce, expiresAt);
    return true;
  }
}

export interface VerifyInput {
  readonly method: string;
  readonly uri: string;
  readonly headers: readonly string[];
  readonly metaText: string | undefined;
  readonly signature: string | undefined;
}

export type VerifyResult =
  | { readonly ok: true; readonly meta: PeerMeta }
  | { readonly ok: false; readonly reason: string };

/** Checks forwarded requests against the shared secret, the clock window and replays. */
export class PeerVerifier {
  readonly #secret: Uint8Array;
  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #nonces = new NonceCache();

  constructor(secret: Uint8Array, clock: Clock, windowMs = DEFAULT_WINDOW_MS) {
    this.#secret = secret;
    this.#clock = clock;
    this.#windowMs = windowMs;
  }

  verify(i: VerifyInput): VerifyResult {
    if (i.signature === undefined || i.signature === "") return { ok: false, reason: "no signature" };
    if (!/^[0-9a-f]{64}$/.test(i.signature)) return { ok: false, reason: "malformed signature" };
    const meta = decodeMeta(i.metaText);
    if (typeof meta === "string") return { ok: false, reason: meta };
    const expected = Buffer.from(signRequest(this.#secret, i.method, i.uri, i.metaText ?? "", i.headers), "hex");
    if (!timingSafeEqual(expected, Buffer.from(i.signature, "hex"))) return { ok: false, reason: "wrong signature" };
    const now = this.#clock.now();
    if (Math.abs(now - meta.ts) > this.#windowMs) return { ok: false, reason: `timestamp ${meta.ts} outside ±${this.#windowMs} ms of now` };
    if (!this.#nonces.add(meta.nonce, meta.ts + this.#windowMs + 1, now)) return { ok: false, reason: "replayed nonce" };
    return { ok: true, meta };
  }
}
