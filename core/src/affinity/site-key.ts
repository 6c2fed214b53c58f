/**
 * The key shared affinity pins a session under (docs/affinity.md): something
 * every host serving one site shares, whatever directory the app lives in on
 * each host (a deploy tool's release directory, per-host home directories).
 * PassengerAppGroupName when set explicitly; otherwise the virtual host and
 * base URI, with the app environment. Pure: no I/O.
 */
import { defaultAppGroupName, type AppOptions } from "../config/schema.js";
import type { ClusterKeyMismatch } from "../control/status.js";

/** What the key is made of: the app's options and the request's virtual host. */
export interface SiteKeyInput {
  readonly app: Pick<AppOptions, "appGroupName" | "appRoot" | "appEnv" | "baseURI">;
  readonly serverName: string;
}

/** The site a request belongs to: virtual host and base URI (lower-case host). */
export function siteOf(input: SiteKeyInput): string {
  return `${input.serverName.toLowerCase()}${input.app.baseURI === "" ? "/" : input.app.baseURI}`;
}

/** The pin key: `group:<PassengerAppGroupName>` when set, else `site:<vhost><base URI> (<env>)`. */
export function affinityKey(input: SiteKeyInput): string {
  const { app } = input;
  if (app.appGroupName !== defaultAppGroupName(app.appRoot, app.appEnv)) return `group:${app.appGroupName}`;
  return `site:${siteOf(input)} (${app.appEnv})`;
}

/** From each node's key → site map: the sites served under more than one key. */
export function keyMismatches(nodes: ReadonlyArray<{ readonly name: string; readonly sites: Readonly<Record<string, string>> }>): ClusterKeyMismatch[] {
  const bySite = new Map<string, Array<{ node: string; key: string }>>();
  for (const n of nodes) {
    for (const [key, site] of Object.entries(n.sites)) {
      const list = bySite.get(site) ?? [];
      list.push({ node: n.name, key });
      bySite.set(site, list);
    }
  }
  const out: ClusterKeyMismatch[] = [];
  for (const [site, keys] of [...bySite].sort(([a], [b]) => a.localeCompare(b))) {
    if (new Set(keys.map((k) => k.key)).size > 1) out.push({ site, keys: keys.sort((a, b) => a.node.localeCompare(b.node) || a.key.localeCompare(b.key)) });
  }
  return out;
}
