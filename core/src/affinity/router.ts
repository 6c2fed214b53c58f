/**
 * Pure cross-host affinity decision (Passenger's Group::route shape: a value,
 * no I/O, no clock): given the request's sticky id, what this core has
 * locally, the store's answer and the live nodes, serve locally, forward to
 * the owning peer, or re-pin locally (the client gets a new cookie).
 */
import type { NodeRecord, PinOwner } from "./store.js";

/** The store's answer for the sticky id. */
export type OwnerLookup =
  | { readonly kind: "owner"; readonly owner: PinOwner }
  /** Not pinned (never, or the pin expired). */
  | { readonly kind: "none" }
  /** The store is down or slow: local-only affinity. */
  | { readonly kind: "unavailable" }
  /** Not asked (the sticky id is served locally). */
  | { readonly kind: "skipped" };

export interface RouteInput {
  /** The sticky id from the cookie; undefined = no (valid) cookie. */
  readonly stickyId: string | undefined;
  /** This core's node name. */
  readonly self: string;
  /** Sticky ids of this core's live processes of the app. */
  readonly localStickyIds: ReadonlySet<string>;
  readonly lookup: OwnerLookup;
  /** The owner's node record when it is registered (alive), else undefined. */
  readonly ownerNode: NodeRecord | undefined;
}

export type AffinityRoute =
  | { readonly kind: "local"; readonly reason: "no-cookie" | "local-process" | "store-unavailable" }
  | { readonly kind: "forward"; readonly node: string; readonly peer: string; readonly tls: boolean }
  | { readonly kind: "repin"; readonly reason: "unpinned" | "process-gone" | "node-gone" | "node-unreachable" };

/** Whether the store must be asked at all (the answer does not matter otherwise). */
export function needsLookup(stickyId: string | undefined, localStickyIds: ReadonlySet<string>): boolean {
  return stickyId !== undefined && !localStickyIds.has(stickyId);
}

export function routeAffinity(i: RouteInput): AffinityRoute {
  if (i.stickyId === undefined) return { kind: "local", reason: "no-cookie" };
  if (i.localStickyIds.has(i.stickyId)) return { kind: "local", reason: "local-process" };
  switch (i.lookup.kind) {
    case "unavailable":
    case "skipped":
      return { kind: "local", reason: "store-unavailable" };
    case "none":
      return { kind: "repin", reason: "unpinned" };
    case "owner": {
      const owner = i.lookup.owner;
      // Pinned here but no such process any more: it died or was retired.
      if (owner.node === i.self) return { kind: "repin", reason: "process-gone" };
      if (i.ownerNode === undefined || i.ownerNode.name !== owner.node) return { kind: "repin", reason: "node-gone" };
      if (i.ownerNode.peer === "") return { kind: "repin", reason: "node-unreachable" };
      return { kind: "forward", node: owner.node, peer: i.ownerNode.peer, tls: i.ownerNode.tls };
    }
  }
}
