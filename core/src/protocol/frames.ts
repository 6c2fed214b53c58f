/**
 * The frames of the mod_ferry ↔ core protocol (docs/protocol.md, version 3) as
 * a discriminated union, plus the limits both sides enforce. Pure types and
 * constants: no I/O, no msgpack (that is protocol/codec.ts).
 */

/**
 * Protocol version the module sends in every REQUEST_HEAD (`v`). Version 2
 * carries sequential exchanges on one connection; version 1 (one exchange per
 * connection) is still accepted (docs/protocol.md, "History").
 */
export const PROTOCOL_VERSION = 3;
/** The oldest version the core still accepts. */
export const MIN_PROTOCOL_VERSION = 1;

/** Largest payload of a HEAD frame (REQUEST_HEAD, RESPONSE_HEAD). */
export const MAX_HEAD_PAYLOAD = 1024 * 1024;
/** Largest payload of any other frame. */
export const MAX_FRAME_PAYLOAD = 4 * 1024 * 1024;
/** Size of the big-endian u32 length prefix. */
export const LENGTH_PREFIX_SIZE = 4;
/** Largest data chunk the core puts in one BODY frame (the module sends at most 64 KiB too). */
export const MAX_BODY_CHUNK = 64 * 1024;
/** The core closes a module connection that sends no complete REQUEST_HEAD within this time. */
export const HEAD_DEADLINE_MS = 30_000;
/** The core closes a v2 module connection idle this long between exchanges (the module reconnects). */
export const IDLE_DEADLINE_MS = 300_000;
/** Open module connections the core keeps at most (docs/protocol.md "Connections"). */
export const MAX_MODULE_CONNECTIONS = 4096;

/** Numeric frame types on the wire (the first array element). */
export const FrameType = {
  RequestHead: 1,
  Body: 2,
  End: 3,
  ResponseHead: 4,
  Abort: 5,
  Lease: 6,
  Proceed: 7,
  Done: 8,
} as const;
export type FrameTypeNumber = (typeof FrameType)[keyof typeof FrameType];

/** A msgpack map with string keys, as decoded; validated by protocol/validate.ts. */
export type WireMap = Readonly<Record<string, unknown>>;

/** module → core: the request head and the app options (`[1, head]`). */
export interface RequestHeadFrame {
  readonly kind: "request-head";
  readonly head: WireMap;
}

/** Both directions: a body chunk, possibly empty (`[2, data]`). */
export interface BodyFrame {
  readonly kind: "body";
  readonly data: Uint8Array;
}

/** Both directions: the body is complete (`[3]`). */
export interface EndFrame {
  readonly kind: "end";
}

/** core → module: status and flat header list (`[4, status, headers]`). */
export interface ResponseHeadFrame {
  readonly kind: "response-head";
  readonly status: number;
  /** Flat [name, value, …]; repeated names stay separate. */
  readonly headers: readonly string[];
}

/** Both directions: the exchange cannot be completed (`[5, code, message]`). */
export interface AbortFrame {
  readonly kind: "abort";
  readonly code: string;
  readonly message: string;
}

/**
 * core → module (v3): the direct path. The process chosen and, unless `reuse`,
 * a connected socket to it passed along with the frame (`[6, lease]`).
 */
export interface Lease {
  /** The process's connection id, unique across core restarts. */
  readonly id: string;
  readonly pid: number;
  /** Use the idle connection with this id that the module holds (no descriptor attached). */
  readonly reuse: boolean;
  /** The exact request head to write to the app (request line, headers, blank line). */
  readonly head: Uint8Array;
  /** Send the request body chunked (the head says Transfer-Encoding: chunked). */
  readonly chunked: boolean;
  /** Flat [name, value, …] the module adds to the app's response head. */
  readonly addHeaders: readonly string[];
  /** Milliseconds from the LEASE to the end of the response; 0 = none. */
  readonly deadline: number;
  /** A pass (docs/protocol.md "Passes"): only when the head asked for one and the core grants it. */
  readonly pass?: Pass;
}

/**
 * The header the module adds, last, to the head of a request it sends with a
 * pass (value "1"); the loader counts and removes it. Both head builders drop
 * a client-sent one, so only the module can mark a request.
 */
export const PASS_MARKER_HEADER = "X-Ferry-Pass";

/**
 * How long a pass is valid from when the module reads the LEASE (docs/protocol.md
 * "Passes"). A module renews it once half of it is gone, with one request that
 * goes through the core (a round trip of about 1 ms for that request, and
 * core CPU), so each child of a busy app sends 4 renewals a second; a change
 * in the pool (a new process, one retiring, requests queueing) reaches the
 * modules within this time.
 */
export const PASS_TTL_MS = 500;
/** The most processes a pass names (as many as a head may hold: MAX_HELD). */
export const MAX_PASS_PROCS = 16;

/**
 * A pass (LEASE `pass`): for `ttlMs`, the module may send further requests of
 * the same app straight to the processes named, over idle app connections it
 * holds, without a REQUEST_HEAD, while `restartFile`'s mtime is still
 * `restartMtimeNs`.
 */
export interface Pass {
  readonly ttlMs: number;
  /** LEASE ids of the app's ready processes the module may use; the lease's own `id` among them. */
  readonly procs: readonly string[];
  /** Sticky sessions (LEASE `pass.sticky`): how the module routes by the cookie; only for an app with them. */
  readonly sticky?: PassSticky;
  /** Absolute path of the app's restart.txt. */
  readonly restartFile: string;
  /** Its mtime in ns since the epoch as the core last saw it; -1n = absent. */
  readonly restartMtimeNs: bigint;
}

/**
 * LEASE `pass.sticky` (docs/protocol.md "Passes"): for an app with sticky
 * sessions, the cookie the module routes pass requests by and, per process
 * of `procs` (same order), its sticky id and the Set-Cookie values pinning a
 * client to it.
 */
export interface PassSticky {
  /** The cookie's name (PassengerStickySessionsCookieName). */
  readonly cookie: string;
  /** Each process's sticky id. */
  readonly ids: readonly string[];
  /** Each process's Set-Cookie value for a plain HTTP request. */
  readonly setCookie: readonly string[];
  /** The same for an HTTPS request (with Secure). */
  readonly setCookieHttps: readonly string[];
  /** Flat [name, value, …] a pass response gets instead of the LEASE's addHeaders; the chosen process's Set-Cookie follows. */
  readonly addHeaders: readonly string[];
}

export interface LeaseFrame {
  readonly kind: "lease";
  readonly lease: Lease;
}

/** core → module (v3): the relay path; the exchange goes on as a version 2 one (`[7]`). */
export interface ProceedFrame {
  readonly kind: "proceed";
}

/** How a leased exchange ended (DONE `outcome`). */
export type DoneOutcome = "ok" | "app_error" | "timeout" | "client_aborted" | "stale";
export const DONE_OUTCOMES: readonly DoneOutcome[] = ["ok", "app_error", "timeout", "client_aborted", "stale"];

/** module → core (v3): the end of a leased exchange (`[8, report]`). */
export interface DoneReport {
  readonly id: string;
  readonly outcome: DoneOutcome;
  /** The status the client got; 0 when none. */
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationUs: number;
  /** The module kept the app connection for later leases. */
  readonly reusable: boolean;
}

export interface DoneFrame {
  readonly kind: "done";
  readonly report: DoneReport;
}

export type Frame = RequestHeadFrame | BodyFrame | EndFrame | ResponseHeadFrame | AbortFrame | LeaseFrame | ProceedFrame | DoneFrame;
export type FrameKind = Frame["kind"];

/** The wire type number of a frame kind. */
export function frameTypeOf(kind: FrameKind): FrameTypeNumber {
  switch (kind) {
    case "request-head":
      return FrameType.RequestHead;
    case "body":
      return FrameType.Body;
    case "end":
      return FrameType.End;
    case "response-head":
      return FrameType.ResponseHead;
    case "abort":
      return FrameType.Abort;
    case "lease":
      return FrameType.Lease;
    case "proceed":
      return FrameType.Proceed;
    case "done":
      return FrameType.Done;
  }
}

/** The payload limit for a frame of this wire type (HEAD frames are smaller). */
export function payloadLimitFor(type: number): number {
  return type === FrameType.RequestHead || type === FrameType.ResponseHead ? MAX_HEAD_PAYLOAD : MAX_FRAME_PAYLOAD;
}
