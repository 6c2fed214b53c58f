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
 * nginx merges slashes. Symlinks are the I/O side's to check. When the URI
 * names no file, Passenger's page cache may: `/about` → `about.html`, `/` and
 * `/docs/` → `index.html` in that dir (pageCacheRelativePath).
 *
 * Runs inside the app process too: no imports.
 */

/** The decoded path segments of an origin-form URI, and whether it ends in `/`; undefined when it cannot name a file. */
function pathSegments(uri: string): { segments: string[]; dir: boolean } | undefined {
  if (!uri.startsWith("/")) return undefined;
  const q = uri.indexOf("?");
  const rawPath = q < 0 ? uri : uri.slice(0, q);
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  if (decoded.includes("\0")) return undefined;
  const segments: string[] = [];
  for (const s of decoded.split("/")) {
    if (s === "") continue;
    if (s.startsWith(".")) return undefined;
    segments.push(s);
  }
  // An encoded slash (%2F) is a slash once decoded, as nginx takes it.
  return { segments, dir: rawPath.endsWith("/") || decoded.endsWith("/") };
}

/** The file a request URI names, relative to the static files dir (`css/site.css`), or undefined when it names none. */
export function staticRelativePath(uri: string): string | undefined {
  const p = pathSegments(uri);
  if (p === undefined || p.dir || p.segments.length === 0) return undefined;
  return p.segments.join("/");
}

/**
 * Passenger's page cache: the file a GET/HEAD is answered from when the URI
 * itself names no file — `<path>.html`, or `<dir>/index.html` for a URI
 * ending in `/` (the root included). Same rules as staticRelativePath.
 */
export function pageCacheRelativePath(uri: string): string | undefined {
  const p = pathSegments(uri);
  if (p === undefined) return undefined;
  return pageCacheOf(p.segments, p.dir);
}

function pageCacheOf(segments: readonly string[], dir: boolean): string {
  if (dir || segments.length === 0) return segments.length === 0 ? "index.html" : `${segments.join("/")}/index.html`;
  return `${segments.join("/")}.html`;
}

/** The files a request URI may be answered from, in the order to try them. */
export interface StaticCandidates {
  /** The file the URI names (staticRelativePath), if any. */
  readonly file: string | undefined;
  /** Its page-cache file (pageCacheRelativePath), tried when `file` is absent or not a file. */
  readonly pageCache: string;
}

/**
 * staticRelativePath() and pageCacheRelativePath() of one URI, decoded
 * once; undefined when it can name neither.
 */
export function staticCandidates(uri: string): StaticCandidates | undefined {
  const p = pathSegments(uri);
  if (p === undefined) return undefined;
  const file = p.dir || p.segments.length === 0 ? undefined : p.segments.join("/");
  return { file, pageCache: pageCacheOf(p.segments, p.dir) };
}

/** True when a path relative to the static files dir has a segment starting with a dot (checked again on the resolved path). */
export function hasDotSegment(relative: string): boolean {
  return relative.startsWith(".") || relative.includes("/.");
}
