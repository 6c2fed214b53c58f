/**
 * The core config file mod_ferry (and the nginx module) writes and the core
 * reads at start and on SIGHUP (docs/core-config.md): unknown → CoreConfig, or
 * a ConfigError naming the key. The `server` map's keys, types, ranges and
 * defaults are config/options.ts's table (CORE_OPTIONS).
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { ConfigError } from "../errors.js";
import { parseListenAddress } from "./listen-address.js";
import { CORE_OPTIONS, type OptionSpec } from "./options.js";
import { SERVER_DEFAULTS, type ServerOptions } from "./schema.js";

/** The validated config file (docs/core-config.md). */
export interface CoreConfig {
  readonly version: 1;
  readonly generation: number;
  readonly instanceDir: string;
  readonly moduleSocket: string;
  readonly controlSocket: string;
  readonly apacheUid: number;
  readonly apacheGid: number;
  /** Apache's parent pid; 0 = do not watch. */
  readonly parentPid: number;
  /**
   * nginx's pid file (`pid`), "" = none: the master's pid, known only once
   * nginx daemonized (after the core started). Its workers are its children.
   */
  readonly frontPidFile: string;
  /** A pipe fd whose EOF means "exit"; -1 = none. */
  readonly lifelineFd: number;
  /** PassengerRedeployOnGraceful (pool/pool.ts's RedeployMode). */
  readonly redeployOnGraceful: "all" | "changed" | "off";
  /** The web server whose module wrote the file (properties.json, `ferry status`). */
  readonly integrationMode: "apache" | "nginx";
  readonly server: ServerOptions;
  /** PassengerPreStart URLs. */
  readonly prestart: readonly string[];
}

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function shown(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return "an array";
  if (isObj(v)) return "an object";
  return String(v);
}

class Reader {
  constructor(readonly obj: Obj, readonly prefix: string) {}

  #bad(key: string, what: string): never {
    throw new ConfigError(`Cannot read core config: ${this.prefix}${key} must be ${what}, got ${shown(this.obj[key])}`);
  }

  has(key: string): boolean {
    return Object.hasOwn(this.obj, key) && this.obj[key] !== undefined && this.obj[key] !== null;
  }

  int(key: string, min: number, max: number, dflt?: number): number {
    if (!this.has(key)) return dflt ?? this.#bad(key, `an integer ${min}-${max}`);
    const v = this.obj[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) return this.#bad(key, `an integer ${min}-${max}`);
    return v;
  }

  /**
   * A duration in seconds (may be fractional), returned in ms. The default
   * maximum is the directives' (one year); timers clamp what they cannot take.
   */
  seconds(key: string, dfltMs: number, min: number, max: number): number {
    if (!this.has(key)) return dfltMs;
    const v = this.obj[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) return this.#bad(key, `a number of seconds ${min}-${max}`);
    return Math.round(v * 1000);
  }

  bool(key: string, dflt: boolean): boolean {
    if (!this.has(key)) return dflt;
    const v = this.obj[key];
    if (typeof v !== "boolean") return this.#bad(key, "true or false");
    return v;
  }

  str(key: string, dflt?: string): string {
    if (!this.has(key)) return dflt ?? this.#bad(key, "a string");
    const v = this.obj[key];
    if (typeof v !== "string") return this.#bad(key, "a string");
    return v;
  }

  absPath(key: string, dflt?: string): string {
    const v = this.str(key, dflt);
    if (!path.isAbsolute(v)) return this.#bad(key, "an absolute path");
    return path.normalize(v);
  }

  oneOf<T extends string>(key: string, values: readonly T[], dflt: T): T {
    if (!this.has(key)) return dflt;
    const v = this.obj[key];
    const found = values.find((x) => x === v);
    return found ?? this.#bad(key, `one of ${values.join(", ")}`);
  }

  strList(key: string): string[] {
    if (!this.has(key)) return [];
    const v = this.obj[key];
    if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) return this.#bad(key, "an array of strings");
    return v as string[];
  }

  /** An option of the table, or its default when absent. Strings are the directives' as the module checked them. */
  option(spec: OptionSpec, dflt: unknown): unknown {
    const k = spec.kind;
    switch (k.t) {
      case "int": return this.int(spec.key, k.min, k.max, typeof dflt === "number" ? dflt : undefined);
      case "seconds": return this.seconds(spec.key, typeof dflt === "number" ? dflt : 0, k.min, k.max);
      case "bool": return this.bool(spec.key, dflt === true);
      case "string": return this.str(spec.key, typeof dflt === "string" ? dflt : "");
      case "enum": return this.oneOf(spec.key, k.values, typeof dflt === "string" ? dflt : (k.values[0] ?? ""));
      case "envvars": return this.#bad(spec.key, "not an option of the core config");
    }
  }

  map(key: string): Obj {
    if (!this.has(key)) return {};
    const v = this.obj[key];
    if (!isObj(v)) return this.#bad(key, "an object");
    return v;
  }
}

/** The `server` keys this core reads: the table's, and the PassengerPreStart list. */
const SERVER_KEYS: readonly string[] = [...CORE_OPTIONS.map((o) => o.key), "prestart"];

/** unknown (the parsed JSON) → CoreConfig, or a ConfigError naming the key. Unknown keys are ignored. */
export function parseCoreConfig(raw: unknown): CoreConfig {
  if (!isObj(raw)) throw new ConfigError(`Cannot read core config: the file must hold a JSON object, got ${shown(raw)}`);
  const top = new Reader(raw, "");
  const version = top.int("version", 1, 1);
  if (version !== 1) throw new ConfigError("Cannot read core config: version must be 1");
  const instanceDir = top.absPath("instance_dir");
  const s = new Reader(top.map("server"), "server.");
  const fields: Record<string, unknown> = { ...SERVER_DEFAULTS };
  for (const spec of CORE_OPTIONS) fields[spec.field] = s.option(spec, fields[spec.field]);
  // header/request timeouts are ferry start's own (the module front has Apache's).
  delete fields["headerTimeoutMs"];
  delete fields["requestTimeoutMs"];
  const server = {
    ...fields,
    instanceRegistryDir: path.dirname(instanceDir),
    connectionHandoff: false, // ferry start only: mod_ferry has its own direct path
  } as unknown as ServerOptions;
  if (server.metricsListen !== undefined && server.metricsListen !== "") parseListenAddress(server.metricsListen, "core config server.metrics_listen");
  const prestart = s.strList("prestart");
  for (const [i, u] of prestart.entries()) {
    if (!/^https?:\/\/[^\s/]+/.test(u)) throw new ConfigError(`Cannot read core config: server.prestart[${i}] must be an http(s) URL, got ${shown(u)}`);
  }
  return {
    version: 1,
    generation: top.int("generation", 0, Number.MAX_SAFE_INTEGER, 0),
    instanceDir,
    moduleSocket: top.absPath("module_socket", path.join(instanceDir, "module.sock")),
    controlSocket: top.absPath("control_socket", path.join(instanceDir, "control.sock")),
    apacheUid: top.int("apache_uid", 0, 4_294_967_294),
    apacheGid: top.int("apache_gid", 0, 4_294_967_294),
    parentPid: top.int("parent_pid", 0, 4_194_304, 0),
    frontPidFile: top.has("front_pid_file") ? top.absPath("front_pid_file") : "",
    lifelineFd: top.int("lifeline_fd", -1, 65_535, -1),
    redeployOnGraceful: top.oneOf("redeploy_on_graceful", ["all", "changed", "off"] as const, "all"),
    integrationMode: top.oneOf("integration_mode", ["apache", "nginx"] as const, "apache"),
    server,
    prestart,
  };
}

/** Keys of the `server` map this core does not know (a newer module); logged, not fatal. */
export function unknownServerKeys(raw: unknown): string[] {
  if (!isObj(raw) || !isObj(raw["server"])) return [];
  return Object.keys(raw["server"]).filter((k) => !SERVER_KEYS.includes(k));
}

/** Read and validate a config file. */
export async function readCoreConfig(file: string): Promise<{ config: CoreConfig; raw: unknown }> {
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (e: unknown) {
    throw new ConfigError(`Cannot read core config ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e: unknown) {
    throw new ConfigError(`Cannot read core config ${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  try {
    return { config: parseCoreConfig(raw), raw };
  } catch (e: unknown) {
    if (e instanceof ConfigError) throw new ConfigError(e.message.replace("Cannot read core config:", `Cannot read core config ${file}:`), { cause: e });
    throw e;
  }
}
