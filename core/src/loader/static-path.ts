/**
 * Which file under the static files dir a request URI names (static-files.ts,
 * docs/standalone.md "Static files"). Pure: no I/O.
 *
 * The path of an origin-form URI (`/…`) is percent-decoded once and its query
 * dropped. A URI that cannot name a file there is not a static file and goes
 * to the app unchanged: another form (absolute, `*`), a bad percent-escape, a
 * NUL, a segment starting with a dot (dotfiles, and `.` / `..` written plainly
 * or as `%2e`, so nothing can climb out of the dir), a path ending in `/` (a
 * directory), or the root itself. Empty segments (`//`) are skipped, as
 * nginx merges slashes. Symlinks are the I/O side's to check.
 *
 * Runs inside the app process too: no imports.
 */

/** The file a request URI names, relative to the static files dir (`css/site.css`), or undefined when it names none. */
export function staticRelativePath(uri: string): string | undefined {
  if (!uri.startsWith("/")) return undefined;
  const q = uri.indexOf("?");
  const rawPath = q < 0 ? uri : uri.slice(0, q);
  if (rawPath.endsWith("/")) return undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  // An encoded slash (%2F) is a slash once decoded, as nginx takes it.
  if (decoded.endsWith("/") || decoded.includes("\0")) return undefined;
  const segments: string[] = [];
  for (const s of decoded.split("/")) {
    if (s === "") continue;
    if (s.startsWith(".")) return undefined;
    segments.push(s);
  }
  return segments.length === 0 ? undefined : segments.join("/");
}

/** True when a path relative to the static files dir has a segment starting with a dot (checked again on the resolved path). */
export function hasDotSegment(relative: string): boolean {
  return relative.startsWith(".") || relative.includes("/.");
}
