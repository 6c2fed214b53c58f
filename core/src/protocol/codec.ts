/**
 * Length-prefixed msgpack framing (docs/protocol.md §Framing): `encodeFrame`
 * and a streaming `FrameDecoder`. The only importer of msgpackr. Plain msgpack
 * only (no records/structures extensions, minimal-size maps) so the C side
 * (msgpack-c) reads and writes the very same bytes.
 */
import { Packr, Unpackr } from "msgpackr";
import { ProtocolError } from "../errors.js";
import {
  DONE_OUTCOMES,
  FrameType,
  frameTypeOf,
  LENGTH_PREFIX_SIZE,
  MAX_FRAME_PAYLOAD,
  payloadLimitFor,
  type DoneOutcome,
  type DoneReport,
  type Frame,
  type Lease,
  type Pass,
  type PassSticky,
  type WireMap,
  MAX_PASS_PROCS,
} from "./frames.js";

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true, encodeUndefinedAsNil: true });
// int64 "auto" (msgpackr ≥ 1.10; missing from its typings): a number when it is safe, else a
// bigint (LEASE pass `restart_mtime` is in ns). Other fields reject a bigint as out of range.
const unpackOptions: { useRecords: boolean; mapsAsObjects: boolean; int64AsType: string } = { useRecords: false, mapsAsObjects: true, int64AsType: "auto" };
const unpackr = new Unpackr(unpackOptions as ConstructorParameters<typeof Unpackr>[0]);

/** Stands in for LEASE pass `restart_mtime` while msgpackr packs the frame (see packLease). */
const MTIME_PLACEHOLDER = 0;

function wireArrayOf(frame: Frame): unknown[] {
  switch (frame.kind) {
    case "request-head":
      return [FrameType.RequestHead, frame.head];
    case "body":
      return [FrameType.Body, Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength)];
    case "end":
      return [FrameType.End];
    case "response-head":
      return [FrameType.ResponseHead, frame.status, frame.headers];
    case "abort":
      return [FrameType.Abort, frame.code, frame.message];
    case "lease": {
      const l = frame.lease;
      // Keys in docs/protocol.md's table order (canonical encoding).
      const map: Record<string, unknown> = {
        id: l.id, pid: l.pid, reuse: l.reuse, head: Buffer.from(l.head.buffer, l.head.byteOffset, l.head.byteLength),
        chunked: l.chunked, add_headers: l.addHeaders, deadline: l.deadline,
      };
      if (l.pass !== undefined) {
        // restart_mtime is written by packPayload (an int64 msgpackr would not write in its smallest form).
        const p = l.pass;
        map["pass"] = p.sticky === undefined
          ? { ttl: p.ttlMs, procs: p.procs, restart_file: p.restartFile, restart_mtime: MTIME_PLACEHOLDER }
          : {
            ttl: p.ttlMs, procs: p.procs,
            sticky: {
              cookie: p.sticky.cookie, ids: p.sticky.ids, set_cookie: p.sticky.setCookie,
              set_cookie_https: p.sticky.setCookieHttps, add_headers: p.sticky.addHeaders,
            },
            restart_file: p.restartFile, restart_mtime: MTIME_PLACEHOLDER,
          };
      }
      return [FrameType.Lease, map];
    }
    case "proceed":
      return [FrameType.Proceed];
    case "done": {
      const r = frame.report;
      return [FrameType.Done, {
        id: r.id, outcome: r.outcome, status: r.status, bytes_in: r.bytesIn, bytes_out: r.bytesOut,
        duration_us: r.durationUs, reusable: r.reusable,
      }];
    }
  }
}

/** The smallest msgpack encoding of an integer (as msgpack-c's msgpack_pack_int64 writes it). */
export function packInteger(n: bigint): Buffer {
  if (n >= 0n) {
    if (n < 0x80n) return Buffer.from([Number(n)]);
    if (n < 0x100n) return Buffer.from([0xcc, Number(n)]);
    const b = Buffer.alloc(n < 0x10000n ? 3 : n < 0x100000000n ? 5 : 9);
    if (b.length === 3) b.writeUInt16BE(Number(n), 1);
    else if (b.length === 5) b.writeUInt32BE(Number(n), 1);
    else b.writeBigUInt64BE(BigInt.asUintN(64, n), 1);
    b[0] = b.length === 3 ? 0xcd : b.length === 5 ? 0xce : 0xcf;
    return b;
  }
  if (n >= -32n) return Buffer.from([Number(n) & 0xff]);
  if (n >= -0x80n) return Buffer.from([0xd0, Number(n) & 0xff]);
  const b = Buffer.alloc(n >= -0x8000n ? 3 : n >= -0x80000000n ? 5 : 9);
  if (b.length === 3) b.writeInt16BE(Number(n), 1);
  else if (b.length === 5) b.writeInt32BE(Number(n), 1);
  else b.writeBigInt64BE(BigInt.asIntN(64, n), 1);
  b[0] = b.length === 3 ? 0xd1 : b.length === 5 ? 0xd2 : 0xd3;
  return b;
}

/**
 * The msgpack payload of a frame. A LEASE's pass `restart_mtime` (ns since
 * the epoch: beyond 2^53) is the last value of the frame: msgpackr packs a
 * placeholder there, replaced by the integer's smallest encoding.
 */
function packPayload(frame: Frame): Buffer {
  const packed = packr.pack(wireArrayOf(frame));
  if (frame.kind !== "lease" || frame.lease.pass === undefined) return packed;
  if (packed[packed.length - 1] !== MTIME_PLACEHOLDER) throw new Error("Cannot encode LEASE frame: the pass's restart_mtime is not its last value");
  return Buffer.concat([packed.subarray(0, packed.length - 1), packInteger(frame.lease.pass.restartMtimeNs)]);
}

/** Encode one whole frame: u32 big-endian length, then the msgpack array. */
export function encodeFrame(frame: Frame): Buffer {
  const payload = packPayload(frame);
  const limit = payloadLimitFor(frameTypeOf(frame.kind));
  if (payload.length > limit) {
    throw new ProtocolError(`Cannot encode ${frame.kind} frame: payload of ${payload.length} bytes exceeds the limit of ${limit}`);
  }
  const out = Buffer.allocUnsafe(LENGTH_PREFIX_SIZE + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, LENGTH_PREFIX_SIZE);
  return out;
}

/**
 * The bytes of a BODY frame up to (not including) its data: length prefix,
 * array header, type and bin header. `encodeBodyPrefix(d.length)` followed by
 * `d` equals `encodeFrame({ kind: "body", data: d })`, without copying `d`.
 */
export function encodeBodyPrefix(dataLength: number): Buffer {
  const binHeaderLength = dataLength < 0x100 ? 2 : dataLength < 0x10000 ? 3 : 5;
  const payloadLength = 2 + binHeaderLength + dataLength;
  if (payloadLength > MAX_FRAME_PAYLOAD) {
    throw new ProtocolError(`Cannot encode body frame: payload of ${payloadLength} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD}`);
  }
  // One small buffer per frame (this runs for every body chunk).
  const out = Buffer.allocUnsafe(LENGTH_PREFIX_SIZE + 2 + binHeaderLength);
  out.writeUInt32BE(payloadLength, 0);
  out[4] = 0x92;
  out[5] = FrameType.Body;
  if (binHeaderLength === 2) {
    out[6] = 0xc4;
    out[7] = dataLength;
  } else if (binHeaderLength === 3) {
    out[6] = 0xc5;
    out.writeUInt16BE(dataLength, 7);
  } else {
    out[6] = 0xc6;
    out.writeUInt32BE(dataLength, 7);
  }
  return out;
}

function isWireMap(v: unknown): v is WireMap {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === "string");
}

/** Check the shape of a decoded payload and turn it into a typed Frame. */
export function frameFromWire(value: unknown): Frame {
  if (!Array.isArray(value)) {
    throw new ProtocolError(`Cannot decode frame: payload is a ${describe(value)}, not an array`);
  }
  const arr: readonly unknown[] = value;
  const type = arr[0];
  const arity = (n: number, name: string): void => {
    if (arr.length < n) throw new ProtocolError(`Cannot decode ${name} frame: ${arr.length} elements, expected ${n}`);
  };
  switch (type) {
    case FrameType.RequestHead: {
      arity(2, "REQUEST_HEAD");
      const head = arr[1];
      if (!isWireMap(head)) throw new ProtocolError(`Cannot decode REQUEST_HEAD frame: head is a ${describe(head)}, not a map`);
      return { kind: "request-head", head };
    }
    case FrameType.Body: {
      arity(2, "BODY");
      const data = arr[1];
      if (!(data instanceof Uint8Array)) throw new ProtocolError(`Cannot decode BODY frame: data is a ${describe(data)}, not bin`);
      return { kind: "body", data };
    }
    case FrameType.End:
      return { kind: "end" };
    case FrameType.ResponseHead: {
      arity(3, "RESPONSE_HEAD");
      const status = arr[1];
      const headers = arr[2];
      if (typeof status !== "number" || !Number.isInteger(status) || status < 100 || status > 599) {
        throw new ProtocolError(`Cannot decode RESPONSE_HEAD frame: status ${String(status)} is not an integer 100-599`);
      }
      if (!isStringList(headers) || headers.length % 2 !== 0) {
        throw new ProtocolError("Cannot decode RESPONSE_HEAD frame: headers is not a flat array of name/value strings");
      }
      return { kind: "response-head", status, headers };
    }
    case FrameType.Abort: {
      arity(3, "ABORT");
      const code = arr[1];
      const message = arr[2];
      if (typeof code !== "string" || typeof message !== "string") {
        throw new ProtocolError("Cannot decode ABORT frame: code and message must be strings");
      }
      return { kind: "abort", code, message };
    }
    case FrameType.Lease: {
      arity(2, "LEASE");
      return { kind: "lease", lease: leaseFromWire(arr[1]) };
    }
    case FrameType.Proceed:
      return { kind: "proceed" };
    case FrameType.Done: {
      arity(2, "DONE");
      return { kind: "done", report: doneFromWire(arr[1]) };
    }
    default:
      throw new ProtocolError(`Cannot decode frame: unknown frame type ${describe(type)}`);
  }
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0;
}

function leaseFromWire(m: unknown): Lease {
  if (!isWireMap(m)) throw new ProtocolError(`Cannot decode LEASE frame: lease is a ${describe(m)}, not a map`);
  const { id, pid, reuse, head, chunked, add_headers: addHeaders, deadline } = m;
  if (typeof id !== "string" || id === "") throw new ProtocolError("Cannot decode LEASE frame: id must be a non-empty string");
  if (!isCount(pid)) throw new ProtocolError("Cannot decode LEASE frame: pid must be a non-negative integer");
  if (typeof reuse !== "boolean" || typeof chunked !== "boolean") throw new ProtocolError("Cannot decode LEASE frame: reuse and chunked must be booleans");
  if (!(head instanceof Uint8Array)) throw new ProtocolError(`Cannot decode LEASE frame: head is a ${describe(head)}, not bin`);
  if (!isStringList(addHeaders) || addHeaders.length % 2 !== 0) throw new ProtocolError("Cannot decode LEASE frame: add_headers is not a flat array of name/value strings");
  if (!isCount(deadline)) throw new ProtocolError("Cannot decode LEASE frame: deadline must be a non-negative integer");
  const pass = m["pass"];
  if (pass === undefined || pass === null) return { id, pid, reuse, head, chunked, addHeaders, deadline };
  return { id, pid, reuse, head, chunked, addHeaders, deadline, pass: passFromWire(pass) };
}

function passFromWire(m: unknown): Pass {
  if (!isWireMap(m)) throw new ProtocolError(`Cannot decode LEASE frame: pass is a ${describe(m)}, not a map`);
  const { ttl, procs, sticky, restart_file: restartFile, restart_mtime: mtime } = m;
  if (!isCount(ttl)) throw new ProtocolError("Cannot decode LEASE frame: pass ttl must be a non-negative integer");
  if (!isStringList(procs) || procs.length === 0 || procs.length > MAX_PASS_PROCS) {
    throw new ProtocolError(`Cannot decode LEASE frame: pass procs must be an array of 1-${MAX_PASS_PROCS} strings`);
  }
  if (typeof restartFile !== "string" || !restartFile.startsWith("/")) {
    throw new ProtocolError("Cannot decode LEASE frame: pass restart_file must be an absolute path");
  }
  const ns = typeof mtime === "number" && Number.isSafeInteger(mtime) ? BigInt(mtime) : typeof mtime === "bigint" ? mtime : undefined;
  if (ns === undefined || ns < -1n) throw new ProtocolError("Cannot decode LEASE frame: pass restart_mtime must be an integer ≥ -1");
  if (sticky === undefined || sticky === null) return { ttlMs: ttl, procs, restartFile, restartMtimeNs: ns };
  return { ttlMs: ttl, procs, sticky: passStickyFromWire(sticky, procs.length), restartFile, restartMtimeNs: ns };
}

function passStickyFromWire(m: unknown, nprocs: number): PassSticky {
  if (!isWireMap(m)) throw new ProtocolError(`Cannot decode LEASE frame: pass sticky is a ${describe(m)}, not a map`);
  const { cookie, ids, set_cookie: setCookie, set_cookie_https: setCookieHttps, add_headers: addHeaders } = m;
  if (typeof cookie !== "string" || cookie === "") throw new ProtocolError("Cannot decode LEASE frame: pass sticky cookie must be a non-empty string");
  for (const [name, list] of [["ids", ids], ["set_cookie", setCookie], ["set_cookie_https", setCookieHttps]] as const) {
    if (!isStringList(list) || list.length !== nprocs) {
      throw new ProtocolError(`Cannot decode LEASE frame: pass sticky ${name} must be an array of ${nprocs} strings (one per process of procs)`);
    }
  }
  if (!isStringList(addHeaders) || addHeaders.length % 2 !== 0) {
    throw new ProtocolError("Cannot decode LEASE frame: pass sticky add_headers is not a flat array of name/value strings");
  }
  return { cookie, ids: ids as string[], setCookie: setCookie as string[], setCookieHttps: setCookieHttps as string[], addHeaders };
}

function doneFromWire(m: unknown): DoneReport {
  if (!isWireMap(m)) throw new ProtocolError(`Cannot decode DONE frame: report is a ${describe(m)}, not a map`);
  const { id, outcome, status, bytes_in: bytesIn, bytes_out: bytesOut, duration_us: durationUs, reusable } = m;
  if (typeof id !== "string") throw new ProtocolError("Cannot decode DONE frame: id must be a string");
  if (typeof outcome !== "string" || !(DONE_OUTCOMES as readonly string[]).includes(outcome)) {
    throw new ProtocolError(`Cannot decode DONE frame: unknown outcome ${JSON.stringify(outcome)}`);
  }
  if (!isCount(status) || status > 999) throw new ProtocolError("Cannot decode DONE frame: status must be an integer 0-999");
  if (!isCount(bytesIn) || !isCount(bytesOut) || !isCount(durationUs)) {
    throw new ProtocolError("Cannot decode DONE frame: bytes_in, bytes_out and duration_us must be non-negative integers");
  }
  if (typeof reusable !== "boolean") throw new ProtocolError("Cannot decode DONE frame: reusable must be a boolean");
  return { id, outcome: outcome as DoneOutcome, status, bytesIn, bytesOut, durationUs, reusable };
}

function describe(v: unknown): string {
  if (v === null) return "nil";
  if (Array.isArray(v)) return "array";
  if (v instanceof Uint8Array) return "bin";
  if (typeof v === "number") return Number.isInteger(v) ? `int ${v}` : "float";
  if (typeof v === "bigint") return `int ${v}`;
  if (typeof v === "object") return "map";
  return typeof v;
}

/** Decode exactly one payload (without length prefix) into a Frame. */
export function decodePayload(payload: Uint8Array): Frame {
  let value: unknown;
  try {
    value = unpackr.unpack(payload);
  } catch (e: unknown) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new ProtocolError(`Cannot decode frame payload: ${msg.slice(0, 200)}`, { cause: e });
  }
  return frameFromWire(value);
}

/**
 * Streaming frame decoder. Feed it bytes with push() at whatever chunk
 * boundaries the socket gives, pull frames with next(). A frame whose length
 * prefix exceeds the limit fails as soon as its prefix (and, for the HEAD
 * limit, its first payload bytes) arrived, before its payload is buffered.
 * After a 101 the caller calls takeRaw() to get the bytes already buffered
 * past the last frame and stops using the decoder.
 */
export class FrameDecoder {
  #chunks: Buffer[] = [];
  #buffered = 0;
  #raw = false;

  /** Bytes received and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  push(chunk: Uint8Array): void {
    if (this.#raw) throw new Error("Cannot push to frame decoder: it was switched to raw mode");
    if (chunk.length === 0) return;
    this.#chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#buffered += chunk.length;
  }

  /** The next complete frame, or undefined when more bytes are needed. Throws ProtocolError. */
  next(): Frame | undefined {
    if (this.#raw) throw new Error("Cannot decode frame: the decoder was switched to raw mode");
    if (this.#buffered < LENGTH_PREFIX_SIZE) return undefined;
    const head = this.#peek(Math.min(this.#buffered, LENGTH_PREFIX_SIZE + 6));
    const length = head.readUInt32BE(0);
    if (length === 0) throw new ProtocolError("Cannot decode frame: empty payload");
    if (length > MAX_FRAME_PAYLOAD) {
      throw new ProtocolError(`Cannot decode frame: payload of ${length} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD}`);
    }
    const type = peekType(head.subarray(LENGTH_PREFIX_SIZE));
    if (type !== undefined && length > payloadLimitFor(type)) {
      throw new ProtocolError(`Cannot decode frame of type ${type}: payload of ${length} bytes exceeds the limit of ${payloadLimitFor(type)}`);
    }
    if (this.#buffered < LENGTH_PREFIX_SIZE + length) return undefined;
    const frame = this.#take(LENGTH_PREFIX_SIZE + length);
    return decodePayload(frame.subarray(LENGTH_PREFIX_SIZE));
  }

  /** At end of stream: throws ProtocolError if a partial frame is left. */
  finish(): void {
    if (!this.#raw && this.#buffered > 0) {
      throw new ProtocolError(`Cannot decode frame: stream ended inside a frame (${this.#buffered} bytes left)`);
    }
  }

  /** Switch to raw mode (after a 101): returns the bytes buffered past the last frame. */
  takeRaw(): Buffer {
    this.#raw = true;
    const rest = Buffer.concat(this.#chunks, this.#buffered);
    this.#chunks = [];
    this.#buffered = 0;
    return rest;
  }

  /** The first n buffered bytes (n ≤ buffered), merging leading chunks if needed. */
  #peek(n: number): Buffer {
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) return first;
    let merged = 0;
    let count = 0;
    while (merged < n) {
      const c = this.#chunks[count];
      if (c === undefined) break;
      merged += c.length;
      count++;
    }
    const joined = Buffer.concat(this.#chunks.slice(0, count), merged);
    this.#chunks.splice(0, count, joined);
    return joined;
  }

  /** Remove and return the first n buffered bytes (n ≤ buffered). */
  #take(n: number): Buffer {
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) {
      this.#buffered -= n;
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const c = this.#chunks.shift();
      if (c === undefined) break;
      const want = n - got;
      if (c.length > want) {
        parts.push(c.subarray(0, want));
        this.#chunks.unshift(c.subarray(want));
        got += want;
      } else {
        parts.push(c);
        got += c.length;
      }
    }
    this.#buffered -= got;
    return Buffer.concat(parts, got);
  }
}

/** The frame type from the first payload bytes, if they are an array header followed by a positive fixint. */
function peekType(p: Buffer): number | undefined {
  const b0 = p[0];
  if (b0 === undefined) return undefined;
  let at: number;
  if (b0 >= 0x90 && b0 <= 0x9f) at = 1;
  else if (b0 === 0xdc) at = 3;
  else if (b0 === 0xdd) at = 5;
  else return undefined;
  const t = p[at];
  return t !== undefined && t < 0x80 ? t : undefined;
}
