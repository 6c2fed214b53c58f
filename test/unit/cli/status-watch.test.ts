/** watch() (cli/commands/status.ts): `ferry status --watch` redraws in place until stopped. */
import test from "ava";
import { watch } from "../../../core/src/cli/commands/status.js";

test("watch() clears the screen and redraws every interval until stopped; a failed fetch is shown and retried", async (t) => {
  const out: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: () => undefined }, env: {}, cwd: "/" };
  const stop = new AbortController();
  let n = 0;
  const code = await watch(io, async () => {
    n++;
    if (n === 2) throw new Error("Cannot reach the admin API");
    if (n === 3) stop.abort();
    return `frame ${n}\n`;
  }, 20, stop.signal);
  t.is(code, 0);
  t.is(out.length, 3);
  t.true(out.every((s) => s.startsWith("\x1b[H\x1b[2J")));
  t.regex(out[0] ?? "", /frame 1/);
  t.regex(out[1] ?? "", /Cannot reach the admin API \(retrying\)/);
  t.regex(out[2] ?? "", /frame 3/);
});
