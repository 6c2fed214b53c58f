/**
 * Stats a group's restart.txt / always_restart.txt on request, throttled by
 * PassengerStatThrottleRate, and says whether the app must restart. The
 * decision is policy/restart.ts; this file only does the stat calls.
 */
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import {
  evaluateRestartFiles,
  INITIAL_RESTART_STATE,
  shouldCheckRestartFiles,
  type FileStat,
  type RestartCheck,
  type RestartFileState,
} from "../policy/restart.js";

async function statFile(path: string): Promise<FileStat> {
  try {
    const s = await stat(path);
    return { exists: true, mtimeMs: s.mtimeMs };
  } catch {
    return { exists: false };
  }
}

export class RestartProbe {
  private state: RestartFileState = INITIAL_RESTART_STATE;
  private inFlight: Promise<RestartCheck> | null = null;
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

  /**
   * Check the files if the throttle allows; resolves with the reason to restart,
   * or null. Concurrent callers share one stat.
   */
  async check(now: number, throttleMs: number): Promise<RestartCheck["reason"]> {
    if (this.inFlight !== null) {
      await this.inFlight;
      return null;
    }
    if (!shouldCheckRestartFiles(this.state, now, throttleMs)) return null;
    const run = (async (): Promise<RestartCheck> => {
      const [restartTxt, always] = await Promise.all([
        statFile(resolve(this.dir, "restart.txt")),
        statFile(resolve(this.dir, "always_restart.txt")),
      ]);
      return evaluateRestartFiles(this.state, restartTxt, always, now);
    })();
    this.inFlight = run;
    try {
      const result = await run;
      this.state = result.state;
      return result.reason;
    } finally {
      this.inFlight = null;
    }
  }
}
