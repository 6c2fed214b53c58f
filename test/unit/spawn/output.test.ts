import test from "ava";
import { PassThrough } from "node:stream";
import { silentLogger } from "../../../core/src/log.js";
import { OutputCapture, type OutputLine } from "../../../core/src/spawn/output.js";

function capture(opts: { tailBytes?: number; maxLineBytes?: number } = {}): { cap: OutputCapture; lines: OutputLine[] } {
  const lines: OutputLine[] = [];
  const cap = new OutputCapture({ log: silentLogger(), app: "demo", pid: 7, sink: (l) => lines.push(l), ...opts });
  return { cap, lines };
}

test("OutputCapture splits chunks into lines per stream, including a final partial line", async (t) => {
  const { cap, lines } = capture();
  const out = new PassThrough();
  const err = new PassThrough();
  cap.attach(out, "stdout");
  cap.attach(err, "stderr");
  out.write("hel");
  out.write("lo\r\nwor");
  err.write("oops\n");
  out.end("ld");
  err.end();
  await cap.closed();
  t.deepEqual(lines.map((l) => `${l.stream}:${l.line}`), ["stdout:hello", "stderr:oops", "stdout:world"]);
  t.true(lines.every((l) => l.app === "demo" && l.pid === 7));
  t.is(cap.tail(), "hello\noops\nworld");
});

test("OutputCapture keeps multi-byte characters split across chunks intact", async (t) => {
  const { cap, lines } = capture();
  const out = new PassThrough();
  cap.attach(out, "stdout");
  const bytes = Buffer.from("héllo ✓\n");
  out.write(bytes.subarray(0, 2));
  out.end(bytes.subarray(2));
  await cap.closed();
  t.deepEqual(lines.map((l) => l.line), ["héllo ✓"]);
});

test("OutputCapture bounds the tail and splits overlong lines", async (t) => {
  const { cap, lines } = capture({ tailBytes: 20, maxLineBytes: 8 });
  const out = new PassThrough();
  cap.attach(out, "stdout");
  out.end("aaaaaaaaaaaa\nb\nc\nd\ne\nf\ng\n");
  await cap.closed();
  t.deepEqual(lines.slice(0, 2).map((l) => l.line), ["aaaaaaaa", "aaaa"]);
  t.true(cap.tail().length <= 20);
  t.true(cap.tail().endsWith("f\ng"));
});
