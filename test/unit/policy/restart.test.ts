import test from "ava";
import {
  evaluateRestartFiles,
  INITIAL_RESTART_STATE,
  shouldCheckRestartFiles,
  type FileStat,
  type RestartFileState,
} from "../../../core/src/policy/restart.js";

const absent: FileStat = { exists: false };
const at = (mtimeMs: number): FileStat => ({ exists: true, mtimeMs });
const checked = (checkedAt: number, restartMtimeMs: number | null, alwaysRestart = false): RestartFileState => ({
  checkedAt,
  restartMtimeMs,
  alwaysRestart,
});

const throttleCases: ReadonlyArray<{ title: string; state: RestartFileState; now: number; throttle: number; want: boolean }> = [
  { title: "first request always checks", state: INITIAL_RESTART_STATE, now: 0, throttle: 1000, want: true },
  { title: "within the throttle → no check", state: checked(1000, null), now: 1999, throttle: 1000, want: false },
  { title: "throttle elapsed → check", state: checked(1000, null), now: 2000, throttle: 1000, want: true },
  { title: "throttle 0 checks every request", state: checked(1000, null), now: 1000, throttle: 0, want: true },
  { title: "always_restart.txt bypasses the throttle", state: checked(1000, null, true), now: 1001, throttle: 1000, want: true },
  { title: "clock went backwards → check", state: checked(5000, null), now: 100, throttle: 1000, want: true },
];
for (const c of throttleCases) {
  test(`shouldCheckRestartFiles() ${c.title}`, (t) => {
    t.is(shouldCheckRestartFiles(c.state, c.now, c.throttle), c.want);
  });
}

const evalCases: ReadonlyArray<{
  title: string;
  state: RestartFileState;
  restart: FileStat;
  always: FileStat;
  want: { restart: boolean; reason: string | null; state: RestartFileState };
}> = [
  {
    title: "first check of an existing restart.txt only records it",
    state: INITIAL_RESTART_STATE,
    restart: at(500),
    always: absent,
    want: { restart: false, reason: null, state: checked(10, 500) },
  },
  {
    title: "first check without the file records absence",
    state: INITIAL_RESTART_STATE,
    restart: absent,
    always: absent,
    want: { restart: false, reason: null, state: checked(10, null) },
  },
  {
    title: "restart.txt created → restart",
    state: checked(5, null),
    restart: at(700),
    always: absent,
    want: { restart: true, reason: "restart.txt", state: checked(10, 700) },
  },
  {
    title: "restart.txt touched (mtime changed) → restart",
    state: checked(5, 500),
    restart: at(600),
    always: absent,
    want: { restart: true, reason: "restart.txt", state: checked(10, 600) },
  },
  {
    title: "mtime moved backwards still counts as a change",
    state: checked(5, 500),
    restart: at(400),
    always: absent,
    want: { restart: true, reason: "restart.txt", state: checked(10, 400) },
  },
  {
    title: "unchanged restart.txt → no restart",
    state: checked(5, 500),
    restart: at(500),
    always: absent,
    want: { restart: false, reason: null, state: checked(10, 500) },
  },
  {
    title: "deleting restart.txt does not restart",
    state: checked(5, 500),
    restart: absent,
    always: absent,
    want: { restart: false, reason: null, state: checked(10, null) },
  },
  {
    title: "re-creating it after deletion restarts",
    state: checked(5, null),
    restart: at(500),
    always: absent,
    want: { restart: true, reason: "restart.txt", state: checked(10, 500) },
  },
  {
    title: "always_restart.txt restarts even on the first check",
    state: INITIAL_RESTART_STATE,
    restart: absent,
    always: at(1),
    want: { restart: true, reason: "always_restart.txt", state: checked(10, null, true) },
  },
  {
    title: "always_restart.txt restarts every time it is seen",
    state: checked(5, 500, true),
    restart: at(500),
    always: at(1),
    want: { restart: true, reason: "always_restart.txt", state: checked(10, 500, true) },
  },
  {
    title: "always_restart.txt removed → back to restart.txt rules",
    state: checked(5, 500, true),
    restart: at(500),
    always: absent,
    want: { restart: false, reason: null, state: checked(10, 500, false) },
  },
];
for (const c of evalCases) {
  test(`evaluateRestartFiles() ${c.title}`, (t) => {
    t.deepEqual(evaluateRestartFiles(c.state, c.restart, c.always, 10), c.want);
  });
}
