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
  /** kHeaders and kHeadersDistinct: the getters' caches. */
  readonly caches: readonly symbol[];
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
    const caches = own.filter((s) => s.description === "kHeaders" || s.description === "kHeadersDistinct");
    symbols = count !== undefined && typeof Reflect.get(probe, count) === "number" && caches.length === 2 ? { count, caches } : null;
  } catch {
    symbols = null;
  }
  return symbols;
}

/** Node's header caches built so far on `req`. */
function builtCaches(req: http.IncomingMessage, caches: readonly symbol[]): object[] {
  const out: object[] = [];
  for (const s of caches) {
    const c: unknown = Reflect.get(req, s);
    if (typeof c === "object" && c !== null) out.push(c);
  }
  return out;
}

/** Set or remove each changed name: headersDistinct (null prototype) holds arrays, headers strings. */
function apply(objects: readonly object[], changed: readonly string[], values: Readonly<Record<string, string>>): void {
  for (const o of objects) {
    const distinct = Object.getPrototypeOf(o) === null;
    for (const name of changed) {
      const v = values[name];
      if (v === undefined) Reflect.deleteProperty(o, name);
      else Reflect.set(o, name, distinct ? [v] : v);
    }
  }
}

/**
 * Change `req.rawHeaders` with `edit` and keep Node's header objects in step:
 * each name in `changed` (lower case) ends up with the single value
 * `values[name]`, or absent when `values` has none.
 */
export function editRawHeaders(
  req: http.IncomingMessage, edit: (raw: string[]) => void, changed: readonly string[], values: Readonly<Record<string, string>> = {},
): void {
  const sym = headerSymbols();
  if (sym === null || typeof Reflect.get(req, sym.count) !== "number") {
    // Other Node internals: build both objects from the array as it is, then change them alongside it.
    const objects = [req.headers, req.headersDistinct];
    edit(req.rawHeaders);
    apply(objects, changed, values);
    return;
  }
  edit(req.rawHeaders);
  Reflect.set(req, sym.count, req.rawHeaders.length);
  apply(builtCaches(req, sym.caches), changed, values);
}
