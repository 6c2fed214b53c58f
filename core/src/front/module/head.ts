/**
 * A REQUEST_HEAD as the module front hands it to the request path: the head
 * validated by protocol/validate.ts and its app options translated by
 * config/app-wire.ts (memoised: every request of a vhost carries the same map).
 */
import { cachedAppOptions } from "../../config/app-wire.js";
import type { AppOptions } from "../../config/schema.js";
import type { WireMap } from "../../protocol/frames.js";
import type { RequestHead } from "../../protocol/request-head.js";
import { validateRequestHead } from "../../protocol/validate.js";

export interface ModuleHead {
  readonly head: RequestHead;
  readonly app: AppOptions;
  /** The module's configuration generation (`gen`). */
  readonly generation: number;
  /** 2 lets the connection carry further exchanges, 3 takes leases. */
  readonly version: number;
  /** v3: ids of the idle app connections the module holds for this app. */
  readonly held: readonly string[];
}

/** Validate a REQUEST_HEAD map; throws ProtocolError naming the bad field. */
export function readModuleHead(map: WireMap): ModuleHead {
  const { head, app, env, generation, version, held } = validateRequestHead(map);
  return { head, app: cachedAppOptions(app, env), generation, version, held };
}
