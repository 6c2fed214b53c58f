/**
 * docs/nginx.md is the nginx directive reference: its tables must list
 * exactly the directives ngx_http_ferry_module registers
 * (nginx-module/ngx_http_ferry_config.c), each once, with the context the
 * command table gives it; the directives the issue names are all there, and
 * every FERRYnnnn tag of the nginx module is in docs/errors.md.
 */
import test from "ava";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const read = (p: string): string => readFileSync(path.join(ROOT, p), "utf8");

interface DocRow {
  readonly name: string;
  readonly context: string;
  readonly ferry: string;
}

function commandTable(): Map<string, string> {
  const src = read("nginx-module/ngx_http_ferry_config.c");
  const out = new Map<string, string>();
  for (const m of src.matchAll(/FERRY_(?:SRV|APP|INERT|CMD)\("([a-z_]+)",\s*([A-Z]+),/g)) {
    const [, name, ctx] = m;
    if (name === undefined || ctx === undefined) continue;
    if (out.has(name)) throw new Error(`Cannot read the command table: ${name} registered twice`);
    out.set(name, ctx);
  }
  return out;
}

function docRows(): DocRow[] {
  const rows: DocRow[] = [];
  for (const line of read("docs/nginx.md").split("\n")) {
    const m = /^\| `([a-z_]+)` \| ([^|]+) \| [^|]* \| ([^|]+) \|/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined && m[3] !== undefined) {
      rows.push({ name: m[1], context: m[2].trim(), ferry: m[3].trim() });
    }
  }
  return rows;
}

test("docs/nginx.md lists exactly the directives ngx_http_ferry_config.c registers", (t) => {
  const table = commandTable();
  const documented = docRows().map((r) => r.name);
  t.true(table.size >= 100, `only ${table.size} directives parsed from ngx_http_ferry_config.c`);
  t.deepEqual(documented.filter((n, i) => documented.indexOf(n) !== i), [], "documented twice");
  t.deepEqual([...table.keys()].filter((n) => !documented.includes(n)).sort(), [], "registered but not documented");
  t.deepEqual(documented.filter((n) => !table.has(n)).sort(), [], "documented but not registered");
});

test("each nginx directive's documented context is the one in the command table", (t) => {
  const table = commandTable();
  const wrong = docRows()
    .filter((r) => table.get(r.name) !== r.context)
    .map((r) => `${r.name}: docs ${r.context}, code ${table.get(r.name) ?? "?"}`);
  t.deepEqual(wrong, []);
});

test("every nginx directive is implemented, parsed or accepted", (t) => {
  const bad = docRows().filter((r) => !/^(implemented|parsed|accepted)\b/.test(r.ferry)).map((r) => r.name);
  t.deepEqual(bad, []);
});

test("the directives issue 15 names are registered, none of them merely accepted", (t) => {
  const table = commandTable();
  const rows = new Map(docRows().map((r) => [r.name, r.ferry]));
  const named = ["passenger_root", "passenger_enabled", "passenger_app_root", "passenger_app_type",
    "passenger_startup_file", "passenger_app_env", "passenger_env_var", "passenger_base_uri",
    "passenger_min_instances", "passenger_max_pool_size", "passenger_max_instances_per_app",
    "passenger_pool_idle_time", "passenger_sticky_sessions", "passenger_sticky_sessions_cookie_name",
    "passenger_max_request_queue_size", "passenger_friendly_error_pages", "passenger_user", "passenger_group",
    "passenger_restart_dir", "passenger_start_timeout", "passenger_max_requests", "passenger_app_start_command",
    "passenger_force_max_concurrent_requests_per_process", "passenger_instance_registry_dir",
    "passenger_log_file", "passenger_nodejs"];
  t.deepEqual(named.filter((n) => !table.has(n)), [], "not registered");
  t.deepEqual(named.filter((n) => rows.get(n) === "accepted"), [], "only accepted");
});

test("server contexts: pool-wide directives are http-only, per-app ones reach location and if", (t) => {
  const table = commandTable();
  for (const n of ["passenger_root", "passenger_max_pool_size", "passenger_pool_idle_time",
    "passenger_instance_registry_dir", "passenger_log_file", "passenger_max_instances_per_app"]) {
    t.is(table.get(n), "H", n);
  }
  for (const n of ["passenger_enabled", "passenger_app_root", "passenger_env_var", "passenger_base_uri",
    "passenger_sticky_sessions", "passenger_user", "passenger_nodejs"]) {
    t.is(table.get(n), "HSLI", n);
  }
});

test("every FERRYnnnn tag of the nginx module is unique and listed in docs/errors.md", (t) => {
  const errors = read("docs/errors.md");
  const tags: string[] = [];
  for (const file of readdirSync(path.join(ROOT, "nginx-module")).filter((f) => f.endsWith(".c"))) {
    for (const m of read(`nginx-module/${file}`).matchAll(/FERRY(\d{4}):/g)) tags.push(`FERRY${m[1] ?? ""}`);
  }
  t.true(tags.length >= 1);
  t.deepEqual(tags.filter((x, i) => tags.indexOf(x) !== i), [], "a tag used at two call sites");
  t.deepEqual(tags.filter((x) => !new RegExp(`^\\| ${x} \\|`, "m").test(errors)), [], "tags missing from docs/errors.md");
  t.true(tags.every((x) => Number(x.slice(5)) >= 400 && Number(x.slice(5)) <= 499), "nginx module tags are 0400-0499");
});
