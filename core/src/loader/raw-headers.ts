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
import type http from "node:http";

/** Node's kHeadersCount symbol, found once by its description. */
let countSymbol: symbol | undefined;

function countSymbolOf(req: http.IncomingMessage): symbol | undefined {
  countSymbol ??= Object.getOwnPropertySymbols(req).find((s) => s.description === "kHeadersCount");
  return countSymbol !== undefined && typeof Reflect.get(req, countSymbol) === "number" ? countSymbol : undefined;
}

/** Node's header caches built so far on `req` (kHeaders, kHeadersDistinct). */
function builtCaches(req: http.IncomingMessage): object[] {
  const out: object[] = [];
  for (const s of Object.getOwnPropertySymbols(req)) {
    if (s.description !== "kHeaders" && s.description !== "kHeadersDistinct") continue;
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
  const sym = countSymbolOf(req);
  if (sym === undefined) {
    // Other Node internals: build both objects from the array as it is, then change them alongside it.
    const objects = [req.headers, req.headersDistinct];
    edit(req.rawHeaders);
    apply(objects, changed, values);
    return;
  }
  edit(req.rawHeaders);
  Reflect.set(req, sym, req.rawHeaders.length);
  apply(builtCaches(req), changed, values);
}
