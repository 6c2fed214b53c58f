/**
 * The one catalogue of Ferry's error codes (fastify's lib/errors.js shape).
 * Every error the core raises is a FerryError with a stable `code` and the HTTP
 * status a client sees when the error ends a request. Branch on `code`, never
 * on the message. Each code is listed in docs/errors.md.
 */

export type FerryErrorCode =
  | "FERRY_ERR_CONFIG"
  | "FERRY_ERR_PROTOCOL"
  | "FERRY_ERR_QUEUE_FULL"
  | "FERRY_ERR_QUEUE_TIMEOUT"
  | "FERRY_ERR_SPAWN"
  | "FERRY_ERR_SPAWN_TIMEOUT"
  | "FERRY_ERR_APP_CRASHED"
  | "FERRY_ERR_APP_CONNECT"
  | "FERRY_ERR_APP_RESPONSE"
  | "FERRY_ERR_APP_TIMEOUT"
  | "FERRY_ERR_POOL_SHUTDOWN"
  | "FERRY_ERR_ABORTED"
  | "FERRY_ERR_CONTROL"
  | "FERRY_ERR_INTERNAL";

export class FerryError extends Error {
  readonly code: FerryErrorCode;
  readonly httpStatus: number;
  constructor(code: FerryErrorCode, message: string, httpStatus = 500, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

/** Bad configuration: a directive, a CLI flag, a config file key. */
export class ConfigError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("FERRY_ERR_CONFIG", message, 500, options);
  }
}

/** A malformed or oversized frame from a peer; closes that connection only. */
export class ProtocolError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("FERRY_ERR_PROTOCOL", message, 400, options);
  }
}

/** The group's request queue is full (PassengerMaxRequestQueueSize). */
export class QueueFullError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("FERRY_ERR_QUEUE_FULL", message, 503, options);
  }
}

/** A request waited in the group's queue longer than PassengerMaxRequestQueueTime. */
export class QueueTimeoutError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("FERRY_ERR_QUEUE_TIMEOUT", message, 504, options);
  }
}

/** The app could not be started; carries the app's captured output. */
export class SpawnError extends FerryError {
  readonly output: string;
  readonly step: string;
  constructor(message: string, details: { output?: string; step?: string; timeout?: boolean }, options?: ErrorOptions) {
    super(details.timeout === true ? "FERRY_ERR_SPAWN_TIMEOUT" : "FERRY_ERR_SPAWN", message, 500, options);
    this.output = details.output ?? "";
    this.step = details.step ?? "";
  }
}

/** The app process died while it had this request. */
export class AppCrashedError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("FERRY_ERR_APP_CRASHED", message, 502, options);
  }
}

/** Connecting to the app's socket failed. */
export class AppConnectError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("FERRY_ERR_APP_CONNECT", message, 502, options);
  }
}

/** The app sent an invalid or incomplete response. */
export class AppResponseError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("FERRY_ERR_APP_RESPONSE", message, 502, options);
  }
}

/** The app did not answer in time (PassengerMaxRequestTime / read timeout). */
export class AppTimeoutError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("FERRY_ERR_APP_TIMEOUT", message, 504, options);
  }
}

/** The pool is shutting down and takes no new requests. */
export class PoolShutdownError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("FERRY_ERR_POOL_SHUTDOWN", message, 503, options);
  }
}

/** The client went away or the wait was aborted. */
export class AbortedError extends FerryError {
  constructor(message: string, options?: ErrorOptions) {
    super("FERRY_ERR_ABORTED", message, 499, options);
  }
}

/** Narrow an unknown thrown value to a FerryError, wrapping anything else as internal. */
export function toFerryError(e: unknown): FerryError {
  if (e instanceof FerryError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new FerryError("FERRY_ERR_INTERNAL", `Internal error: ${msg}`, 500, { cause: e });
}
