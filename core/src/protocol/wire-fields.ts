/**
 * Readers of msgpack map fields for the validators: each returns the typed
 * value or throws a ProtocolError naming the field and what it must be.
 * Shared by the REQUEST_HEAD validator (validate.ts) and the app options'
 * wire form (config/app-wire.ts).
 */
import { ProtocolError } from "../errors.js";
import type { WireMap } from "./frames.js";

/** An HTTP token (method, header name, cookie name). */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Header values: no CR, LF or NUL (other controls and obs-text pass, as Apache lets them). */
export const BAD_VALUE = /[\r\n\0]/;

export function has(map: WireMap, key: string): boolean {
  return Object.hasOwn(map, key) && map[key] !== undefined && map[key] !== null;
}

export function fail(field: string, expected: string, value: unknown): never {
  let shown: string;
  if (typeof value === "string") shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  else if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") shown = String(value);
  else if (Array.isArray(value)) shown = "an array";
  else if (value instanceof Uint8Array) shown = "bin";
  else if (value === null || value === undefined) shown = "missing";
  else shown = "a map";
  return fail0(`Cannot accept request head: ${field} must be ${expected}, got ${shown}`);
}

export function fail0(message: string): never {
  throw new ProtocolError(message);
}

export function str(map: WireMap, key: string, field: string, dflt?: string): string {
  if (!has(map, key)) {
    if (dflt !== undefined) return dflt;
    return fail(field, "a string", undefined);
  }
  const v = map[key];
  if (typeof v !== "string") return fail(field, "a string", v);
  return v;
}

export function int(map: WireMap, key: string, field: string, min: number, dflt?: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!has(map, key)) {
    if (dflt !== undefined) return dflt;
    return fail(field, "an integer", undefined);
  }
  const v = map[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    return fail(field, `an integer ${min}-${max === Number.MAX_SAFE_INTEGER ? "…" : String(max)}`, v);
  }
  return v;
}

export function bool(map: WireMap, key: string, field: string, dflt: boolean): boolean {
  if (!has(map, key)) return dflt;
  const v = map[key];
  if (typeof v !== "boolean") return fail(field, "a boolean", v);
  return v;
}

export function pairs(map: WireMap, key: string, field: string): string[] {
  if (!has(map, key)) return [];
  const v = map[key];
  if (!Array.isArray(v) || v.length % 2 !== 0 || !v.every((s) => typeof s === "string")) {
    return fail(field, "a flat array of name/value strings", v);
  }
  return [...(v as string[])];
}
