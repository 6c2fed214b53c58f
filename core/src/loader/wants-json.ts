/**
 * Whether a request asks for a JSON error body rather than HTML (Passenger
 * looks at the request's content type): one rule for the core's error pages
 * (exchange/error-page.ts) and the loader's on handed-off connections
 * (handoff-adopter.ts). Pure; runs inside app processes too, so it imports nothing.
 */

function headerValue(headers: readonly string[], name: string): string {
  const lower = name.toLowerCase();
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]?.toLowerCase() === lower) return headers[i + 1] ?? "";
  }
  return "";
}

/** `headers` is a flat [name, value, …] list (a Node IncomingMessage's rawHeaders is one). */
export function wantsJson(headers: readonly string[]): boolean {
  const ct = headerValue(headers, "content-type").toLowerCase();
  const accept = headerValue(headers, "accept").toLowerCase();
  if (ct.includes("json")) return true;
  if (accept === "" || accept.includes("text/html")) return false;
  return accept.includes("json");
}
