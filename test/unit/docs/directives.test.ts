/**
 * docs/directives.md is the directive reference: its tables must list exactly
 * the directives mod_ferry registers (apache-module/ferry_config.c), each once,
 * with the context the command table gives it; conf/app-vhost.conf.example
 * shows every implemented per-application and per-location directive.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const read = (p: string): string => readFileSync(path.join(ROOT, p), "utf8");

/** Context macro in ferry_config.c -> context code in the docs. */
const CONTEXTS: Readonly<Record<string, string>> = {
  G: "G", A: "A", L: "L", AHT: "A+FileInfo", LIM: "A+Limit", OPT: "A+Options",
};

interface DocRow {
  readonly name: string;
  readonly context: string;
  readonly ferry: string;
  readonly section: string;
}

function commandTable(): Map<string, string> {
  const src = read("apache-module/ferry_config.c");
  const out = new Map<string, string>();
  const re = /AP_INIT_[A-Z0-9]+\("([A-Za-z]+)",\s*\w+,\s*[^,]+,\s*([A-Z]+),/g;
  for (const m of src.matchAll(re)) {
    const [, name, ctx] = m;
    if (name === undefined || ctx === undefined) continue;
    if (out.has(name)) throw new Error(`Cannot read the command table: ${name} registered twice`);
    out.set(name, CONTEXTS[ctx] ?? `unknown macro ${ctx}`);
  }
  return out;
}

function docRows(): DocRow[] {
  const rows: DocRow[] = [];
  let section = "";
  for (const line of read("docs/directives.md").split("\n")) {
    const h = /^## (.*)$/.exec(line);
    if (h?.[1] !== undefined) section = h[1];
    const m = /^\| `([A-Za-z]+)` \| ([^|]+) \| [^|]* \| ([^|]+) \|/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined && m[3] !== undefined) {
      rows.push({ name: m[1], context: m[2].trim(), ferry: m[3].trim(), section });
    }
  }
  return rows;
}

test("docs/directives.md lists exactly the directives ferry_config.c registers", (t) => {
  const table = commandTable();
  const rows = docRows();
  t.true(table.size >= 110, `only ${table.size} directives parsed from ferry_config.c`);
  const documented = rows.map((r) => r.name);
  t.deepEqual(documented.filter((n, i) => documented.indexOf(n) !== i), [], "documented twice");
  t.deepEqual([...table.keys()].filter((n) => !documented.includes(n)).sort(), [], "registered but not documented");
  t.deepEqual(documented.filter((n) => !table.has(n)).sort(), [], "documented but not registered");
});

test("each directive's documented context is the one in the command table", (t) => {
  const table = commandTable();
  const wrong = docRows()
    .filter((r) => table.has(r.name) && table.get(r.name) !== r.context)
    .map((r) => `${r.name}: docs ${r.context}, code ${table.get(r.name) ?? "?"}`);
  t.deepEqual(wrong, []);
});

test("every directive is either implemented or accepted", (t) => {
  const bad = docRows().filter((r) => !/^(implemented|accepted)\b/.test(r.ferry)).map((r) => r.name);
  t.deepEqual(bad, []);
});

test("Passenger's aliases and obsolete directives are all present", (t) => {
  const names = new Set(docRows().map((r) => r.name));
  for (const n of ["RailsEnv", "RackEnv", "RailsRuby", "PassengerDebugLogFile", "RailsMaxPoolSize",
    "RailsMaxInstancesPerApp", "RailsPoolIdleTime", "RailsUserSwitching", "RailsDefaultUser",
    "RailsAppSpawnerIdleTime", "RailsBaseURI", "RackBaseURI", "RailsSpawnMethod", "RailsSpawnServer",
    "RailsAllowModRewrite", "RailsFrameworkSpawnerIdleTime", "PassengerUseGlobalQueue",
    "UnionStationGatewayAddress", "UnionStationGatewayPort", "UnionStationGatewayCert",
    "UnionStationProxyAddress", "UnionStationKey", "UnionStationFilter", "UnionStationSupport",
    "PassengerAnalyticsLogUser", "PassengerAnalyticsLogGroup"]) {
    t.true(names.has(n), n);
  }
});

test("conf/app-vhost.conf.example shows every implemented per-app and per-location directive", (t) => {
  const example = read("conf/app-vhost.conf.example");
  const missing = docRows()
    .filter((r) => r.context !== "G" && r.ferry.startsWith("implemented") && !r.section.startsWith("Aliases"))
    .filter((r) => !new RegExp(`^\\s*#?\\s*${r.name}\\s`, "m").test(example))
    .map((r) => r.name);
  t.deepEqual(missing, []);
});

test("conf/ferry.conf shows every implemented global directive", (t) => {
  const conf = read("conf/ferry.conf");
  const missing = docRows()
    .filter((r) => r.context === "G" && r.ferry.startsWith("implemented") && !r.section.startsWith("Aliases"))
    .filter((r) => !new RegExp(`^\\s*#?\\s*${r.name}\\s`, "m").test(conf))
    .map((r) => r.name);
  t.deepEqual(missing, []);
});

test("every FERRYnnnn tag of the config and mapping code is unique and listed in docs/errors.md", (t) => {
  const errors = read("docs/errors.md");
  const tags: string[] = [];
  for (const file of ["apache-module/ferry_config.c", "apache-module/ferry_map.c"]) {
    for (const m of read(file).matchAll(/FERRY_LOGNO\((\d{4})\)/g)) tags.push(`FERRY${m[1] ?? ""}`);
  }
  t.true(tags.length >= 10);
  t.deepEqual(tags.filter((x, i) => tags.indexOf(x) !== i), [], "a tag used at two call sites");
  t.deepEqual(tags.filter((x) => !new RegExp(`^\\| ${x} \\|`, "m").test(errors)), [], "tags missing from docs/errors.md");
  t.true(tags.every((x) => Number(x.slice(5)) >= 1 && Number(x.slice(5)) <= 99), "config/mapping tags are 0001-0099");
});
