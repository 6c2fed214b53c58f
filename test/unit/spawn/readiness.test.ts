import test from "ava";
import { PassThrough } from "node:stream";
import { LoaderChannel } from "../../../core/src/spawn/loader-channel.js";
import { ReadinessFailure, waitForLoader } from "../../../core/src/spawn/readiness.js";
import type { ProcessExit } from "../../../core/src/spawn/spawner.js";

function setup(): { stream: PassThrough; channel: LoaderChannel; exit: (e: ProcessExit) => void; exited: Promise<ProcessExit>; ac: AbortController } {
  let exit: (e: ProcessExit) => void = () => undefined;
  const exited = new Promise<ProcessExit>((r) => { exit = r; });
  const stream = new PassThrough();
  return { stream, channel: new LoaderChannel(stream), exit, exited, ac: new AbortController() };
}

test("waitForLoader() resolves on 'listening' for the expected socket, across chunk boundaries", async (t) => {
  const s = setup();
  const p = waitForLoader({ channel: s.channel, exited: s.exited, signal: s.ac.signal, socketPath: "/s/a.sock" });
  s.stream.write('{"type":"started","pid":5}\n{"type":"listen-');
  s.stream.write('called"}\n{"type":"listening","path":"/s/a.sock"}\n');
  await t.notThrowsAsync(p);
});

test("waitForLoader() names the step the process exited in", async (t) => {
  for (const [lines, step] of [["", "exec"], ['{"type":"started","pid":5}\n', "load"], ['{"type":"started","pid":5}\n{"type":"listen-called"}\n', "listen"]] as const) {
    const s = setup();
    const p = waitForLoader({ channel: s.channel, exited: s.exited, signal: s.ac.signal, socketPath: "/s/a.sock" });
    s.stream.write(lines);
    await new Promise((r) => setImmediate(r));
    s.exit({ code: 1, signal: null });
    const err = await t.throwsAsync(p, { instanceOf: ReadinessFailure });
    t.is(err?.step, step);
    t.false(err?.timeout);
    t.regex(err?.message ?? "", /^process exited with code 1 while /);
  }
});

test("waitForLoader() adds the loader's error summary once the process exits", async (t) => {
  const s = setup();
  const p = waitForLoader({ channel: s.channel, exited: s.exited, signal: s.ac.signal, socketPath: "/s/a.sock" });
  s.stream.write('{"type":"started","pid":5}\n{"type":"error","step":"load","message":"Error: boom"}\n');
  await new Promise((r) => setImmediate(r));
  s.exit({ code: 1, signal: null });
  const err = await t.throwsAsync(p, { instanceOf: ReadinessFailure });
  t.is(err?.message, "process exited with code 1 while loading the app (it has not called listen()): Error: boom");
});

test("waitForLoader() rejects a socket other than the expected one", async (t) => {
  const s = setup();
  const p = waitForLoader({ channel: s.channel, exited: s.exited, signal: s.ac.signal, socketPath: "/s/a.sock" });
  s.stream.write('{"type":"listening","path":"/elsewhere.sock"}\n');
  const err = await t.throwsAsync(p, { instanceOf: ReadinessFailure });
  t.is(err?.step, "listen");
});

test("waitForLoader() reports a timeout abort as a timeout and another abort as not", async (t) => {
  const s = setup();
  const p = waitForLoader({ channel: s.channel, exited: s.exited, signal: s.ac.signal, socketPath: "/s/a.sock" });
  s.stream.write('{"type":"started","pid":5}\n');
  await new Promise((r) => setImmediate(r));
  s.ac.abort(new DOMException("deadline", "TimeoutError"));
  const err = await t.throwsAsync(p, { instanceOf: ReadinessFailure });
  t.true(err?.timeout);
  t.is(err?.step, "load");
  const s2 = setup();
  s2.ac.abort();
  const err2 = await t.throwsAsync(waitForLoader({ channel: s2.channel, exited: s2.exited, signal: s2.ac.signal, socketPath: "/x" }), { instanceOf: ReadinessFailure });
  t.false(err2?.timeout);
  t.regex(err2?.message ?? "", /^spawn aborted/);
});

test("waitForLoader() ignores malformed lines", async (t) => {
  const s = setup();
  const p = waitForLoader({ channel: s.channel, exited: s.exited, signal: s.ac.signal, socketPath: "/s/a.sock" });
  s.stream.write('garbage\n{"type":"listening"}\n[]\n{"type":"listening","path":"/s/a.sock"}\n');
  await t.notThrowsAsync(p);
});
