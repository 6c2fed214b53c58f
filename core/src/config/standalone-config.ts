/**
 * `ferry start`'s configuration: unknown → validated StandaloneConfig. The
 * options are config/options.ts's STANDALONE_OPTIONS, each under its
 * Passengerfile.json key (snake_case, as `passenger start`), its flag
 * (kebab-case) and its environment variable (PASSENGER_<KEY>). Values from the
 * file, the environment and the command line are checked here; a bad one is a ConfigError naming the key, where it came
 * from, and what it accepts.
 *
 * Precedence (Passenger's): defaults < Passengerfile.json / ferry.json < PASSENGER_* < flags.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { ConfigError } from "../errors.js";
import { SERVER_DEFAULTS, makeAppOptions, type AppOptions, type ServerOptions } from "./schema.js";
import { STANDALONE_OPTIONS, describeKind, type StandaloneOptionSpec } from "./options.js";

export interface ListenOptions {
  readonly port: number;
  readonly address: string;
}

export interface StandaloneConfig {
  readonly appRoot: string;
  readonly listen: ListenOptions;
  readonly app: AppOptions;
  readonly server: ServerOptions;
  /** The config file that was read, if any. */
  readonly configFile: string;
  /** Passenger-only keys of that file that Ferry ignored (PASSENGER_IGNORED_KEYS). */
  readonly ignoredKeys: readonly string[];
}

/** Values for one source: key → raw value (file: JSON values; env/flags: strings, booleans, string lists). */
export type RawValues = Readonly<Record<string, unknown>>;

/** `--static-files-dir` when not given: `<app>/public`, as `passenger start`. */
export const DEFAULT_STATIC_FILES_DIR = "public";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parse one value of an option; `where` names the source in errors. */
export function parseOptionValue(spec: StandaloneOptionSpec, raw: unknown, where: string): unknown {
  const bad = (): ConfigError =>
    new ConfigError(`Cannot use ${where} "${spec.key}" = ${JSON.stringify(raw)}: expected ${describeKind(spec.kind)}`);
  const k = spec.kind;
  switch (k.t) {
    case "int": {
      const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isInteger(n) || n < k.min || n > k.max) throw bad();
      return n;
    }
    case "seconds": {
      const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(n) || n < k.min || n > k.max) throw bad();
      return Math.round(n * 1000);
    }
    case "bool": {
      if (typeof raw === "boolean") return raw;
      if (typeof raw === "string") {
        const s = raw.trim().toLowerCase();
        if (["true", "on", "yes", "1"].includes(s)) return true;
        if (["false", "off", "no", "0"].includes(s)) return false;
      }
      throw bad();
    }
    case "string": {
      if (typeof raw !== "string") throw bad();
      if (k.nonEmpty === true && raw.trim() === "") throw bad();
      if (k.pattern !== undefined && !k.pattern.test(raw)) throw bad();
      return raw;
    }
    case "enum": {
      if (typeof raw !== "string" || !k.values.includes(raw)) throw bad();
      return raw;
    }
    case "envvars": {
      const out: Record<string, string> = {};
      const add = (name: string, value: unknown): void => {
        if (!ENV_NAME.test(name) || (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean")) throw bad();
        out[name] = String(value);
      };
      const addPair = (s: unknown): void => {
        if (typeof s !== "string") throw bad();
        const eq = s.indexOf("=");
        if (eq <= 0) throw bad();
        add(s.slice(0, eq), s.slice(eq + 1));
      };
      if (Array.isArray(raw)) for (const s of raw) addPair(s);
      else if (typeof raw === "string") addPair(raw);
      else if (typeof raw === "object" && raw !== null) for (const [n, v] of Object.entries(raw)) add(n, v);
      else throw bad();
      return out;
    }
  }
}

/**
 * Passenger Standalone's own Passengerfile.json keys that do not apply to Ferry
 * (its Nginx engine, Ruby/Python, daemonizing, SSL termination, Enterprise
 * knobs): an existing Passengerfile keeps working; `ferry start` prints one
 * notice per key instead of failing.
 */
export const PASSENGER_IGNORED_KEYS: ReadonlySet<string> = new Set([
  "engine", "daemonize", "pid_file", "socket", "ssl", "ssl_certificate", "ssl_certificate_key", "ssl_port",
  "nginx_bin", "nginx_version", "nginx_config_template", "binaries_url_root", "dont_install_runtime",
  "runtime_check_only", "spawn_method", "max_preloader_idle_time", "ruby", "python", "rackup",
  "meteor_app_settings", "turbocaching", "unlimited_concurrency_path", "data_buffer_dir",
  "concurrency_model", "thread_count", "rolling_restarts", "resist_deployment_errors", "debugger",
  "disable_security_update_check", "security_update_check_proxy", "disable_anonymous_telemetry",
  "anonymous_telemetry_proxy", "admin_panel_url", "admin_panel_auth_type", "admin_panel_username",
  "admin_panel_password", "core_file_descriptor_ulimit", "user", "union_station_key",
  "vary_turbocache_by_cookie", "disable_turbocaching", "spawn_dir", "direct_instance_request_address",
]);

/**
 * Parse a Passengerfile-style map; unknown keys are an error (they are usually
 * typos), except Passenger's own keys that do not apply to Ferry: those are
 * listed in `ignored` (when given) and otherwise skipped.
 */
export function parseConfigMap(
  v: unknown,
  where: string,
  specs: readonly StandaloneOptionSpec[] = STANDALONE_OPTIONS,
  ignored?: string[],
): Map<StandaloneOptionSpec, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ConfigError(`Cannot read ${where}: expected a JSON object`);
  }
  const out = new Map<StandaloneOptionSpec, unknown>();
  for (const [key, raw] of Object.entries(v)) {
    const spec = specs.find((s) => s.key === key);
    if (spec === undefined && PASSENGER_IGNORED_KEYS.has(key)) {
      ignored?.push(key);
      continue;
    }
    if (spec === undefined) {
      throw new ConfigError(`Cannot use ${where} key "${key}": unknown option (known: ${specs.map((s) => s.key).join(", ")})`);
    }
    out.set(spec, parseOptionValue(spec, raw, where));
  }
  return out;
}

/** Values from PASSENGER_<KEY> environment variables. */
export function parseEnvValues(env: Readonly<Record<string, string | undefined>>): Map<StandaloneOptionSpec, unknown> {
  const out = new Map<StandaloneOptionSpec, unknown>();
  for (const spec of STANDALONE_OPTIONS) {
    const name = `PASSENGER_${spec.key.toUpperCase()}`;
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    if (spec.kind.t === "envvars") continue;
    out.set(spec, parseOptionValue(spec, raw, `environment variable ${name} for`));
  }
  return out;
}

/** Values from parsed flags (util.parseArgs values keyed by flag name). */
export function parseFlagValues(flags: RawValues): Map<StandaloneOptionSpec, unknown> {
  const out = new Map<StandaloneOptionSpec, unknown>();
  for (const spec of STANDALONE_OPTIONS) {
    const raw = flags[spec.flag];
    if (raw === undefined) continue;
    out.set(spec, parseOptionValue(spec, raw, `flag --${spec.flag} for`));
  }
  // Every on/off option also has a --no-<flag> form.
  for (const spec of STANDALONE_OPTIONS) {
    if (spec.kind.t === "bool" && flags[`no-${spec.flag}`] === true) out.set(spec, false);
  }
  return out;
}

/** Read `Passengerfile.json` or `ferry.json` in the app dir (the first that exists). */
export async function readAppConfigFile(appDir: string): Promise<{ file: string; value: unknown } | undefined> {
  for (const name of ["Passengerfile.json", "ferry.json"]) {
    const file = path.join(appDir, name);
    let text: string;
    try {
      text = await fsp.readFile(file, "utf8");
    } catch (e: unknown) {
      if (typeof e === "object" && e !== null && Reflect.get(e, "code") === "ENOENT") continue;
      throw new ConfigError(`Cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    try {
      return { file, value: JSON.parse(text) };
    } catch (e: unknown) {
      throw new ConfigError(`Cannot parse ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  return undefined;
}

export interface ResolveInput {
  /** Absolute app dir. */
  readonly appRoot: string;
  readonly file?: { readonly file: string; readonly value: unknown } | undefined;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly flags?: RawValues;
}

/** Combine the sources (defaults < file < env < flags) into a validated StandaloneConfig. */
export function resolveStandaloneConfig(input: ResolveInput): StandaloneConfig {
  const env = input.env ?? {};
  const layers: Array<Map<StandaloneOptionSpec, unknown>> = [];
  const ignoredKeys: string[] = [];
  if (input.file !== undefined) layers.push(parseConfigMap(input.file.value, path.basename(input.file.file), STANDALONE_OPTIONS, ignoredKeys));
  layers.push(parseEnvValues(env));
  layers.push(parseFlagValues(input.flags ?? {}));

  const listen: Record<string, unknown> = { port: 3000, address: "127.0.0.1" };
  const app: Record<string, unknown> = {};
  // ferry start hands connections to the app processes unless told not to, and serves <app>/public (docs/standalone.md).
  const server: Record<string, unknown> = {
    ...SERVER_DEFAULTS, connectionHandoff: true, staticFilesDir: DEFAULT_STATIC_FILES_DIR, instanceRegistryDir: defaultRegistryDir(env),
  };
  const envvars: Record<string, string> = {};
  for (const layer of layers) {
    for (const [spec, value] of layer) {
      if (spec.kind.t === "envvars") {
        Object.assign(envvars, value);
        continue;
      }
      if (spec.target === "listen") listen[spec.field] = value;
      if (spec.target === "app" || spec.target === "both") app[spec.field] = value;
      if (spec.target === "server" || spec.target === "both") server[spec.field] = value;
    }
  }
  // passenger start: the environment comes from the flag/file, else RAILS_ENV/RACK_ENV/NODE_ENV/PASSENGER_APP_ENV, else development.
  if (app["appEnv"] === undefined) {
    app["appEnv"] = env["PASSENGER_APP_ENV"] ?? env["NODE_ENV"] ?? env["RACK_ENV"] ?? env["RAILS_ENV"] ?? "development";
  }
  // Passenger's -1 ("not forced": use the app's own value) is unlimited for Node and generic apps.
  if (app["maxConcurrentRequestsPerProcess"] === -1) app["maxConcurrentRequestsPerProcess"] = 0;
  // As in Passenger (and PassengerAppStartCommand in module mode), a start command makes the app generic.
  if (app["appType"] === undefined && typeof app["appStartCommand"] === "string" && app["appStartCommand"].trim() !== "") {
    app["appType"] = "generic";
  }
  app["env"] = envvars;
  const appOptions = makeAppOptions(input.appRoot, app as Partial<AppOptions>);
  if (appOptions.appType === "generic" && appOptions.appStartCommand === "") {
    throw new ConfigError('Cannot use app_type "generic": app_start_command is required (a command with $PORT)');
  }
  return {
    appRoot: input.appRoot,
    listen: listen as unknown as ListenOptions,
    app: appOptions,
    server: server as unknown as ServerOptions,
    configFile: input.file?.file ?? "",
    ignoredKeys,
  };
}

/** $TMPDIR or /tmp, as Passenger's default instance registry dir. */
export function defaultRegistryDir(env: Readonly<Record<string, string | undefined>>): string {
  const t = env["TMPDIR"];
  return t !== undefined && t !== "" ? t : "/tmp";
}
