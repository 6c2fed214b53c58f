/**
 * A REQUEST_HEAD as the module front hands it to the request path: the head
 * validated by protocol/validate.ts and its app options translated by
 * config/app-wire.ts. A module connection serves one vhost's requests over and
 * over, so the last translation is kept per connection and reused when the
 * wire map is the same (a shallow comparison: the map's values are scalars).
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
  /** v3: the module can use passes (docs/protocol.md "Passes"). */
  readonly pass: boolean;
  /** v3: the module can route pass requests by the sticky-session cookie. */
  readonly passSticky: boolean;
}

/** The last app options a connection read, with their wire form. */
export interface AppMemo {
  readonly wire: WireMap;
  readonly env: readonly string[];
  readonly app: AppOptions;
}

function sameWire(a: WireMap, b: WireMap): boolean {
  let n = 0;
  for (const k in a) {
    if (!Object.hasOwn(a, k)) continue;
    n++;
    if (!Object.hasOwn(b, k) || a[k] !== b[k]) return false;
  }
  for (const k in b) if (Object.hasOwn(b, k)) n--;
  return n === 0;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Validate a REQUEST_HEAD map; throws ProtocolError naming the bad field.
 * With `memo` (the connection's last result) an unchanged app map is not
 * translated again; the returned memo is the one to keep.
 */
export function readModuleHead(map: WireMap, memo?: AppMemo): ModuleHead & { readonly memo: AppMemo } {
  const { head, app: wire, env, generation, version, held, pass, passSticky } = validateRequestHead(map);
  let m = memo;
  if (m === undefined || !sameWire(wire, m.wire) || !sameList(env, m.env)) {
    m = { wire, env, app: cachedAppOptions(wire, env) };
  }
  return { head, app: m.app, generation, version, held, pass, passSticky, memo: m };
}
