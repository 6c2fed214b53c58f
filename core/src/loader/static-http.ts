/**
 * The HTTP decisions of answering a static file (static-files.ts): its
 * validators (ETag and Last-Modified as nginx forms them), the conditional
 * request headers (RFC 9110 §13.2.2 order) and a Range header. Pure: no I/O,
 * no clock.
 *
 * Ranges: one range per request (`bytes=0-99`, `bytes=100-`, `bytes=-100`)
 * gets 206 or, when it starts past the end, 416. A list of several ranges is
 * answered with the whole file (200), which RFC 9110 §14.2 allows; nginx
 * would send multipart/byteranges.
 *
 * Runs inside the app process too: no imports.
 */

/** What identifies one version of a file. */
export interface FileVersion {
  readonly size: number;
  /** Modification time, ms since the epoch (fs.Stats mtimeMs). */
  readonly mtimeMs: number;
}

/** nginx's strong ETag: `"<mtime seconds, hex>-<size, hex>"`. */
export function etagOf(f: FileVersion): string {
  return `"${Math.floor(f.mtimeMs / 1000).toString(16)}-${f.size.toString(16)}"`;
}

/** The Last-Modified value: the mtime as an HTTP date (whole seconds). */
export function lastModifiedOf(f: FileVersion): string {
  return new Date(Math.floor(f.mtimeMs / 1000) * 1000).toUTCString();
}

/** The request headers the decisions read (lower-case names, as Node's `req.headers`). */
export interface ConditionalHeaders {
  readonly "if-match"?: string | undefined;
  readonly "if-none-match"?: string | undefined;
  readonly "if-modified-since"?: string | undefined;
  readonly "if-unmodified-since"?: string | undefined;
  readonly "if-range"?: string | undefined;
  readonly range?: string | undefined;
}

/** The entity tags of an If-Match / If-None-Match list (`*` stays `*`). */
function tagList(value: string): string[] {
  return value.split(",").map((t) => t.trim()).filter((t) => t !== "");
}

function weakMatch(list: string, etag: string): boolean {
  const strip = (t: string): string => (t.startsWith("W/") ? t.slice(2) : t);
  return tagList(list).some((t) => t === "*" || strip(t) === strip(etag));
}

function strongMatch(list: string, etag: string): boolean {
  return tagList(list).some((t) => t === "*" || t === etag);
}

/** Seconds since the epoch of an HTTP date, or undefined when it is not one. */
function httpDateSeconds(value: string): number | undefined {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/**
 * The status the conditional headers ask for instead of the file, or
 * undefined to answer normally (RFC 9110 §13.2.2): If-Match (412 unless a
 * tag matches strongly), else If-Unmodified-Since (412 when modified after
 * it); then If-None-Match (304 when a tag matches weakly), else
 * If-Modified-Since (304 unless modified after it). Only GET and HEAD reach here.
 */
export function conditionalStatus(h: ConditionalHeaders, f: FileVersion): 304 | 412 | undefined {
  const etag = etagOf(f);
  const mtime = Math.floor(f.mtimeMs / 1000);
  const ifMatch = h["if-match"];
  if (ifMatch !== undefined) {
    if (!strongMatch(ifMatch, etag)) return 412;
  } else {
    const since = h["if-unmodified-since"] === undefined ? undefined : httpDateSeconds(h["if-unmodified-since"]);
    if (since !== undefined && mtime > since) return 412;
  }
  const ifNoneMatch = h["if-none-match"];
  if (ifNoneMatch !== undefined) return weakMatch(ifNoneMatch, etag) ? 304 : undefined;
  const since = h["if-modified-since"] === undefined ? undefined : httpDateSeconds(h["if-modified-since"]);
  if (since !== undefined && mtime <= since) return 304;
  return undefined;
}

/** The part of a file to send: all of it, bytes start..end (inclusive), or none (416). */
export type RangeDecision =
  | { readonly kind: "full" }
  | { readonly kind: "partial"; readonly start: number; readonly end: number }
  | { readonly kind: "unsatisfiable" };

const FULL: RangeDecision = { kind: "full" };
const SINGLE_RANGE = /^bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i;

/**
 * The part a GET's Range header asks for. The whole file when there is no
 * Range, it is not one `bytes` range (several, another unit, bad syntax:
 * ignored as RFC 9110 allows), the file is empty, or If-Range names another
 * version (a strong ETag, or the exact Last-Modified date).
 */
export function rangeOf(h: ConditionalHeaders, f: FileVersion): RangeDecision {
  const range = h.range;
  if (range === undefined || f.size === 0) return FULL;
  const ifRange = h["if-range"];
  if (ifRange !== undefined) {
    const v = ifRange.trim();
    const same = v.startsWith('"') || v.startsWith("W/") ? v === etagOf(f) : httpDateSeconds(v) === Math.floor(f.mtimeMs / 1000);
    if (!same) return FULL;
  }
  const m = SINGLE_RANGE.exec(range);
  if (m === null) return FULL;
  const first = m[1] ?? "";
  const last = m[2] ?? "";
  if (first === "" && last === "") return FULL;
  if (first === "") {
    // The last N bytes.
    const n = Number(last);
    if (n === 0) return { kind: "unsatisfiable" };
    return { kind: "partial", start: Math.max(0, f.size - n), end: f.size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? Infinity : Number(last);
  // An invalid range (last before first) is ignored; a valid one starting past the end cannot be met.
  if (end < start) return FULL;
  if (start >= f.size) return { kind: "unsatisfiable" };
  return { kind: "partial", start, end: Math.min(end, f.size - 1) };
}
