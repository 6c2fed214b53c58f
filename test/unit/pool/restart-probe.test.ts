/**
 * RestartProbe: restart.txt / always_restart.txt are stat'ed synchronously,
 * at most once per throttle period, so a checkout never waits on libuv's
 * thread pool (on a busy machine its threads may not run for a long time and
 * every request arriving meanwhile would wait).
 */
import test from "ava";
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { RestartProbe } from "../../../core/src/pool/restart-probe.js";

function appDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ferry-restart-probe-"));
  mkdirSync(path.join(dir, "tmp"));
  return dir;
}

test("a touched restart.txt is reported by the check itself (no promise), once", (t) => {
  const dir = appDir();
  try {
    const probe = new RestartProbe(dir, "tmp");
    t.is(probe.check(1_000, 0), null, "the first check only records");
    const file = path.join(dir, "tmp", "restart.txt");
    writeFileSync(file, "");
    utimesSync(file, new Date(5_000), new Date(5_000));
    t.is(probe.check(2_000, 0), "restart.txt");
    t.is(probe.check(3_000, 0), null, "the same mtime restarts once");
    utimesSync(file, new Date(9_000), new Date(9_000));
    t.is(probe.check(4_000, 0), "restart.txt", "touched again");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("within the throttle period the files are not looked at", (t) => {
  const dir = appDir();
  try {
    const probe = new RestartProbe(dir, "tmp");
    probe.check(1_000, 1_000);
    const file = path.join(dir, "tmp", "restart.txt");
    writeFileSync(file, "");
    t.is(probe.check(1_500, 1_000), null, "half a period later: not checked");
    t.is(probe.check(2_000, 1_000), "restart.txt", "a period later: seen");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("always_restart.txt restarts on every check; an unreadable directory counts as no files", (t) => {
  const dir = appDir();
  try {
    const probe = new RestartProbe(dir, "tmp");
    writeFileSync(path.join(dir, "tmp", "always_restart.txt"), "");
    t.is(probe.check(1_000, 0), "always_restart.txt");
    t.is(probe.check(2_000, 0), "always_restart.txt");
    probe.setDirectory(dir, "tmp/missing/deeper");
    t.is(probe.check(3_000, 0), null);
    // A file where a directory is expected (ENOTDIR) is no error either.
    writeFileSync(path.join(dir, "notadir"), "");
    probe.setDirectory(dir, "notadir");
    t.is(probe.check(4_000, 0), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("view() gives restart.txt's path and its mtime in ns as the last check saw it (-1 absent, undefined before)", (t) => {
  const dir = appDir();
  try {
    const probe = new RestartProbe(dir, "tmp");
    const file = path.join(dir, "tmp", "restart.txt");
    t.deepEqual(probe.view(), { restartFile: file, restartMtimeNs: undefined, alwaysRestart: false });
    probe.check(1_000, 0);
    t.is(probe.view().restartMtimeNs, -1n);
    writeFileSync(file, "");
    utimesSync(file, 1765012345.123456, 1765012345.123456);
    t.is(probe.view().restartMtimeNs, -1n, "not seen before the next check");
    probe.check(2_000, 0);
    const ns = statSync(file, { bigint: true }).mtimeNs;
    t.is(probe.view().restartMtimeNs, ns);
    t.true(ns > 1765012345000000000n);
    writeFileSync(path.join(dir, "tmp", "always_restart.txt"), "");
    probe.check(3_000, 0);
    t.true(probe.view().alwaysRestart);
    probe.setDirectory(dir, "other");
    t.deepEqual(probe.view(), { restartFile: path.join(dir, "other", "restart.txt"), restartMtimeNs: undefined, alwaysRestart: false });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
