/**
 * The loader ↔ core control channel (docs/loader.md "Readiness and shutdown
 * protocol"): JSON lines over file descriptor 3 of the app process, a Unix
 * socket pair created by the core. Pure: no I/O. The loader imports it too, so
 * it must only import node: built-ins (it runs inside the app process).
 */

/** Environment variable carrying LoaderOptions as JSON; the loader deletes it before the app runs. */
export const LOADER_OPTIONS_ENV = "FERRY_LOADER_OPTIONS";

/** The fd of the control channel in the app process. */
export const CHANNEL_FD = 3;

/** Longest line either side accepts. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

export interface LoaderOptions {
  /** The Unix socket the app's (first) server listens on. */
  readonly socketPath: string;
  /** Directory for throw-away sockets of later servers (the per-app socket dir). */
  readonly socketDir: string;
  /** Absolute path of the app's startup file. */
  readonly startupFile: string;
  readonly appRoot: string;
  /** Connection handoff is on: how to serve handed-off connections as the relay would. */
  readonly handoff?: HandoffSettings;
}

/**
 * What the relay does to a request that the loader does itself on a
 * handed-off connection (docs/standalone.md "Connection handoff").
 */
export interface HandoffSettings {
  /** `X-Powered-By` added to every response ("" = none). */
  readonly poweredBy: string;
  /** `--header-timeout`, ms: the app server's headersTimeout. */
  readonly headerTimeoutMs: number;
  /**
   * `--request-timeout`, ms (0 = none): the app server's requestTimeout (the
   * whole request must arrive, else 408), and the deadline for the response
   * head (else 504).
   */
  readonly requestTimeoutMs: number;
  /** `max_requests` (0 = none): the response of the last one closes its connection. */
  readonly maxRequests: number;
  /**
   * The relay's 502 error page for a request whose process exits while
   * handling it, as HTML and as JSON; the loader fills in ERROR_ID_MARK and
   * PID_MARK.
   */
  readonly crashPage: { readonly html: string; readonly json: string };
  /** `max_request_time`, ms (0 = none): a request running longer is cut and the process recycled. */
  readonly maxRequestTimeMs: number;
  /** The relay's 504 error page for a request cut by `max_request_time`, marks as in crashPage. */
  readonly timeoutPage: { readonly html: string; readonly json: string };
  /**
   * `ferry start --static-files-dir`, absolute: its files are answered on
   * handed-off connections without reaching the app (static-files.ts). Absent = none.
   */
  readonly staticFilesDir?: string;
}

/** The relay's message for a process that exited while handling a request (exchange/context.ts). */
export function crashMessage(pid: string | number): string {
  return `Cannot complete request: app process ${pid} exited while handling it`;
}

/** The relay's message for a request cut by PassengerMaxRequestTime / max_request_time (exchange/context.ts). */
export function maxRequestTimeMessage(pid: string | number, ms: number): string {
  return `Cannot complete request: no complete answer from app process ${pid} within ${ms} ms (PassengerMaxRequestTime)`;
}

/** Replaced by the error id in HandoffSettings.crashPage. */
export const ERROR_ID_MARK = "{{FERRY_ERROR_ID}}";
/** Replaced by the app process's pid in HandoffSettings.crashPage. */
export const PID_MARK = "{{FERRY_PID}}";

/**
 * The fd of the handoff channel in a Node app process, when the core hands
 * client connections to the app (standalone `--connection-handoff`): an IPC
 * Unix socket on which each message carries one accepted TCP socket
 * (SCM_RIGHTS). Absent otherwise.
 */
export const HANDOFF_FD = 4;

/** One request the app served on a handed-off connection: [status, duration ms, bytes sent]. */
export type DirectRequest = readonly [number, number, number];

/** An error page the loader answered on a handed-off connection (the core logs it with its id). */
export interface DirectErrorPage {
  readonly status: number;
  readonly code: string;
  readonly errorId: string;
  readonly method: string;
  readonly uri: string;
  readonly message: string;
}

/** Longest list of finished requests in one "reqs" message. */
export const MAX_REQS_PER_MESSAGE = 1000;

/** How often the loader reports its event loop ("loop" message). */
export const LOOP_REPORT_INTERVAL_MS = 250;

/**
 * One event-loop report: utilisation and delay over the interval since the
 * previous report (perf_hooks eventLoopUtilization and monitorEventLoopDelay).
 */
export interface LoopReport {
  /** Event-loop utilisation over the interval, 0..1: the share of time the loop was not idle. */
  readonly elu: number;
  /** Event-loop delay over the interval (how late timers ran), in ms: mean, 99th percentile and max. */
  readonly delayMeanMs: number;
  readonly delayP99Ms: number;
  readonly delayMaxMs: number;
  /** Length of the interval the figures cover, in ms (about LOOP_REPORT_INTERVAL_MS, longer when the loop was blocked). */
  readonly intervalMs: number;
}

/** The spawn steps, in order (SpawnError.step). */
export type SpawnStep = "prepare" | "exec" | "load" | "listen";

/** Loader → core. */
export type LoaderMessage =
  /** The loader runs; the app is about to load (step exec done). */
  | { readonly type: "started"; readonly pid: number }
  /** The app called listen() on the server Ferry binds (step load done). */
  | { readonly type: "listen-called" }
  /** The socket is listening: the core may connect (ready). */
  | { readonly type: "listening"; readonly path: string }
  /** The loader failed at a step (the process exits after this). */
  | { readonly type: "error"; readonly step: SpawnStep; readonly message: string }
  /** Periodic event-loop report (every LOOP_REPORT_INTERVAL_MS from the start). */
  | ({ readonly type: "loop" } & LoopReport)
  /**
   * Requests on handed-off connections (sent at most once per event-loop turn
   * when something changed): the requests in flight and upgraded connections
   * open now, and the requests finished since the last message.
   */
  | {
    readonly type: "reqs"; readonly inFlight: number; readonly upgraded: number; readonly connections: number;
    readonly done: readonly DirectRequest[];
    /**
     * Most requests at once since the last message: in flight together, or
     * started in the same event-loop turn (work that waited behind a busy loop).
     */
    readonly peak: number;
    /** Connections received since the process started. */
    readonly adopted: number;
    /** Received connections that have not brought their first request yet. */
    readonly fresh: number;
    /** Error pages answered since the last message. */
    readonly pages: readonly DirectErrorPage[];
  };

/** Core → loader. EOF on the channel means the same as "shutdown". */
export type CoreMessage = { readonly type: "shutdown" };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseJson(line: string): unknown {
  if (line.length > MAX_MESSAGE_BYTES) return undefined;
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}

const STEPS: readonly string[] = ["prepare", "exec", "load", "listen"];

/** Whether `v` is a finite number ≥ 0 (and ≤ max). */
function isNonNegative(v: unknown, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= max;
}

/** A finite number ≥ 0 (and ≤ max), else undefined. */
function nonNegative(v: unknown, max = Number.MAX_SAFE_INTEGER): number | undefined {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= max ? v : undefined;
}

function parseReqs(v: Record<string, unknown>): LoaderMessage | undefined {
  const inFlight = nonNegative(v["inFlight"]);
  const upgraded = nonNegative(v["upgraded"]);
  const connections = nonNegative(v["connections"] ?? 0);
  const peak = nonNegative(v["peak"] ?? inFlight);
  const adopted = nonNegative(v["adopted"] ?? 0);
  const fresh = nonNegative(v["fresh"] ?? 0);
  const done = v["done"];
  const pagesRaw = v["pages"] ?? [];
  if (inFlight === undefined || upgraded === undefined || connections === undefined || peak === undefined || adopted === undefined ||
    fresh === undefined || !Array.isArray(done) || done.length > MAX_REQS_PER_MESSAGE ||
    !Array.isArray(pagesRaw) || pagesRaw.length > MAX_REQS_PER_MESSAGE) return undefined;
  const pages: DirectErrorPage[] = [];
  for (const p of pagesRaw) {
    if (!isRecord(p)) return undefined;
    const status = nonNegative(p["status"], 999);
    const { code, errorId, method, uri, message } = p;
    if (status === undefined || typeof code !== "string" || typeof errorId !== "string" || typeof method !== "string" ||
      typeof uri !== "string" || typeof message !== "string") return undefined;
    pages.push({ status, code, errorId, method, uri, message });
  }
  // Checked in place: the parsed entries are the message's (no copy of each: a report holds a few hundred).
  for (const d of done as unknown[]) {
    if (!Array.isArray(d) || d.length !== 3 || !isNonNegative(d[0], 999) || !isNonNegative(d[1]) || !isNonNegative(d[2])) return undefined;
  }
  return { type: "reqs", inFlight, upgraded, connections, done: done as DirectRequest[], peak, adopted, fresh, pages };
}

function parseLoopReport(v: Record<string, unknown>): LoopReport | undefined {
  const elu = nonNegative(v["elu"], 1);
  const delayMeanMs = nonNegative(v["delayMeanMs"]);
  const delayP99Ms = nonNegative(v["delayP99Ms"]);
  const delayMaxMs = nonNegative(v["delayMaxMs"]);
  const intervalMs = nonNegative(v["intervalMs"]);
  if (elu === undefined || delayMeanMs === undefined || delayP99Ms === undefined || delayMaxMs === undefined || intervalMs === undefined) {
    return undefined;
  }
  return { elu, delayMeanMs, delayP99Ms, delayMaxMs, intervalMs };
}

/** Validate one line from the loader; undefined when malformed. */
export function parseLoaderMessage(line: string): LoaderMessage | undefined {
  const v = parseJson(line);
  if (!isRecord(v)) return undefined;
  switch (v["type"]) {
    case "started":
      return typeof v["pid"] === "number" && Number.isInteger(v["pid"]) ? { type: "started", pid: v["pid"] } : undefined;
    case "listen-called":
      return { type: "listen-called" };
    case "listening":
      return typeof v["path"] === "string" ? { type: "listening", path: v["path"] } : undefined;
    case "error": {
      const step = v["step"];
      const message = v["message"];
      if (typeof step !== "string" || !STEPS.includes(step) || typeof message !== "string") return undefined;
      return { type: "error", step: step as SpawnStep, message };
    }
    case "loop": {
      const r = parseLoopReport(v);
      return r === undefined ? undefined : { type: "loop", ...r };
    }
    case "reqs":
      return parseReqs(v);
    default:
      return undefined;
  }
}

/** Validate one line from the core; undefined when malformed. */
export function parseCoreMessage(line: string): CoreMessage | undefined {
  const v = parseJson(line);
  return isRecord(v) && v["type"] === "shutdown" ? { type: "shutdown" } : undefined;
}

/** Validate the loader options JSON; throws TypeError naming the bad field. */
export function parseLoaderOptions(json: string): LoaderOptions {
  const v = parseJson(json);
  if (!isRecord(v)) throw new TypeError(`Cannot read ${LOADER_OPTIONS_ENV}: not a JSON object`);
  const field = (k: string): string => {
    const x = v[k];
    if (typeof x !== "string" || x === "") throw new TypeError(`Cannot read ${LOADER_OPTIONS_ENV}: "${k}" must be a non-empty string`);
    return x;
  };
  const base = { socketPath: field("socketPath"), socketDir: field("socketDir"), startupFile: field("startupFile"), appRoot: field("appRoot") };
  const h = v["handoff"];
  if (h === undefined) return base;
  const bad = (k: string): TypeError => new TypeError(`Cannot read ${LOADER_OPTIONS_ENV}: "handoff.${k}" is missing or of the wrong type`);
  if (!isRecord(h)) throw bad("");
  const num = (k: string): number => {
    const x = nonNegative(h[k]);
    if (x === undefined) throw bad(k);
    return x;
  };
  const pageOf = (k: string): { html: string; json: string } => {
    const page = h[k];
    if (!isRecord(page) || typeof page["html"] !== "string" || typeof page["json"] !== "string") throw bad(k);
    return { html: page["html"], json: page["json"] };
  };
  if (typeof h["poweredBy"] !== "string") throw bad("poweredBy");
  const staticFilesDir = h["staticFilesDir"];
  if (staticFilesDir !== undefined && (typeof staticFilesDir !== "string" || !staticFilesDir.startsWith("/"))) throw bad("staticFilesDir");
  return {
    ...base,
    handoff: {
      poweredBy: h["poweredBy"], headerTimeoutMs: num("headerTimeoutMs"), requestTimeoutMs: num("requestTimeoutMs"),
      maxRequests: num("maxRequests"), crashPage: pageOf("crashPage"),
      maxRequestTimeMs: num("maxRequestTimeMs"), timeoutPage: pageOf("timeoutPage"),
      ...(staticFilesDir !== undefined ? { staticFilesDir } : {}),
    },
  };
}

/** Split a growing buffer into complete lines; returns the rest. */
export function splitLines(buffer: string): { readonly lines: string[]; readonly rest: string } {
  const parts = buffer.split("\n");
  const rest = parts.pop() ?? "";
  return { lines: parts.filter((l) => l.trim() !== ""), rest };
}
