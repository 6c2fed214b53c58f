/**
 * staticRelativePath(): which file under the static files dir a request URI
 * names, and every way of climbing out of the dir (or into a dotfile) being
 * refused, so such a request goes to the app unchanged.
 */
import test from "ava";
import { hasDotSegment, pageCacheRelativePath, staticCandidates, staticRelativePath } from "../../../core/src/loader/static-path.js";

const NAMES: ReadonlyArray<readonly [string, string]> = [
  ["/site.css", "site.css"],
  ["/css/site.css", "css/site.css"],
  ["/css/site.css?v=3", "css/site.css"],
  ["/css/site.css?../../etc/passwd", "css/site.css"],
  ["/my%20file.txt", "my file.txt"],
  ["/caf%C3%A9.txt", "café.txt"],
  ["//css///site.css", "css/site.css"],
  ["/a%2Fb.txt", "a/b.txt"],
  // Decoded once: a double-encoded dot stays a literal "%2e" name.
  ["/%252e%252e/x", "%2e%2e/x"],
  ["/a.b.c", "a.b.c"],
  ["/x..y", "x..y"],
];

for (const [uri, want] of NAMES) {
  test(`staticRelativePath() maps ${uri} to ${want}`, (t) => {
    t.is(staticRelativePath(uri), want);
  });
}

const REFUSED: ReadonlyArray<readonly [string, string]> = [
  ["/", "the dir itself"],
  ["", "an empty URI"],
  ["*", "the asterisk form"],
  ["http://example.com/site.css", "the absolute form"],
  ["/css/", "a directory (trailing slash)"],
  ["/css%2F", "a directory (encoded trailing slash)"],
  ["/../etc/passwd", "a plain .. segment"],
  ["/css/../../etc/passwd", ".. after a segment"],
  ["/%2e%2e/etc/passwd", "an encoded .. segment"],
  ["/%2E%2E%2Fetc%2Fpasswd", "an encoded .. with encoded slashes"],
  ["/css/%2e%2e%2f%2e%2e%2fetc/passwd", "encoded .. inside the path"],
  ["/./site.css", "a . segment"],
  ["/.env", "a dotfile"],
  ["/.git/config", "a dot dir"],
  ["/css/.hidden.css", "a nested dotfile"],
  ["/%2egit/config", "an encoded dot dir"],
  ["/site.css%00.txt", "an encoded NUL"],
  ["/site\0.css", "a raw NUL"],
  ["/%E0%A4%A", "a bad percent-escape"],
  ["/100%", "a lone percent sign"],
];

for (const [uri, why] of REFUSED) {
  test(`staticRelativePath() refuses ${JSON.stringify(uri)} (${why})`, (t) => {
    t.is(staticRelativePath(uri), undefined);
  });
}

test("hasDotSegment() finds a dot at the start of any segment of a resolved path", (t) => {
  t.true(hasDotSegment(".env"));
  t.true(hasDotSegment("a/.git/config"));
  t.false(hasDotSegment("css/site.css"));
  t.false(hasDotSegment("x..y/a.b"));
});

const PAGE_CACHE: ReadonlyArray<readonly [string, string | undefined]> = [
  ["/", "index.html"],
  ["/?x=1", "index.html"],
  ["/docs/", "docs/index.html"],
  ["/docs%2F", "docs/index.html"],
  ["/about", "about.html"],
  ["/blog/post-1?ref=x", "blog/post-1.html"],
  ["/about.html", "about.html.html"],
  ["/../secret", undefined],
  ["/%2e%2e/", undefined],
  ["/.git/", undefined],
  ["/a%00", undefined],
  ["*", undefined],
];

for (const [uri, want] of PAGE_CACHE) {
  test(`pageCacheRelativePath() maps ${JSON.stringify(uri)} to ${String(want)}`, (t) => {
    t.is(pageCacheRelativePath(uri), want);
  });
}

test("staticCandidates() gives staticRelativePath() and pageCacheRelativePath() of every URI above, decoded once", (t) => {
  for (const [uri] of [...NAMES, ...REFUSED, ...PAGE_CACHE]) {
    const c = staticCandidates(uri);
    const page = pageCacheRelativePath(uri);
    if (page === undefined) {
      t.is(c, undefined, uri);
      t.is(staticRelativePath(uri), undefined, uri);
      continue;
    }
    t.deepEqual(c, { file: staticRelativePath(uri), pageCache: page }, uri);
  }
});
