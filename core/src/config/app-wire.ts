/**
 * The app options' wire form (docs/protocol.md, "App options": snake_case
 * directive names in directive units, as mod_ferry sends them in every
 * REQUEST_HEAD) → AppOptions, or a ProtocolError naming the bad key. Keys,
 * types and ranges are config/options.ts's table (WIRE_OPTIONS).
 */
import { makeAppOptions, type AppOptions } from "./schema.js";
import { WIRE_OPTIONS, describeKind } from "./options.js";
import type { WireMap } from "../protocol/frames.js";
import { bool, fail, has, int, str } from "../protocol/wire-fields.js";

type WireOptionSpec = (typeof WIRE_OPTIONS)[number];

/** Validated app options by their wire form: every request of a vhost carries the same `app` map. */
const appOptionsCache = new Map<string, AppOptions>();
const APP_OPTIONS_CACHE_MAX = 512;

/** validateAppOptions(), memoised on the wire map and env (AppOptions are read-only, so sharing is safe). */
export function cachedAppOptions(app: WireMap, env: readonly string[]): AppOptions {
  const key = JSON.stringify(env.length === 0 ? app : [app, env]);
  const hit = appOptionsCache.get(key);
  if (hit !== undefined) return hit;
  const opts = validateAppOptions(app, env);
  if (appOptionsCache.size >= APP_OPTIONS_CACHE_MAX) appOptionsCache.clear();
  appOptionsCache.set(key, opts);
  return opts;
}

/** One option of the table from the wire; throws a ProtocolError naming `app.<key>`. */
function wireValue(app: WireMap, spec: WireOptionSpec): unknown {
  const field = `app.${spec.wire}`;
  const k = spec.kind;
  switch (k.t) {
    case "int": return int(app, spec.wire, field, k.min, undefined, k.max);
    // Whole seconds on the wire (the directives take no fractions).
    case "seconds": return int(app, spec.wire, field, k.min, undefined, k.max) * 1000;
    case "bool": return bool(app, spec.wire, field, false);
    case "enum": {
      const v = str(app, spec.wire, field);
      if (!k.values.includes(v)) fail(field, describeKind(k), v);
      return v;
    }
    case "string": {
      const v = str(app, spec.wire, field);
      if (k.nonEmpty === true && v === "") return undefined; // "" = not set: the default stays
      if (k.pattern !== undefined && !k.pattern.test(v)) fail(field, describeKind(k), v);
      return v;
    }
    case "envvars": return fail(field, "not an app option", app[spec.wire]);
  }
}

/**
 * Validate the `app` map and translate wire keys (snake_case, directive units)
 * into AppOptions, by config/options.ts's table. `env` is the flat
 * [name, value, …] list of the request. Unknown keys are ignored.
 */
export function validateAppOptions(app: WireMap, env: readonly string[] = []): AppOptions {
  const appRoot = str(app, "app_root", "app.app_root");
  if (!appRoot.startsWith("/")) fail("app.app_root", "an absolute path", appRoot);
  const given: Record<string, unknown> = {};
  for (const spec of WIRE_OPTIONS) {
    if (!has(app, spec.wire)) continue;
    const v = wireValue(app, spec);
    if (v !== undefined) given[spec.field] = v;
  }
  // Passenger's -1 ("not forced": the app's own value) is unlimited for Node and generic apps.
  if (given["maxConcurrentRequestsPerProcess"] === -1) given["maxConcurrentRequestsPerProcess"] = 0;
  if (has(app, "base_uri")) {
    const s = str(app, "base_uri", "app.base_uri");
    const b = s.replace(/\/+$/, "");
    if (b !== "" && !b.startsWith("/")) fail("app.base_uri", "empty or a path starting with /", s);
    given["baseURI"] = b;
  }
  // document_root is sent for information only (docs/protocol.md).
  if (has(app, "document_root")) str(app, "document_root", "app.document_root");

  if (env.length > 0) {
    const vars: Record<string, string> = {};
    for (let i = 0; i < env.length; i += 2) {
      const name = env[i] ?? "";
      if (name === "" || name.includes("=") || name.includes("\0")) fail(`env[${i}]`, "an environment variable name", name);
      const value = env[i + 1] ?? "";
      if (value.includes("\0")) fail(`env[${i + 1}]`, "a value without NUL", value);
      Object.defineProperty(vars, name, { value, enumerable: true, writable: true, configurable: true });
    }
    given["env"] = vars;
  }
  return makeAppOptions(appRoot, given as Partial<AppOptions>);
}
