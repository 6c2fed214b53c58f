/**
 * Rewriting a request's headers before the app sees them (the pass marker,
 * the forwarded headers of a handed-off connection) without breaking Node's
 * lazy header objects: `req.headers` and `req.headersDistinct` are built on
 * first use from `req.rawHeaders` and Node's own count of its entries (an
 * internal symbol), then cached. After `rawHeaders` changes, the count must
 * follow it (else a later `headersDistinct` reads past the array's end and
 * throws) and a cache already built must get the changed names.
 *
 * Runs INSIDE the app process: node: built-ins and this folder only.
 */
import http from "node:http";
import type net from "node:net";

/** Node's internal symbols for the header bookkeeping of an IncomingMessage. */
interface HeaderSymbols {
  /** kHeadersCount: the rawHeaders entries the lazy getters read. */
  readonly count: symbol;
  /** kHeaders: the cache of req.headers (strings). */
  readonly headers: symbol;
  /** kHeadersDistinct: the cache of req.headersDistinct (arrays). */
  readonly distinct: symbol;
}

/** Looked up once (undefined: not yet; null: Node's internals are not the expected ones). */
let symbols: HeaderSymbols | null | undefined;

/**
 * Find the symbols on a message made for the purpose (kHeadersDistinct only
 * becomes an own property once used): no symbol lookup per request.
 */
function headerSymbols(): HeaderSymbols | null {
  if (symbols !== undefined) return symbols;
  try {
    const probe = new http.IncomingMessage(undefined as unknown as net.Socket);
    void probe.headers;
    void probe.headersDistinct;
    const own = Object.getOwnPropertySymbols(probe);
    const count = own.find((s) => s.description === "kHeadersCount");
    const headers = own.find((s) => s.description === "kHeaders");
    const distinct = own.find((s) => s.description === "kHeadersDistinct");
    symbols = count !== undefined && headers !== undefined && distinct !== undefined && typeof Reflect.get(probe, count) === "number"
      ? { count, headers, distinct } : null;
  } catch {
    symbols = null;
  }
  return symbols;
}

/** The symbols when Node's header bookkeeping of `req` is the expected one, else null. */
function symbolsOf(req: http.IncomingMessage): HeaderSymbols | null {
  const sym = headerSymbols();
  return sym !== null && typeof Reflect.get(req, sym.count) === "number" ? sym : null;
}

/** Set or remove `name` in one header object (if built): headersDistinct holds arrays, headers strings. */
function setIn(o: unknown, name: string, value: string | undefined, distinct: boolean): void {
  if (typeof o !== "object" || o === null) return;
  const rec = o as Record<string, unknown>;
  if (value === undefined) delete rec[name];
  else rec[name] = distinct ? [value] : value;
}

/**
 * Call before changing `req.rawHeaders` in place (then afterRawHeadersEdit,
 * then setCachedHeader for each changed name). With Node internals other
 * than the expected ones, it builds both header objects from the array as it
 * is, to be changed alongside it.
 */
export function beforeRawHeadersEdit(req: http.IncomingMessage): void {
  if (symbolsOf(req) === null) void [req.headers, req.headersDistinct];
}

/** After `req.rawHeaders` changed in place: Node's count of its entries follows it. */
export function afterRawHeadersEdit(req: http.IncomingMessage): void {
  const sym = symbolsOf(req);
  if (sym !== null) Reflect.set(req, sym.count, req.rawHeaders.length);
}

/**
 * `name` (lower case) gets the single value `value`, or is removed when
 * undefined, in each of Node's header objects already built (those built
 * later are built from the changed rawHeaders). No allocation.
 */
export function setCachedHeader(req: http.IncomingMessage, name: string, value: string | undefined): void {
  const sym = symbolsOf(req);
  if (sym === null) {
    setIn(req.headers, name, value, false);
    setIn(req.headersDistinct, name, value, true);
    return;
  }
  setIn(Reflect.get(req, sym.headers), name, value, false);
  setIn(Reflect.get(req, sym.distinct), name, value, true);
}

/**
 * Remove the last rawHeaders pair, whose name is `name` (lower case), and
 * `name` from Node's header objects already built (those built later are
 * built from the shorter rawHeaders): the pass marker, on every pass request.
 */
export function dropLastHeader(req: http.IncomingMessage, name: string): void {
  const sym = symbolsOf(req);
  if (sym === null) {
    editRawHeaders(req, (raw) => { raw.length -= 2; }, [name]);
    return;
  }
  const raw = req.rawHeaders;
  raw.pop();
  raw.pop();
  Reflect.set(req, sym.count, raw.length);
  setIn(Reflect.get(req, sym.headers), name, undefined, false);
  setIn(Reflect.get(req, sym.distinct), name, undefined, true);
}

const NO_VALUES: Readonly<Record<string, string>> = {};

/**
 * Change `req.rawHeaders` with `edit` and keep Node's header objects in step:
 * each name in `changed` (lower case) ends up with the single value
 * `values[name]`, or absent when `values` has none.
 */
export function editRawHeaders(
  req: http.IncomingMessage, edit: (raw: string[]) => void, changed: readonly string[], values: Readonly<Record<string, string>> = NO_VALUES,
): void {
  beforeRawHeadersEdit(req);
  edit(req.rawHeaders);
  afterRawHeadersEdit(req);
  for (const name of changed) setCachedHeader(req, name, values[name]);
}
