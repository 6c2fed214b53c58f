/**
 * Understand the arguments of `net.Server#listen()` in every form Node accepts
 * (port, host, backlog, path, options object, handle, callback) — pure, so the
 * reverse port binding can decide what to do with them.
 */

export type ListenTarget =
  /** `listen('passenger')` / `listen('/passenger')`: Passenger's explicit opt-in. */
  | { readonly kind: "passenger" }
  /** A TCP port (possibly 0 or absent) and optional host. */
  | { readonly kind: "port"; readonly port: number | undefined; readonly host: string | undefined }
  /** A Unix socket path / Windows pipe name the app chose. */
  | { readonly kind: "path"; readonly path: string }
  /** A handle or fd the app already holds (systemd sockets …). */
  | { readonly kind: "handle" };

export interface ParsedListen {
  readonly target: ListenTarget;
  readonly backlog: number | undefined;
  readonly callback: ((...a: unknown[]) => void) | undefined;
}

const PASSENGER_NAMES: readonly string[] = ["passenger", "/passenger"];

function isPortLike(v: unknown): boolean {
  return typeof v === "number" || (typeof v === "string" && /^\s*[0-9]+\s*$/.test(v));
}

function toPort(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && isPortLike(v)) return Number(v);
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parse listen()'s arguments the way net.Server normalizes them. */
export function parseListenArgs(args: readonly unknown[]): ParsedListen {
  const last = args[args.length - 1];
  const callback = typeof last === "function" ? (last as (...a: unknown[]) => void) : undefined;
  const rest = callback === undefined ? args : args.slice(0, -1);
  const first = rest[0];

  if (isRecord(first)) {
    const backlog = typeof first["backlog"] === "number" ? first["backlog"] : (typeof rest[1] === "number" ? rest[1] : undefined);
    if (typeof first["path"] === "string") {
      const p = first["path"];
      return { target: PASSENGER_NAMES.includes(p) ? { kind: "passenger" } : { kind: "path", path: p }, backlog, callback };
    }
    if (first["port"] !== undefined || first["host"] !== undefined) {
      const host = typeof first["host"] === "string" ? first["host"] : undefined;
      return { target: { kind: "port", port: toPort(first["port"]), host }, backlog, callback };
    }
    if (first["fd"] !== undefined || first["handle"] !== undefined || "_handle" in first) {
      return { target: { kind: "handle" }, backlog, callback };
    }
    // An options object with neither: Node listens on a random port.
    return { target: { kind: "port", port: undefined, host: undefined }, backlog, callback };
  }
  if (typeof first === "string" && !isPortLike(first)) {
    const backlog = typeof rest[1] === "number" ? rest[1] : undefined;
    return { target: PASSENGER_NAMES.includes(first) ? { kind: "passenger" } : { kind: "path", path: first }, backlog, callback };
  }
  // listen(), listen(port), listen(port, host), listen(port, backlog), listen(port, host, backlog)
  const port = toPort(first);
  const host = typeof rest[1] === "string" ? rest[1] : undefined;
  const backlogArg = host === undefined ? rest[1] : rest[2];
  const backlog = typeof backlogArg === "number" ? backlogArg : undefined;
  return { target: { kind: "port", port, host }, backlog, callback };
}
