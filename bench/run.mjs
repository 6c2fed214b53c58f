#!/usr/bin/env node
// Ferry's benchmark harness: the same app behind six targets, interleaved
// rounds (A B C … A B C …), figures to docs/performance.md and a chart.
// Run it through `sh bench/run.sh` (which installs what is missing first).
// Options: --rounds N (2) --duration S (10) --warmup S (auto) --only a,b
//          --scenarios a,b --out FILE (docs/performance.md) --no-docs
//          --sticky (sticky sessions on for the app behind Ferry and Passenger)
//          --from-json bench/results/X.json (rewrite the report from a saved run)
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import os from "node:os";
import { parseArgs } from "node:util";
import { spread } from "./lib/http.mjs";
import { cleanupAll, rememberPids, treeStats } from "./lib/proc.mjs";
import { collectMachine, writeReport } from "./lib/report.mjs";
import { SCENARIOS, runScenario } from "./lib/scenarios.mjs";
import { makeTargets } from "./lib/targets.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..");

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "2" },
    duration: { type: "string", default: "10" },
    warmup: { type: "string" },
    only: { type: "string" },
    scenarios: { type: "string" },
    out: { type: "string", default: join(repo, "docs/performance.md") },
    "no-docs": { type: "boolean", default: false },
    sticky: { type: "boolean", default: false },
    "from-json": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log("usage: sh bench/run.sh [--rounds N] [--duration S] [--warmup S] [--only t1,t2] [--scenarios s1,s2] [--out FILE] [--no-docs] [--sticky] [--from-json FILE]");
  console.log(`targets: mod_ferry passenger mod_proxy nginx_ferry nginx_proxy ferry ferry_relay pm2 node\nscenarios: ${SCENARIOS.map((s) => s.id).join(" ")}`);
  process.exit(0);
}
if (values["from-json"] !== undefined) {
  // Rewrite the report from a saved run (bench/results/*.json), measuring nothing.
  const saved = JSON.parse(readFileSync(values["from-json"], "utf8"));
  const ids = Object.keys(saved.targets);
  const scs = SCENARIOS.filter((s) => values.scenarios === undefined || values.scenarios.split(",").includes(s.id));
  const argv = saved.argv ?? [];
  const { md, svg } = writeReport(saved, scs, ids.map((id) => ({ id })), values.out, argv);
  console.log(`bench: wrote ${md} and ${svg} from ${values["from-json"]}`);
  process.exit(0);
}
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const warmup = values.warmup !== undefined ? Number(values.warmup) : Math.max(1, Math.min(3, Math.round(duration * 0.2)));
if (![rounds, duration, warmup].every(Number.isInteger) || rounds < 1 || duration < 1 || warmup < 0) {
  console.error("bench: --rounds and --duration must be whole numbers ≥ 1, --warmup ≥ 0");
  process.exit(2);
}

const allTargets = makeTargets({ repo, node: process.execPath, sticky: values.sticky });
const pick = (list, csv, what) => {
  if (csv === undefined) return list;
  const want = csv.split(",").map((s) => s.trim()).filter(Boolean);
  for (const w of want) {
    if (!list.some((x) => x.id === w)) {
      console.error(`bench: unknown ${what} "${w}" (known: ${list.map((x) => x.id).join(", ")})`);
      process.exit(2);
    }
  }
  return list.filter((x) => want.includes(x.id));
};
const targets = pick(allTargets, values.only, "target");
const scenarios = pick(SCENARIOS, values.scenarios, "scenario");

if (scenarios.some((s) => s.kind === "wrk") && !existsSync("/usr/bin/wrk")) {
  console.error("bench: wrk is missing (Debian package wrk; sh bench/install.sh as root installs it)");
  process.exit(1);
}

// A private run directory; apps live under it, readable by `nobody` (Passenger
// and mod_ferry run an app owned by root as nobody).
const runDir = mkdtempSync("/tmp/ferry-bench-");
chmodSync(runDir, 0o755);
mkdirSync(join(runDir, "apps"), { mode: 0o755 });
const appDirs = new Map();
const ctx = {
  repo,
  runDir,
  node: process.execPath,
  appDir(id) {
    if (!appDirs.has(id)) {
      const d = join(runDir, "apps", id);
      cpSync(join(here, "app"), d, { recursive: true });
      cpSync(join(repo, "node_modules/ws"), join(d, "node_modules/ws"), { recursive: true });
      mkdirSync(join(d, "public"), { recursive: true });
      chmodTree(d);
      appDirs.set(id, d);
    }
    return appDirs.get(id);
  },
};
/** Make a fresh copy world-readable and traversable. */
function chmodTree(d) {
  for (const e of walk(d)) chmodSync(e.path, e.dir ? 0o755 : 0o644);
}
function* walk(d) {
  yield { path: d, dir: true };
  for (const ent of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, ent.name);
    if (ent.isDirectory()) yield* walk(p);
    else yield { path: p, dir: false };
  }
}

let current = null;
let cleaning = null;
async function cleanup() {
  if (cleaning === null) {
    cleaning = (async () => {
      if (current !== null) {
        try {
          await current.stop();
        } catch {}
      }
      await cleanupAll(runDir);
      rmSync(runDir, { recursive: true, force: true });
    })();
  }
  return cleaning;
}
let stopping = false;
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    stopping = true;
    console.error(`bench: ${sig}, stopping every server started`);
    cleanup().finally(() => process.exit(130));
  });
}

const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const results = { argv: process.argv.slice(2), started: new Date().toISOString(), rounds, duration, warmup, targets: {}, order: [], loadavg: [os.loadavg()[0]] };
for (const t of targets) {
  const why = t.unavailable();
  results.targets[t.id] = { id: t.id, label: t.label, unavailable: why, rounds: [] };
  if (why !== null) log(`${t.id}: unavailable: ${why}`);
}

const fmt = (x, d = 0) => (x === null || x === undefined ? "-" : x.toFixed(d));
try {
  for (let round = 1; round <= rounds; round++) {
    for (const t of targets) {
      if (stopping) break;
      const rec = results.targets[t.id];
      if (rec.unavailable !== null) continue;
      results.order.push(`${round}:${t.id}`);
      const r = { round, scenarios: {} };
      rec.rounds.push(r);
      log(`round ${round}/${rounds} ${t.id}: starting`);
      try {
        current = await t.start(ctx, round);
      } catch (e) {
        r.error = String(e.message).slice(0, 2000);
        log(`${t.id}: cannot start: ${r.error.split("\n")[0]}`);
        continue;
      }
      try {
        rememberPids([...treeStats(current.roots()).keys()]);
        r.scenarios.cold = { coldMs: current.coldMs, firstRequestMs: current.firstRequestMs };
        const pids = stopping ? [] : await spread(current.port, t.expectPids, 60000);
        r.pids = pids;
        r.spreadOk = pids.length >= t.expectPids;
        log(`${t.id}: first response after ${fmt(current.coldMs)} ms (that request took ${fmt(current.firstRequestMs)} ms); app pids seen: ${pids.join(", ") || "none"}${r.spreadOk ? "" : " (EXPECTED " + t.expectPids + ")"}`);
        for (const sc of scenarios) {
          if (sc.kind === "cold" || stopping) continue;
          try {
            const m = await runScenario(sc, current, { duration, warmup, libDir: join(here, "lib"), node: process.execPath });
            r.scenarios[sc.id] = m;
            log(`${t.id} ${sc.id}: ${fmt(m.rps)} req/s p50 ${fmt(m.p50Ms, 2)} p99 ${fmt(m.p99Ms, 2)} ms err ${m.errors} rss ${fmt(m.peakRssMb)} MB cpu ${fmt(m.cpuUsPerReq)} µs/req` +
              (m.tinyP99Ms !== undefined ? ` tiny p99 ${fmt(m.tinyP99Ms, 2)} ms` : "") +
              (m.held !== undefined ? ` held ${m.held}/${sc.conns}` : ""));
          } catch (e) {
            r.scenarios[sc.id] = { failed: String(e.message).slice(0, 1000) };
            log(`${t.id} ${sc.id}: failed: ${e.message.split("\n")[0]}`);
          }
        }
      } finally {
        const inst = current;
        current = null;
        await inst.stop().catch((e) => log(`${t.id}: cannot stop cleanly: ${e.message}`));
      }
    }
  }
} finally {
  await cleanup();
}

results.finished = new Date().toISOString();
results.loadavg.push(os.loadavg()[0]);
results.machine = await collectMachine(repo);
mkdirSync(join(here, "results"), { recursive: true });
const stamp = results.started.replace(/[:.]/g, "-");
const jsonFile = join(here, "results", `${stamp}.json`);
writeFileSync(jsonFile, JSON.stringify(results, null, 2));
log(`raw results: ${jsonFile}`);
if (!values["no-docs"]) {
  const { md, svg } = writeReport(results, scenarios, targets, values.out, results.argv);
  log(`wrote ${md} and ${svg}`);
}
