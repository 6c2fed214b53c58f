/**
 * Pure queue admission: what happens to a request the router could not place
 * at once. Bounded per-group wait list (PassengerMaxRequestQueueSize, 0 =
 * unbounded); while a failed spawn is backing off and the group has nothing
 * that could serve, the recorded spawn error is returned at once.
 */
import type { RouteDecision } from "./routing.js";

export interface AdmissionInput {
  readonly route: RouteDecision;
  /** Requests already waiting in the group's queue. */
  readonly queueLength: number;
  /** PassengerMaxRequestQueueSize; 0 = unbounded. */
  readonly maxQueueSize: number;
  /**
   * The group has no accepting process, nothing is spawning and the last
   * spawn failed less than its backoff ago: nothing will serve a waiter soon.
   */
  readonly spawnBlocked: boolean;
}

export type Admission =
  | { readonly kind: "dispatch"; readonly id: number }
  | { readonly kind: "enqueue" }
  | { readonly kind: "reject"; readonly reason: "queue_full" | "spawn_failed" };

export function admit(input: AdmissionInput): Admission {
  if (input.route.kind === "process") return { kind: "dispatch", id: input.route.id };
  if (input.route.reason === "no_process" && input.spawnBlocked) return { kind: "reject", reason: "spawn_failed" };
  if (input.maxQueueSize > 0 && input.queueLength >= input.maxQueueSize) return { kind: "reject", reason: "queue_full" };
  return { kind: "enqueue" };
}
