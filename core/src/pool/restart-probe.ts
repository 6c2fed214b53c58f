/**
 * Stats a group's restart.txt / always_restart.txt on request, throttled by
 * PassengerStatThrottleRate, and says whether the app must restart. The
 * decision is policy/restart.ts; this file only does the stat calls.
 *
 * The stats are synchronous on purpose: two stat(2) calls of local files at
 * most once per throttle period cost microseconds, while an asynchronous stat
 * goes through libuv's thread pool, whose threads a busy machine may not run
 * for hundreds of milliseconds, and every request arriving meanwhile would
 * wait for it (the request path must not wait on the thread pool).
 */
import { statSync } from "node:fs";
import { resolve } from "node:path";
import {
  evaluateRestartFiles,
  INITIAL_RESTART_STATE,
  shouldCheckRestartFiles,
  type FileStat,
  type RestartCheck,
  type RestartFileState,
} from "../policy/restart.js";

/** A file that cannot be stat'ed (absent, EACCES, ENOTDIR …) counts as absent. */
function statFile(path: string): FileStat {
  try {
    const s = statSync(path, { throwIfNoEntry: false });
    return s === undefined ? { exists: false } : { exists: true, mtimeMs: s.mtimeMs };
  } catch {
    return { exists: false };
  }
}

export class RestartProbe {
  private state: RestartFileState = INITIAL_RESTART_STATE;
  private dir: string;

  constructor(appRoot: string, restartDir: string) {
    this.dir = resolve(appRoot, restartDir);
  }

  /** The app's restart directory moved (new options). The next check only records. */
  setDirectory(appRoot: string, restartDir: string): void {
    const dir = resolve(appRoot, restartDir);
    if (dir === this.dir) return;
    this.dir = dir;
    this.state = INITIAL_RESTART_STATE;
  }

  /** Check the files if the throttle allows: the reason to restart, or null. */
  check(now: number, throttleMs: number): RestartCheck["reason"] {
    if (!shouldCheckRestartFiles(this.state, now, throttleMs)) return null;
    const restartTxt = statFile(resolve(this.dir, "restart.txt"));
    const always = statFile(resolve(this.dir, "always_restart.txt"));
    const result = evaluateRestartFiles(this.state, restartTxt, always, now);
    this.state = result.state;
    return result.reason;
  }
}
