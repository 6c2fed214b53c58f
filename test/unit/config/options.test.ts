/**
 * config/options.ts is the one table of option types and ranges: the core
 * reads the core config file, the request heads' app options and `ferry
 * start`'s input with it. mod_ferry checks the same directives in C
 * (apache-module/ferry_config.c's SF()/DF() field tables): the two must agree,
 * or a value one side accepts is refused by the other. Options only Passenger's
 * nginx directives have are checked against nginx-module/ngx_http_ferry_config.c.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CORE_OPTIONS, OPTIONS, STANDALONE_OPTIONS, WIRE_OPTIONS } from "../../../core/src/config/options.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const C = readFileSync(path.join(ROOT, "apache-module/ferry_config.c"), "utf8");

/** The C constants the field tables use. */
function cValue(token: string): number {
  if (token === "INT_MAX") return 2_147_483_647;
  if (/^-?\d+$/.test(token)) return Number(token);
  const m = new RegExp(`^#define ${token} (\\d+)`, "m").exec(C);
  if (m?.[1] === undefined) throw new Error(`Cannot resolve ${token} in ferry_config.c`);
  return Number(m[1]);
}

/** Directive field name in ferry_config.c → [min, max]. */
function cRanges(): Map<string, readonly [number, number]> {
  const out = new Map<string, readonly [number, number]>();
  for (const m of C.matchAll(/^(?:SF|DF)\((\w+), (-?\w+), (-?\w+)/gm)) {
    out.set(m[1] ?? "", [cValue(m[2] ?? ""), cValue(m[3] ?? "")]);
  }
  const maxInstances = /FIELD\(ferry_dir_conf_t, max_instances_per_app,\s*(-?\w+), (-?\w+)/.exec(C);
  if (maxInstances !== null) out.set("max_instances_per_app", [cValue(maxInstances[1] ?? ""), cValue(maxInstances[2] ?? "")]);
  const forced = /offsetof\(ferry_dir_conf_t, force_max_concurrent_set\), (-?\w+), (-?\w+)/.exec(C);
  if (forced !== null) out.set("force_max_concurrent_requests_per_process", [cValue(forced[1] ?? ""), cValue(forced[2] ?? "")]);
  return out;
}

/** ferry_config.c's field names that differ from the wire key. */
const C_NAME: Readonly<Record<string, string>> = { app_file_descriptor_ulimit: "app_fd_ulimit" };
/** Core config keys with no directive (a hand-written config file only). */
const NOT_A_DIRECTIVE = new Set(["process_shutdown_timeout"]);
const NGX = readFileSync(path.join(ROOT, "nginx-module/ngx_http_ferry_config.c"), "utf8");

/** Wire key → [min, max] of the nginx module's integer app options (Passenger's nginx-only directives). */
function nginxRanges(): Map<string, readonly [number, number]> {
  const out = new Map<string, readonly [number, number]>();
  for (const m of NGX.matchAll(/FERRY_APP\("[a-z_]+", \w+, \w+,\s*"([a-z_]+)", INT, (-?\d+), (-?\d+)/g)) {
    out.set(m[1] ?? "", [Number(m[2]), Number(m[3])]);
  }
  return out;
}
/** Wire keys only the nginx module sends (Passenger has no Apache form of them). */
const NGINX_ONLY = new Set(["request_queue_overflow_status_code", "spawn_exception_status_code"]);

test("every numeric option the module sends has the range ferry_config.c checks", (t) => {
  const ranges = cRanges();
  t.true(ranges.size >= 20, `only ${ranges.size} field ranges read from ferry_config.c`);
  const wrong: string[] = [];
  for (const o of OPTIONS) {
    if ((o.kind.t !== "int" && o.kind.t !== "seconds") || (o.core !== true && o.wire === undefined)) continue;
    const key = o.wire ?? o.key;
    if (NOT_A_DIRECTIVE.has(key)) continue;
    const c = NGINX_ONLY.has(key) ? nginxRanges().get(key) : ranges.get(C_NAME[key] ?? key);
    if (c === undefined) wrong.push(`${key}: no range in ${NGINX_ONLY.has(key) ? "ngx_http_ferry_config.c" : "ferry_config.c"}`);
    else if (c[0] !== o.kind.min || c[1] !== o.kind.max) wrong.push(`${key}: core ${o.kind.min}-${o.kind.max}, module ${c[0]}-${c[1]}`);
  }
  t.deepEqual(wrong, []);
});

test("the readers' views of the table: ferry start's options have a flag, the others a core or wire key", (t) => {
  t.true(STANDALONE_OPTIONS.every((o) => o.flag !== "" && o.help !== ""));
  const unread = OPTIONS.filter((o) => o.flag === undefined && o.core !== true && o.wire === undefined).map((o) => o.key);
  t.deepEqual(unread, [], "options no reader takes");
  t.is(new Set(CORE_OPTIONS.map((o) => o.key)).size, CORE_OPTIONS.length);
  t.is(new Set(WIRE_OPTIONS.map((o) => o.wire)).size, WIRE_OPTIONS.length);
});
