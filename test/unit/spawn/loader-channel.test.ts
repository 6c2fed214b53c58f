import test from "ava";
import { PassThrough } from "node:stream";
import type { LoaderMessage } from "../../../core/src/loader/messages.js";
import { LoaderChannel } from "../../../core/src/spawn/loader-channel.js";

test("LoaderChannel hands every valid message to each subscriber until it unsubscribes", async (t) => {
  const stream = new PassThrough();
  const channel = new LoaderChannel(stream);
  const a: LoaderMessage[] = [];
  const b: LoaderMessage[] = [];
  const stopA = channel.subscribe((m) => a.push(m));
  channel.subscribe((m) => b.push(m));
  stream.write('{"type":"started","pid":5}\nnot json\n{"type":"loop","elu":0.25,"delayMeanMs":0,');
  stream.write('"delayP99Ms":1,"delayMaxMs":2,"intervalMs":250}\n');
  await new Promise((r) => setImmediate(r));
  stopA();
  stream.write('{"type":"listen-called"}\n');
  await new Promise((r) => setImmediate(r));
  t.deepEqual(a.map((m) => m.type), ["started", "loop"]);
  t.deepEqual(b.map((m) => m.type), ["started", "loop", "listen-called"]);
  t.deepEqual(b[1], { type: "loop", elu: 0.25, delayMeanMs: 0, delayP99Ms: 1, delayMaxMs: 2, intervalMs: 250 });
});
