/**
 * Is it up? Probes of another process and of a TCP port, shared by the core
 * (its parent watch), the control client (which instances are live) and the
 * CLI's private web servers (`ferry apache start|stop`): a pid alive (a
 * zombie nobody reaped counts as gone), a pid file, a port that accepts.
 */
import { readFileSync } from "node:fs";
import net from "node:net";

/** State letter of /proc/<pid>/stat, or undefined when it cannot be read (gone, or not ours to read). */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

/** The parent pid of a pid (/proc/<pid>/stat), or undefined when it cannot be read (gone). */
export function parentPidOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return Number.isInteger(ppid) && ppid > 0 ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a pid runs: it exists (EPERM counts: another user's) and is not a zombie. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e: unknown) {
    if (!(typeof e === "object" && e !== null && Reflect.get(e, "code") === "EPERM")) return false;
  }
  const state = procState(pid);
  return state !== "Z" && state !== "X";
}

/** Whether a pid is gone (no such process, or a zombie nobody reaped). */
export function processGone(pid: number): boolean {
  return !processAlive(pid);
}

/** The pid a pid file holds, or undefined (missing, empty, not a positive integer). */
export function readPidFile(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, "utf8").trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Whether host:port accepts a TCP connection within `timeoutMs` (the connection is closed at once). */
export function canConnect(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}
