/**
 * CPU and memory of an app process from /proc (Linux): CPU time from
 * /proc/<pid>/stat (utime + stime), resident memory from /proc/<pid>/statm.
 * The pool samples every process periodically; CPU% is the share of one core
 * used between two samples.
 */
import { readFile } from "node:fs/promises";

/** Clock ticks per second for /proc stat times (sysconf(_SC_CLK_TCK), 100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;
/** Page size for statm: measured once (see pageSize()), 4 KiB until then. */
let PAGE_SIZE = 4096;
let pageSizeKnown = false;

/**
 * Learn the page size once: libuv computes our own RSS as resident pages ×
 * getpagesize(), so compare it with /proc/self/statm (4 KiB, 16 KiB or 64 KiB).
 */
async function learnPageSize(): Promise<void> {
  if (pageSizeKnown) return;
  pageSizeKnown = true;
  try {
    const pages = Number((await readFile("/proc/self/statm", "utf8")).trim().split(/\s+/)[1]);
    const ratio = process.memoryUsage.rss() / pages;
    if (Number.isFinite(ratio) && ratio > 0) {
      const pow = 2 ** Math.round(Math.log2(ratio));
      if (pow >= 4096 && pow <= 65536) PAGE_SIZE = pow;
    }
  } catch {
    // keep 4 KiB
  }
}

export interface ProcSample {
  /** utime + stime in ms. */
  readonly cpuTimeMs: number;
  readonly rssBytes: number;
  /** Wall time of the sample (clock ms). */
  readonly at: number;
  /** The process is a zombie (has exited, not yet reaped). */
  readonly zombie: boolean;
}

/** Parse the contents of /proc/<pid>/stat; null when malformed. */
export function parseProcStat(text: string): { cpuTimeMs: number; zombie: boolean } | null {
  // Field 2 (comm) is parenthesised and may contain spaces: split after the last ')'.
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const rest = text.slice(close + 2).split(" ");
  // rest[0] is field 3 (state); utime/stime are fields 14/15.
  const state = rest[0];
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (state === undefined || !Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return { cpuTimeMs: ((utime + stime) * 1000) / CLOCK_TICKS_PER_SECOND, zombie: state === "Z" };
}

/** Parse /proc/<pid>/statm (size resident shared …, in pages); null when malformed. */
export function parseProcStatm(text: string): number | null {
  const resident = Number(text.trim().split(/\s+/)[1]);
  return Number.isFinite(resident) ? resident * PAGE_SIZE : null;
}

/** Read one sample, or null when the process is gone or /proc is unavailable. */
export async function sampleProcess(pid: number, at: number): Promise<ProcSample | null> {
  await learnPageSize();
  try {
    const [stat, statm] = await Promise.all([
      readFile(`/proc/${pid}/stat`, "utf8"),
      readFile(`/proc/${pid}/statm`, "utf8"),
    ]);
    const s = parseProcStat(stat);
    const rss = parseProcStatm(statm);
    if (s === null || rss === null) return null;
    return { cpuTimeMs: s.cpuTimeMs, rssBytes: rss, at, zombie: s.zombie };
  } catch {
    return null;
  }
}

/** CPU percent of one core between two samples (0 when no time passed). */
export function cpuPercent(prev: ProcSample, next: ProcSample): number {
  const wall = next.at - prev.at;
  if (wall <= 0) return 0;
  return Math.max(0, Math.round(((next.cpuTimeMs - prev.cpuTimeMs) / wall) * 1000) / 10);
}
