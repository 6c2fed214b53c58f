/**
 * unknown → typed: the REQUEST_HEAD map of docs/protocol.md into a RequestHead,
 * or a ProtocolError naming the bad field. Unknown keys are ignored (room for
 * growth within a protocol version). The `app` map and `env` list are checked
 * for shape here and translated into AppOptions by config/app-wire.ts.
 */
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, type WireMap } from "./frames.js";
import type { RequestHead } from "./request-head.js";
import { BAD_VALUE, TOKEN, bool, fail, fail0, has, int, pairs, str } from "./wire-fields.js";

/** A validated REQUEST_HEAD. */
export interface ValidatedRequestHead {
  readonly head: RequestHead;
  /** The app options' wire form (docs/protocol.md, "App options"): config/app-wire.ts reads it. */
  readonly app: WireMap;
  /** The request's environment: flat [name, value, …] (`env`). */
  readonly env: readonly string[];
  /** The module's configuration generation (`gen`). */
  readonly generation: number;
  /** The protocol version of the head (`v`): 2 lets the connection carry further exchanges, 3 takes leases. */
  readonly version: number;
  /** v3: ids of the idle app connections the module holds for this app (LEASE `reuse`). */
  readonly held: readonly string[];
  /** v3: the module can use passes (docs/protocol.md "Passes"); false when absent. */
  readonly pass: boolean;
  /** v3: the module can route pass requests by the sticky-session cookie (`pass_sticky`); false when absent. */
  readonly passSticky: boolean;
}

/** The most `held` ids a head may carry (docs/protocol.md, "REQUEST_HEAD additions"). */
export const MAX_HELD = 16;

// Request target: no whitespace or control characters.
const BAD_URI = /[\x00-\x20\x7f]/;

const ASCII = /^[\x00-\x7f]*$/;

/**
 * A wire str (UTF-8) as a Node "byte string": one char per byte (latin1), the
 * form Node's HTTP parser produces and its HTTP writer expects, so non-ASCII
 * bytes in the request target and header values reach the app unchanged.
 */
export function toByteString(s: string): string {
  return ASCII.test(s) ? s : Buffer.from(s, "utf8").toString("latin1");
}

/** The inverse of toByteString(): a Node byte string as the str to put on the wire. */
export function fromByteString(s: string): string {
  return ASCII.test(s) ? s : Buffer.from(s, "latin1").toString("utf8");
}

function subMap(map: WireMap, key: string, field: string): WireMap {
  const v = map[key];
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) return fail(field, "a map", v);
  return v as WireMap;
}

/** Validate a REQUEST_HEAD map (docs/protocol.md §REQUEST_HEAD). */
export function validateRequestHead(map: WireMap): ValidatedRequestHead {
  const v = map["v"];
  if (typeof v !== "number" || !Number.isInteger(v) || v < MIN_PROTOCOL_VERSION || v > PROTOCOL_VERSION) {
    fail0(`Cannot accept request head: protocol version ${typeof v === "number" ? String(v) : "missing"} is not ${MIN_PROTOCOL_VERSION}-${PROTOCOL_VERSION}`);
  }
  const method = str(map, "method", "method");
  if (!TOKEN.test(method)) fail("method", "a token", method);
  const uri = str(map, "uri", "uri");
  if (uri === "" || BAD_URI.test(uri)) fail("uri", "a request target without spaces or control characters", uri);
  const proto = str(map, "proto", "proto", "HTTP/1.1");
  if (proto !== "HTTP/1.1" && proto !== "HTTP/1.0") fail("proto", "HTTP/1.1 or HTTP/1.0", proto);
  const headers = pairs(map, "headers", "headers");
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] ?? "";
    const value = headers[i + 1] ?? "";
    if (!TOKEN.test(name)) fail(`headers[${i}]`, "a header name token", name);
    if (BAD_VALUE.test(value)) fail(`headers[${i + 1}]`, "a header value without CR, LF or NUL", value);
    headers[i + 1] = toByteString(value);
  }
  const head: RequestHead = {
    method,
    uri: toByteString(uri),
    proto,
    headers,
    remoteAddr: str(map, "remote_addr", "remote_addr", ""),
    remotePort: int(map, "remote_port", "remote_port", 0, 0, 65535),
    serverName: str(map, "server_name", "server_name", ""),
    serverPort: int(map, "server_port", "server_port", 0, 0, 65535),
    https: bool(map, "https", "https", false),
    hasBody: bool(map, "has_body", "has_body", false),
    upgrade: bool(map, "upgrade", "upgrade", false),
  };
  const generation = int(map, "gen", "gen", 0, 0);
  if (!has(map, "app")) fail("app", "a map", undefined);
  const env = pairs(map, "env", "env");
  const app = subMap(map, "app", "app");
  const held = has(map, "held") ? heldIds(map["held"]) : NO_HELD;
  const pass = bool(map, "pass", "pass", false);
  const passSticky = bool(map, "pass_sticky", "pass_sticky", false);
  return { head, app, env, generation, version: v, held, pass, passSticky };
}

const NO_HELD: readonly string[] = [];

function heldIds(v: unknown): readonly string[] {
  if (!Array.isArray(v) || v.length > MAX_HELD || !v.every((s) => typeof s === "string")) {
    return fail("held", `an array of at most ${MAX_HELD} strings`, v);
  }
  return v.length === 0 ? NO_HELD : (v as string[]);
}
