/**
 * Pure routing: which process of a group gets the next request (Passenger's
 * `Group::route()`). Sticky process first, else the least busy accepting
 * process; a decision to wait when nothing can take the request now.
 */

/** What routing needs to know about one live process of a group. */
export interface RoutableProcess {
  /** The pool's handle for the process (its pid). */
  readonly id: number;
  readonly stickyId: string;
  /** Requests in flight now (upgraded connections excluded). */
  readonly inFlight: number;
  /** Ready and not retiring: may take new requests. */
  readonly accepting: boolean;
}

export interface RouteInput {
  /** Live processes in spawn order (oldest first). */
  readonly processes: readonly RoutableProcess[];
  /** PassengerForceMaxConcurrentRequestsPerProcess; 0 = unlimited. */
  readonly maxConcurrency: number;
  /** Sticky id from the request's cookie, when sticky sessions are on. */
  readonly stickyId?: string | undefined;
}

export type WaitReason =
  /** The pinned process lives but is at its concurrency limit: wait for it (as Passenger). */
  | "sticky_busy"
  /** Every accepting process is at its concurrency limit. */
  | "all_busy"
  /** The group has no accepting process (first spawn, all crashed, all retiring). */
  | "no_process";

export type RouteDecision =
  | { readonly kind: "process"; readonly id: number; readonly sticky: boolean }
  | { readonly kind: "wait"; readonly reason: WaitReason };

/** A process at its limit takes no more requests now. */
export function isAtLimit(p: RoutableProcess, maxConcurrency: number): boolean {
  return maxConcurrency > 0 && p.inFlight >= maxConcurrency;
}

/**
 * Choose a process for a request. Ties on in-flight count go to the oldest
 * process, so extra processes fall idle (and are retired) when load drops.
 */
export function route(input: RouteInput): RouteDecision {
  const accepting = input.processes.filter((p) => p.accepting);
  if (input.stickyId !== undefined && input.stickyId !== "") {
    const pinned = accepting.find((p) => p.stickyId === input.stickyId);
    if (pinned !== undefined) {
      return isAtLimit(pinned, input.maxConcurrency)
        ? { kind: "wait", reason: "sticky_busy" }
        : { kind: "process", id: pinned.id, sticky: true };
    }
  }
  let best: RoutableProcess | undefined;
  for (const p of accepting) {
    if (best === undefined || p.inFlight < best.inFlight) best = p;
  }
  if (best === undefined) return { kind: "wait", reason: "no_process" };
  if (isAtLimit(best, input.maxConcurrency)) return { kind: "wait", reason: "all_busy" };
  return { kind: "process", id: best.id, sticky: false };
}
