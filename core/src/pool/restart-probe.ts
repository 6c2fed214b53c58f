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

/** A file's stat and its mtime in ns (-1n: absent). */
interface NsStat {
  readonly stat: FileStat;
  readonly mtimeNs: bigint;
}

const ABSENT: NsStat = { stat: { exists: false }, mtimeNs: -1n };

/** A file that cannot be stat'ed (absent, EACCES, ENOTDIR …) counts as absent. */
function statFile(path: string): NsStat {
  try {
    const s = statSync(path, { bigint: true, throwIfNoEntry: false });
    return s === undefined ? ABSENT : { stat: { exists: true, mtimeMs: Number(s.mtimeNs) / 1e6 }, mtimeNs: s.mtimeNs };
  } catch {
    return ABSENT;
  }
}

/** What a pass needs of the restart files (docs/protocol.md "Passes"). */
export interface RestartFileView {
  /** Absolute path of restart.txt. */
  readonly restartFile: string;
  /** Its mtime in ns at the last check; -1n = absent; undefined = not checked yet (for this directory). */
  readonly restartMtimeNs: bigint | undefined;
  /** always_restart.txt existed at the last check. */
  readonly alwaysRestart: boolean;
}

export class RestartProbe {
  private state: RestartFileState = INITIAL_RESTART_STATE;
  private dir: string;
  private restartFile: string;
  /** restart.txt's mtime in ns at the last check (-1n absent); undefined before the first. */
  private mtimeNs: bigint | undefined;

  constructor(appRoot: string, restartDir: string) {
    this.dir = resolve(appRoot, restartDir);
    this.restartFile = resolve(this.dir, "restart.txt");
  }

  /** The restart files as the last check saw them. */
  view(): RestartFileView {
    return { restartFile: this.restartFile, restartMtimeNs: this.mtimeNs, alwaysRestart: this.state.alwaysRestart };
  }

  /** The app's restart directory moved (new options). The next check only records. */
  setDirectory(appRoot: string, restartDir: string): void {
    const dir = resolve(appRoot, restartDir);
    if (dir === this.dir) return;
    this.dir = dir;
    this.restartFile = resolve(dir, "restart.txt");
    this.state = INITIAL_RESTART_STATE;
    this.mtimeNs = undefined;
  }

  /** Check the files if the throttle allows: the reason to restart, or null. */
  check(now: number, throttleMs: number): RestartCheck["reason"] {
    if (!shouldCheckRestartFiles(this.state, now, throttleMs)) return null;
    const restartTxt = statFile(this.restartFile);
    const always = statFile(resolve(this.dir, "always_restart.txt"));
    const result = evaluateRestartFiles(this.state, restartTxt.stat, always.stat, now);
    this.state = result.state;
    this.mtimeNs = restartTxt.mtimeNs;
    return result.reason;
  }
}
