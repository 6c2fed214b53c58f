/**
 * Pure sticky-session cookie handling (Passenger §5): read the process id from
 * the request's Cookie header, build the Set-Cookie value, pick a new id.
 */

/** The largest sticky id (ids are non-zero unsigned 32-bit integers, as Passenger's). */
export const MAX_STICKY_ID = 4_294_967_295;

/** A valid sticky id: decimal, non-zero, ≤ MAX_STICKY_ID, no leading zeros. */
export function isStickyId(value: string): boolean {
  return /^[1-9][0-9]{0,9}$/.test(value) && Number(value) <= MAX_STICKY_ID;
}

/**
 * The sticky id in the Cookie header(s) under `name`, or undefined when absent
 * or not a valid id. The first cookie with that name wins.
 */
export function parseStickyCookie(cookie: string | readonly string[] | undefined, name: string): string | undefined {
  if (cookie === undefined || name === "") return undefined;
  const headers = typeof cookie === "string" ? [cookie] : cookie;
  for (const header of headers) {
    for (const part of header.split(";")) {
      const eq = part.indexOf("=");
      if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return isStickyId(value) ? value : undefined;
    }
  }
  return undefined;
}

export interface StickyCookieOptions {
  readonly name: string;
  /** PassengerBaseURI of the app; "" or "/" for the root. */
  readonly baseURI: string;
  /** PassengerStickySessionsCookieAttributes, e.g. "SameSite=Lax". */
  readonly attributes: string;
  /** The request came over HTTPS: add `Secure`. */
  readonly https: boolean;
}

/** The Set-Cookie header value pinning a client to the process with `stickyId`. */
export function stickyCookieValue(stickyId: string, opts: StickyCookieOptions): string {
  const path = opts.baseURI === "" ? "/" : opts.baseURI;
  const attrs = opts.attributes
    .split(";")
    .map((a) => a.trim())
    .filter((a) => a !== "");
  if (opts.https && !attrs.some((a) => /^secure$/i.test(a))) attrs.push("Secure");
  // An explicit Path= in the configured attributes replaces the base URI.
  const pathAttr = attrs.some((a) => /^path\s*=/i.test(a)) ? [] : [`Path=${path}`];
  return [`${opts.name}=${stickyId}`, ...pathAttr, ...attrs].join("; ");
}

/**
 * A new sticky id not in `taken`. `random` returns a uniformly random integer
 * in [1, MAX_STICKY_ID] (crypto.randomInt in the pool, a fake in tests).
 */
export function newStickyId(taken: ReadonlySet<string>, random: () => number): string {
  for (let i = 0; i < 1000; i++) {
    const n = Math.floor(random());
    const id = String(n);
    if (n >= 1 && n <= MAX_STICKY_ID && !taken.has(id)) return id;
  }
  // Astronomically unlikely with a real random source: fall back to a linear probe.
  for (let n = 1; n <= MAX_STICKY_ID; n++) {
    if (!taken.has(String(n))) return String(n);
  }
  throw new RangeError("Cannot pick a sticky id: every id is taken");
}
