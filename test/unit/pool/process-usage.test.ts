import test from "ava";
import { cpuPercent, parseProcStat, parseProcStatm, type ProcSample } from "../../../core/src/pool/process-usage.js";

// Field 2 may contain spaces and parentheses; utime/stime are fields 14 and 15.
const STAT = "4242 (node my) app) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 50 0 0 20 0 11 0 12345 1000000 5000 18446744073709551615";

test("parseProcStat() reads utime+stime after a comm with spaces and parentheses", (t) => {
  t.deepEqual(parseProcStat(STAT), { cpuTimeMs: 3000, zombie: false });
});

test("parseProcStat() reports a zombie", (t) => {
  t.true(parseProcStat(STAT.replace(") S ", ") Z "))?.zombie);
});

test("parseProcStat() returns null for malformed text", (t) => {
  t.is(parseProcStat(""), null);
  t.is(parseProcStat("12 (x) S 1"), null);
});

test("parseProcStatm() converts resident pages to bytes", (t) => {
  t.is(parseProcStatm("10000 2500 300 10 0 900 0\n"), 2500 * 4096);
  t.is(parseProcStatm("garbage"), null);
});

test("cpuPercent() is CPU time over wall time, one decimal", (t) => {
  const a: ProcSample = { cpuTimeMs: 1000, rssBytes: 0, at: 10_000, zombie: false };
  const b: ProcSample = { cpuTimeMs: 1500, rssBytes: 0, at: 11_000, zombie: false };
  t.is(cpuPercent(a, b), 50);
  t.is(cpuPercent(a, { ...b, cpuTimeMs: 1000 }), 0);
  t.is(cpuPercent(a, { ...b, at: 10_000 }), 0, "no time passed");
  t.is(cpuPercent(a, { ...b, cpuTimeMs: 3000 }), 200, "two cores");
});
