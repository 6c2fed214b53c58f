import test from "ava";
import { MAX_TIMER_DELAY_MS, timerDelay } from "../../../core/src/util/clock.js";

test("timerDelay() clamps durations timers cannot take (PassengerMaxRequestTime / StartTimeout up to a year)", (t) => {
  t.is(timerDelay(90_000), 90_000);
  t.is(timerDelay(0), 0);
  t.is(timerDelay(-5), 0);
  t.is(timerDelay(31_536_000_000), MAX_TIMER_DELAY_MS);
  // The clamped value is one setTimeout() and AbortSignal.timeout() accept as is.
  t.notThrows(() => AbortSignal.timeout(timerDelay(31_536_000_000)));
  const timer = setTimeout(() => undefined, timerDelay(31_536_000_000));
  clearTimeout(timer);
  t.true(MAX_TIMER_DELAY_MS <= 2 ** 31 - 1);
});
