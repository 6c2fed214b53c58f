import test from "ava";
import fc from "fast-check";
import { readdirSync } from "node:fs";
import { FrameDecoder, decodePayload, encodeBodyPrefix, encodeFrame } from "../../../core/src/protocol/codec.js";
import { MAX_FRAME_PAYLOAD, MAX_HEAD_PAYLOAD, type Frame } from "../../../core/src/protocol/frames.js";
import { ProtocolError } from "../../../core/src/errors.js";
import { BAD_VECTORS, GOOD_VECTORS, VECTOR_DIR, readVector } from "../../helpers/protocol-vectors.js";

/** Decode a whole byte stream (split into the given chunks) to frames; throws ProtocolError. */
function decodeStream(chunks: readonly Uint8Array[]): Frame[] {
  const d = new FrameDecoder();
  const out: Frame[] = [];
  for (const c of chunks) {
    d.push(c);
    for (let f = d.next(); f !== undefined; f = d.next()) out.push(f);
  }
  d.finish();
  return out;
}

/** Compare frames, treating bin data by content. */
function normalize(f: Frame): unknown {
  if (f.kind === "body") return { kind: "body", data: Buffer.from(f.data).toString("hex") };
  if (f.kind === "lease") {
    const { pass, ...rest } = f.lease;
    const lease = { ...rest, head: Buffer.from(f.lease.head).toString("hex") };
    return { kind: "lease", lease: pass === undefined ? lease : { ...lease, pass: { ...pass, restartMtimeNs: String(pass.restartMtimeNs) } } };
  }
  return f;
}

/**
 * An independent, minimal msgpack encoder (smallest encodings, as msgpack-c
 * writes them) to show the vectors are canonical, not msgpackr-specific.
 */
function refEncode(v: unknown): Buffer {
  const parts: Buffer[] = [];
  const u = (...b: number[]): void => void parts.push(Buffer.from(b));
  const w = (value: unknown): void => {
    if (value === null) return u(0xc0);
    if (typeof value === "boolean") return u(value ? 0xc3 : 0xc2);
    if (typeof value === "bigint") {
      if (value === -1n) return u(0xff);
      const b = Buffer.alloc(9);
      b[0] = 0xcf;
      b.writeBigUInt64BE(value, 1);
      if (value < 0x100000000n) throw new Error("refEncode: bigint only for uint64 values and -1");
      return void parts.push(b);
    }
    if (typeof value === "number") {
      if (value >= 0 && value < 0x80) return u(value);
      if (value < 0 && value >= -32) return u(value & 0xff);
      if (value >= 0 && value < 0x100) return u(0xcc, value);
      if (value >= 0 && value < 0x10000) return u(0xcd, value >> 8, value & 0xff);
      if (value >= 0) {
        const b = Buffer.alloc(5);
        b[0] = 0xce;
        b.writeUInt32BE(value, 1);
        return void parts.push(b);
      }
      throw new Error("refEncode: unsupported number");
    }
    if (typeof value === "string") {
      const s = Buffer.from(value, "utf8");
      if (s.length < 32) u(0xa0 | s.length);
      else if (s.length < 0x100) u(0xd9, s.length);
      else u(0xda, s.length >> 8, s.length & 0xff);
      return void parts.push(s);
    }
    if (value instanceof Uint8Array) {
      if (value.length < 0x100) u(0xc4, value.length);
      else u(0xc5, value.length >> 8, value.length & 0xff);
      return void parts.push(Buffer.from(value));
    }
    if (Array.isArray(value)) {
      if (value.length < 16) u(0x90 | value.length);
      else u(0xdc, value.length >> 8, value.length & 0xff);
      for (const x of value) w(x);
      return;
    }
    if (typeof value === "object") {
      const entries = Object.entries(value);
      if (entries.length < 16) u(0x80 | entries.length);
      else u(0xde, entries.length >> 8, entries.length & 0xff);
      for (const [k, x] of entries) {
        w(k);
        w(x);
      }
      return;
    }
    throw new Error("refEncode: unsupported value");
  };
  w(v);
  const payload = Buffer.concat(parts);
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(payload.length, 0);
  return Buffer.concat([prefix, payload]);
}

function wireArray(f: Frame): unknown[] {
  switch (f.kind) {
    case "request-head":
      return [1, f.head];
    case "body":
      return [2, f.data];
    case "end":
      return [3];
    case "response-head":
      return [4, f.status, f.headers];
    case "abort":
      return [5, f.code, f.message];
    case "lease": {
      const l = f.lease;
      const map: Record<string, unknown> = { id: l.id, pid: l.pid, reuse: l.reuse, head: l.head, chunked: l.chunked, add_headers: l.addHeaders, deadline: l.deadline };
      const p = l.pass;
      if (p !== undefined) {
        map["pass"] = p.sticky === undefined
          ? { ttl: p.ttlMs, procs: p.procs, restart_file: p.restartFile, restart_mtime: p.restartMtimeNs }
          : {
            ttl: p.ttlMs, procs: p.procs,
            sticky: { cookie: p.sticky.cookie, ids: p.sticky.ids, set_cookie: p.sticky.setCookie, set_cookie_https: p.sticky.setCookieHttps, add_headers: p.sticky.addHeaders },
            restart_file: p.restartFile, restart_mtime: p.restartMtimeNs,
          };
      }
      return [6, map];
    }
    case "proceed":
      return [7];
    case "done": {
      const r = f.report;
      return [8, { id: r.id, outcome: r.outcome, status: r.status, bytes_in: r.bytesIn, bytes_out: r.bytesOut, duration_us: r.durationUs, reusable: r.reusable }];
    }
  }
}

test("every .hex file in test/fixtures/protocol is listed in the vector tables", (t) => {
  const files = readdirSync(VECTOR_DIR).filter((f) => f.endsWith(".hex")).sort();
  const listed = [...GOOD_VECTORS.map((v) => v.file), ...BAD_VECTORS.map((v) => v.file)].sort();
  t.deepEqual(files, listed);
});

for (const v of GOOD_VECTORS) {
  test(`FrameDecoder decodes golden vector ${v.file}`, (t) => {
    const frames = decodeStream([readVector(v.file)]);
    t.is(frames.length, 1);
    const [frame] = frames;
    if (frame === undefined) return t.fail();
    t.deepEqual(normalize(frame), normalize(v.frame));
  });

  test(`encodeFrame() reproduces golden vector ${v.file} byte for byte`, (t) => {
    t.is(encodeFrame(v.frame).toString("hex"), readVector(v.file).toString("hex"));
  });

  test(`golden vector ${v.file} is canonical minimal msgpack`, (t) => {
    t.is(refEncode(wireArray(v.frame)).toString("hex"), readVector(v.file).toString("hex"));
  });
}

for (const v of BAD_VECTORS) {
  test(`bad vector ${v.file} is rejected at the ${v.level} level`, (t) => {
    const bytes = readVector(v.file);
    t.is(bytes.toString("hex"), v.bytes === "" ? bytes.toString("hex") : v.bytes.replace(/\s+/g, ""));
    if (v.level === "frame") {
      t.throws(() => decodeStream([bytes]), { instanceOf: ProtocolError });
    } else {
      const frames = decodeStream([bytes]);
      t.is(frames[0]?.kind, "request-head");
    }
  });
}

test("FrameDecoder rejects an oversized length from the prefix alone", (t) => {
  const d = new FrameDecoder();
  d.push(readVector("oversized_length.bad.hex").subarray(0, 4));
  const err = t.throws(() => d.next(), { instanceOf: ProtocolError });
  t.regex(err.message, /exceeds the limit of 4194304/);
});

test("FrameDecoder rejects an oversized HEAD frame after its first two payload bytes", (t) => {
  const d = new FrameDecoder();
  const bytes = readVector("oversized_head.bad.hex");
  d.push(bytes.subarray(0, 5));
  t.is(d.next(), undefined);
  d.push(bytes.subarray(5, 6));
  const err = t.throws(() => d.next(), { instanceOf: ProtocolError });
  t.regex(err.message, /exceeds the limit of 1048576/);
});

test("FrameDecoder accepts a BODY frame of exactly 4 MiB payload and a HEAD of exactly 1 MiB", (t) => {
  const data = Buffer.alloc(MAX_FRAME_PAYLOAD - 7, 0x61);
  const body = encodeFrame({ kind: "body", data });
  t.is(body.length, 4 + MAX_FRAME_PAYLOAD);
  const frames = decodeStream([body]);
  t.is(frames[0]?.kind, "body");
  // A RESPONSE_HEAD padded to exactly the HEAD limit.
  const base = encodeFrame({ kind: "response-head", status: 200, headers: ["X", ""] }).length - 4;
  const pad = MAX_HEAD_PAYLOAD - base - 4; // str32 header grows by 4 bytes over fixstr
  const head = encodeFrame({ kind: "response-head", status: 200, headers: ["X", "y".repeat(pad)] });
  t.is(head.length, 4 + MAX_HEAD_PAYLOAD);
  t.is(decodeStream([head])[0]?.kind, "response-head");
  t.throws(() => encodeFrame({ kind: "response-head", status: 200, headers: ["X", "y".repeat(pad + 1)] }), { instanceOf: ProtocolError });
});

test("encodeBodyPrefix() + data equals encodeFrame() of a BODY at every bin size class", (t) => {
  for (const n of [0, 1, 255, 256, 65535, 65536, 200_000]) {
    const data = Buffer.alloc(n, 7);
    t.is(Buffer.concat([encodeBodyPrefix(n), data]).toString("hex"), encodeFrame({ kind: "body", data }).toString("hex"), `size ${n}`);
  }
  t.throws(() => encodeBodyPrefix(MAX_FRAME_PAYLOAD), { instanceOf: ProtocolError });
});

test("FrameDecoder.takeRaw() returns the bytes after a 101 RESPONSE_HEAD", (t) => {
  const head = readVector("response_head_101.hex");
  const raw = Buffer.from("\x81\x05hello raw bytes that are not frames");
  const d = new FrameDecoder();
  d.push(Buffer.concat([head, raw.subarray(0, 10)]));
  const f = d.next();
  t.is(f?.kind === "response-head" ? f.status : 0, 101);
  d.push(raw.subarray(10));
  t.is(d.takeRaw().toString("latin1"), raw.toString("latin1"));
  t.throws(() => d.next());
});

test("FrameDecoder.finish() accepts a stream that ends on a frame boundary", (t) => {
  t.deepEqual(decodeStream([readVector("end.hex"), readVector("end.hex")]).map((f) => f.kind), ["end", "end"]);
});

test("decodePayload() rejects ext types, nil and maps in place of frames", (t) => {
  for (const hex of ["c0", "80", "d40100", "92 01 c0", "92 01 90", "93 04 cd 0258 90", "93 04 cc c8 91 01", "92 05 a1 61", "93 05 a1 61 01", "90"]) {
    t.throws(() => decodePayload(Buffer.from(hex.replace(/\s+/g, ""), "hex")), { instanceOf: ProtocolError }, hex);
  }
});

const headerStr = fc.string({ maxLength: 40 });
const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({
    kind: fc.constant("request-head" as const),
    head: fc.record({
      v: fc.constant(1),
      method: fc.constantFrom("GET", "POST", "PUT"),
      uri: fc.string({ maxLength: 300 }),
      headers: fc.array(headerStr, { maxLength: 40 }),
      gen: fc.nat(),
      app: fc.record({ app_root: fc.string(), min_instances: fc.integer({ min: -1, max: 100_000 }) }),
    }),
  }),
  fc.record({ kind: fc.constant("body" as const), data: fc.uint8Array({ maxLength: 70_000 }) }),
  fc.record({ kind: fc.constant("end" as const) }),
  fc.record({ kind: fc.constant("response-head" as const), status: fc.integer({ min: 100, max: 599 }), headers: fc.array(headerStr, { maxLength: 30 }).map((a) => (a.length % 2 === 0 ? a : a.slice(1))) }),
  fc.record({ kind: fc.constant("abort" as const), code: fc.string(), message: fc.string({ unit: "grapheme", maxLength: 200 }) }),
  fc.record({
    kind: fc.constant("lease" as const),
    lease: fc.record({
      id: fc.string({ minLength: 1, maxLength: 40 }), pid: fc.nat(), reuse: fc.boolean(), head: fc.uint8Array({ maxLength: 9000 }),
      chunked: fc.boolean(), addHeaders: fc.array(headerStr, { maxLength: 6 }).map((a) => (a.length % 2 === 0 ? a : a.slice(1))), deadline: fc.nat(),
      pass: fc.record({
        ttlMs: fc.nat(), procs: fc.array(fc.string({ minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 16 }),
        restartFile: fc.string().map((p) => `/${p}`), restartMtimeNs: fc.bigInt({ min: -1n, max: (1n << 63n) - 1n }),
      }),
    }, { requiredKeys: ["id", "pid", "reuse", "head", "chunked", "addHeaders", "deadline"] }),
  }),
  fc.record({ kind: fc.constant("proceed" as const) }),
  fc.record({
    kind: fc.constant("done" as const),
    report: fc.record({
      id: fc.string({ maxLength: 40 }), outcome: fc.constantFrom("ok" as const, "app_error" as const, "timeout" as const, "client_aborted" as const, "stale" as const),
      status: fc.integer({ min: 0, max: 999 }), bytesIn: fc.nat(), bytesOut: fc.nat(), durationUs: fc.nat(), reusable: fc.boolean(),
    }),
  }),
);

test("FrameDecoder yields the same frames whatever the chunk boundaries (property)", (t) => {
  fc.assert(
    fc.property(fc.array(frameArb, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
      const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let at = 0;
      for (const p of points) {
        chunks.push(stream.subarray(at, p));
        at = p;
      }
      chunks.push(stream.subarray(at));
      const got = decodeStream(chunks).map(normalize);
      return JSON.stringify(got) === JSON.stringify(frames.map(normalize));
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test("FrameDecoder decodes a byte-at-a-time stream", (t) => {
  const stream = Buffer.concat(GOOD_VECTORS.map((v) => readVector(v.file)));
  const chunks = [...stream].map((b) => Buffer.from([b]));
  t.deepEqual(decodeStream(chunks).map(normalize), GOOD_VECTORS.map((v) => normalize(v.frame)));
});

test("FrameDecoder never throws anything but ProtocolError on random bytes (property)", (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        decodeStream([bytes]);
      } catch (e: unknown) {
        return e instanceof ProtocolError;
      }
      return true;
    }),
    { numRuns: 1000 },
  );
  t.pass();
});
