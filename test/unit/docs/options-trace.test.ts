/**
 * "A directive or flag that exists is documented; one that is documented
 * exists" — traced end to end, statically and fast:
 * - every `app` key mod_ferry sends (ferry_app_options in apache-module/ferry_map.c)
 *   is read by the core (validateAppOptions) into a field that changes;
 * - every `server` key the module writes (ferry_server_options_json) is read by
 *   the core's config parser (parseCoreConfig) into a field that changes;
 * - the wire keys docs/directives.md names (`app.x`, `server.x`) are those;
 * - docs/standalone.md's option table lists exactly the flags, Passengerfile
 *   keys and PASSENGER_* variables `ferry start` takes (STANDALONE_OPTIONS);
 * - every `--flag` docs/cli.md mentions is one a command parses.
 */
import test from "ava";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { validateAppOptions } from "../../../core/src/config/app-wire.js";
import { parseCoreConfig } from "../../../core/src/config/core-config.js";
import { STANDALONE_OPTIONS } from "../../../core/src/config/options.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const read = (p: string): string => readFileSync(path.join(ROOT, p), "utf8");

/** Body of a C function, from its signature line to the next line that is just "}". */
function cFunction(file: string, signature: string): string {
  const src = read(file);
  const at = src.indexOf(signature);
  if (at < 0) throw new Error(`Cannot find ${signature} in ${file}`);
  const end = src.indexOf("\n}\n", at);
  return src.slice(at, end < 0 ? undefined : end);
}

/** [kind, key] of every put_str/put_int/put_bool in ferry_app_options. */
function packedAppKeys(): Array<["str" | "int" | "bool", string]> {
  const body = cFunction("apache-module/ferry_map.c", "apr_size_t ferry_app_options(");
  return [...body.matchAll(/put_(str|int|bool)\(kv,\s*&n,\s*"([a-z_]+)"/g)].map((m) => [m[1] as "str" | "int" | "bool", m[2] ?? ""]);
}

function serverJsonKeys(): string[] {
  const body = cFunction("apache-module/ferry_config.c", "const char *ferry_server_options_json(");
  return [...body.matchAll(/(?:JSON_INT\(|json_add\(kv, p, )"([a-z_]+)"/g)].map((m) => m[1] ?? "");
}

// The module sends it for information only (docs/protocol.md); the core takes no option from it.
const INFORMATIONAL_APP_KEYS = new Set(["document_root"]);
const STR_SAMPLES: Readonly<Record<string, string>> = {
  app_type: "generic", base_uri: "/sub", sticky_sessions_cookie_name: "route2", app_env: "staging", custom_error_page: "/srv/errors/down.html",
};

test("every app key ferry_app_options sends is read by the core into an option", (t) => {
  const keys = packedAppKeys();
  t.true(keys.length >= 25, `only ${keys.length} keys parsed from ferry_app_options`);
  const base = { app_root: "/srv/a" };
  const baseline = JSON.stringify(validateAppOptions(base));
  const dead: string[] = [];
  for (const [kind, key] of keys) {
    if (key === "app_root" || INFORMATIONAL_APP_KEYS.has(key)) continue;
    const samples: unknown[] = kind === "str" ? [STR_SAMPLES[key] ?? "x"] : kind === "int" ? [7] : [true, false];
    const changed = samples.some((v) => JSON.stringify(validateAppOptions({ ...base, [key]: v })) !== baseline);
    if (!changed) dead.push(key);
  }
  t.deepEqual(dead, [], "sent by the module but without effect on AppOptions");
});

test("every server key the module writes is read by the core's config parser", (t) => {
  const keys = serverJsonKeys();
  t.true(keys.length >= 15, `only ${keys.length} keys parsed from ferry_server_options_json`);
  const top = { version: 1, instance_dir: "/run/ferry-1", apache_uid: 33, apache_gid: 33 };
  const baseline = JSON.stringify(parseCoreConfig({ ...top, server: {} }));
  const sample: Readonly<Record<string, unknown>> = {
    user_switching: false, log_level: 6, prestart: ["http://example.com/"], metrics_listen: "127.0.0.1:9464", log_format: "json", health_check_path: "/healthz", health_check_interval: 7, health_check_failures: 7,
  };
  const dead = keys.filter((k) => {
    const v = sample[k] ?? (/(_size|_time|_rate|_backlog|_app|_ttl|_timeout)$/.test(k) ? 7 : "x");
    return JSON.stringify(parseCoreConfig({ ...top, server: { [k]: v } })) === baseline;
  });
  t.deepEqual(dead, [], "written by the module but ignored by the core");
});

test("the wire keys docs/directives.md names are the ones module and core exchange", (t) => {
  const doc = read("docs/directives.md");
  const appKeys = new Set(packedAppKeys().map(([, k]) => k));
  const serverKeys = new Set(serverJsonKeys());
  const wrong: string[] = [];
  for (const m of doc.matchAll(/`(app|server)\.([a-z_]+)`/g)) {
    const [, where, key] = m;
    if (key === undefined || key === "js") continue; // `app.js`, the startup file
    if (where === "app" ? !appKeys.has(key) : !serverKeys.has(key)) wrong.push(`${where}.${key}`);
  }
  t.deepEqual(wrong, []);
});

test("docs/standalone.md's table lists exactly the options ferry start takes", (t) => {
  const rows = read("docs/standalone.md").split("\n").filter((l) => /^\| `--/.test(l));
  const flags = new Set<string>();
  const keys = new Set<string>();
  const envs = new Set<string>();
  for (const row of rows) {
    const [, flagCell = "", keyCell = "", envCell = ""] = row.split(/(?<!\\)\|/);
    for (const m of flagCell.matchAll(/--(?:\[no-\])?([a-z][a-z-]*)/g)) flags.add(m[1] ?? "");
    for (const m of keyCell.matchAll(/`([a-z_]+)`/g)) keys.add(m[1] ?? "");
    for (const m of envCell.matchAll(/`(PASSENGER_[A-Z_]+)`/g)) envs.add(m[1] ?? "");
  }
  const expectedFlags = new Set([...STANDALONE_OPTIONS.map((o) => o.flag), "drain-timeout"]);
  t.deepEqual([...flags].filter((f) => !expectedFlags.has(f)).sort(), [], "documented flags ferry start does not take");
  t.deepEqual([...expectedFlags].filter((f) => !flags.has(f)).sort(), [], "flags ferry start takes but the table lacks");
  const expectedKeys = new Set(STANDALONE_OPTIONS.map((o) => o.key));
  t.deepEqual([...keys].filter((k) => !expectedKeys.has(k)).sort(), [], "documented Passengerfile keys that are unknown");
  t.deepEqual([...expectedKeys].filter((k) => !keys.has(k)).sort(), [], "Passengerfile keys the table lacks");
  // "…_KEY_FILE" style abbreviations share a cell with a full name; check the full names only.
  const expectedEnvs = new Set(STANDALONE_OPTIONS.filter((o) => o.kind.t !== "envvars").map((o) => `PASSENGER_${o.key.toUpperCase()}`));
  t.deepEqual([...envs].filter((e) => !expectedEnvs.has(e)).sort(), [], "documented variables that are not read");
});

test("every --flag docs/cli.md mentions is parsed by a ferry command", (t) => {
  const dir = path.join(ROOT, "core/src/cli");
  const sources: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.endsWith(".ts")) sources.push(readFileSync(path.join(d, e.name), "utf8"));
    }
  };
  walk(dir);
  const code = sources.join("\n");
  // curl's own flags in the admin API examples are not ferry's.
  const doc = read("docs/cli.md").split("\n").filter((l) => !l.trimStart().startsWith("curl ")).join("\n");
  const flags = new Set([...doc.matchAll(/(?<![\w-])--([a-z][a-z-]*)/g)].map((m) => m[1] ?? ""));
  t.true(flags.size >= 8, `only ${flags.size} flags found in docs/cli.md`);
  const unknown = [...flags].filter((f) =>
    !code.includes(`"${f}"`) && !code.includes(`"--${f}"`) && !new RegExp(`[{,\\s]${f}: \\{ type:`).test(code)
    && !STANDALONE_OPTIONS.some((o) => o.flag === f || (o.kind.t === "bool" && `no-${o.flag}` === f)));
  t.deepEqual(unknown, []);
});
