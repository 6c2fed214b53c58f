/**
 * The environment an app process starts with (pure). Built from a clean base,
 * never from the core's own environment wholesale: only PATH, LANG, LC_* and
 * TZ pass through from the core; everything else is the app's (docs/loader.md
 * "The app's environment").
 */
import type { AppOptions } from "../config/schema.js";

/** Who the app runs as, for HOME/USER/LOGNAME/SHELL. */
export interface EnvUser {
  readonly name: string;
  readonly home: string;
  readonly shell: string;
}

export interface AppEnvInput {
  readonly app: AppOptions;
  readonly user: EnvUser;
  /** The core's environment; only the pass-through variables are read. */
  readonly coreEnv: Readonly<Record<string, string | undefined>>;
  /** PORT for the app: the generic app's real port, or the nominal Node port. */
  readonly port: number;
}

/** PATH when the core has none. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The PORT a Node app sees; its listen() goes to Ferry's socket whatever port it passes. */
export const NOMINAL_NODE_PORT = 3000;

function passesThrough(name: string): boolean {
  return name === "PATH" || name === "LANG" || name === "LANGUAGE" || name === "TZ" || name.startsWith("LC_");
}

/** Build the app's environment: base, user, app env, base URI, then SetEnv vars (which win). */
export function buildAppEnv(input: AppEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.coreEnv)) {
    if (v !== undefined && passesThrough(k)) env[k] = v;
  }
  env["PATH"] ??= DEFAULT_PATH;
  env["HOME"] = input.user.home;
  env["USER"] = input.user.name;
  env["LOGNAME"] = input.user.name;
  env["SHELL"] = input.user.shell;

  const appEnv = input.app.appEnv;
  env["NODE_ENV"] = appEnv;
  env["PASSENGER_APP_ENV"] = appEnv;
  env["RAILS_ENV"] = appEnv;
  env["RACK_ENV"] = appEnv;
  env["WSGI_ENV"] = appEnv;
  env["PYTHONUNBUFFERED"] = "1";
  env["IN_PASSENGER"] = "1";
  env["PORT"] = String(input.port);

  const base = input.app.baseURI;
  if (base !== "" && base !== "/") {
    env["PASSENGER_BASE_URI"] = base;
    env["RACK_BASE_URI"] = base;
    env["RAILS_RELATIVE_URL_ROOT"] = base;
  }

  for (const [k, v] of Object.entries(input.app.env)) {
    if (k !== "" && !k.includes("=") && !k.includes("\0") && !v.includes("\0")) env[k] = v;
  }
  return env;
}
