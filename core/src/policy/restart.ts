/**
 * Pure restart-file detection (Passenger's `Group::needsRestart()`):
 * `<restartDir>/restart.txt` created or touched → restart; the first check
 * only records its state; deleting it does not restart. While
 * `always_restart.txt` exists every request restarts, bypassing the throttle.
 */

/** What a stat of one file found. */
export type FileStat = { readonly exists: false } | { readonly exists: true; readonly mtimeMs: number };

export interface RestartFileState {
  /** When the files were last stat'ed; null before the first check. */
  readonly checkedAt: number | null;
  /** restart.txt's mtime at the last check; null when absent (or never checked). */
  readonly restartMtimeMs: number | null;
  /** always_restart.txt existed at the last check. */
  readonly alwaysRestart: boolean;
}

export const INITIAL_RESTART_STATE: RestartFileState = { checkedAt: null, restartMtimeMs: null, alwaysRestart: false };

/** Should this request stat the restart files (throttled by PassengerStatThrottleRate)? */
export function shouldCheckRestartFiles(state: RestartFileState, now: number, throttleMs: number): boolean {
  if (state.checkedAt === null || state.alwaysRestart) return true;
  return now - state.checkedAt >= throttleMs || now < state.checkedAt;
}

export interface RestartCheck {
  readonly restart: boolean;
  readonly reason: "always_restart.txt" | "restart.txt" | null;
  readonly state: RestartFileState;
}

/** Fold the stat results into the state and say whether to restart. */
export function evaluateRestartFiles(
  state: RestartFileState,
  restartTxt: FileStat,
  alwaysRestartTxt: FileStat,
  now: number,
): RestartCheck {
  const mtime = restartTxt.exists ? restartTxt.mtimeMs : null;
  const next: RestartFileState = { checkedAt: now, restartMtimeMs: mtime, alwaysRestart: alwaysRestartTxt.exists };
  if (alwaysRestartTxt.exists) return { restart: true, reason: "always_restart.txt", state: next };
  const first = state.checkedAt === null;
  const touched = !first && mtime !== null && mtime !== state.restartMtimeMs;
  return { restart: touched, reason: touched ? "restart.txt" : null, state: next };
}
