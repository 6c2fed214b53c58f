import test from "ava";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { encodeFrame } from "../../../core/src/protocol/codec.js";
import type { Frame } from "../../../core/src/protocol/frames.js";
import { ModuleListener } from "../../../core/src/front/module/listener.js";
import { silentLogger } from "../../../core/src/log.js";
import { FrameClient, frameRequest, requestHeadMap } from "../../helpers/frame-client.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "ferry-fuzz-"));
let listener: ModuleListener | undefined;

test.after.always(async () => {
  await listener?.close();
  rmSync(dir, { recursive: true, force: true });
});

const validFrames: Frame[] = [
  { kind: "request-head", head: requestHeadMap({ has_body: true }) },
  { kind: "body", data: Buffer.from("some body bytes") },
  { kind: "end" },
  { kind: "abort", code: "client_aborted", message: "x" },
  { kind: "response-head", status: 200, headers: [] },
];
const validBytes = validFrames.map((f) => encodeFrame(f));

/** Inputs: random bytes; valid frames cut short; valid frames with flipped bytes; random frame orders. */
const inputArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
  fc.tuple(fc.constantFrom(...validBytes), fc.nat()).map(([b, n]) => b.subarray(0, n % b.length)),
  fc.tuple(fc.constantFrom(...validBytes), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([b, at, x]) => {
    const copy = Buffer.from(b);
    const i = at % copy.length;
    copy[i] = (copy[i] ?? 0) ^ x;
    return copy;
  }),
  fc.array(fc.constantFrom(...validBytes), { minLength: 1, maxLength: 6 }).map((bs) => Buffer.concat(bs)),
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.uint8Array({ maxLength: 64 })).map(([len, rest]) => Buffer.concat([Buffer.from(len), Buffer.from(rest)])),
);

test("random and truncated frames on many connections never take the core down", async (t) => {
  t.timeout(50_000);
  let handled = 0;
  listener = new ModuleListener({
    path: path.join(dir, "module.sock"),
    log: silentLogger(),
    apacheUid: 33,
    headDeadlineMs: 5_000,
    handler: async (ex) => {
      handled++;
      let n = 0;
      for await (const c of ex.body) n += (c as Buffer).length;
      ex.writeHead(200, ["X-Len", String(n)]);
      ex.write(Buffer.from("ok"));
      ex.end();
    },
  });
  await listener.start();
  const l = listener;

  // A well-formed, slow request that spans the whole fuzz run.
  const steady = await FrameClient.connect(l.path);
  steady.sendHead(requestHeadMap({ method: "POST", has_body: true }));
  steady.sendBody("first;");

  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(inputArb, { minLength: 1, maxLength: 4 }), async (inputs) => {
      runs++;
      // Several malformed connections at once.
      await Promise.all(inputs.map(async (bytes) => {
        const c = await FrameClient.connect(l.path);
        c.writeRaw(bytes);
        c.endWrite();
        await c.waitClosed(10_000);
        c.destroy();
      }));
      return true;
    }),
    { numRuns: 300, interruptAfterTimeLimit: 30_000 },
  );
  t.true(runs >= 20, `only ${runs} runs`);

  steady.sendBody("second");
  steady.sendEnd();
  const res = await steady.readResponse();
  steady.destroy();
  t.is(res.status, 200);
  t.deepEqual(res.headers, ["X-Len", "12"]);
  t.is(res.body.toString(), "ok");

  // And a fresh request is still served.
  const again = await frameRequest(l.path, requestHeadMap());
  t.is(again.status, 200);
  t.true(handled >= 2);
  const deadline = Date.now() + 10_000;
  while (l.connectionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.is(l.connectionCount, 0);
});
