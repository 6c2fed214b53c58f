/**
 * The HTTP decisions of a static answer: nginx's validators, conditional
 * requests in RFC 9110 order, single byte ranges (206/416, several → whole
 * file), and Content-Type by extension.
 */
import test from "ava";
import { DEFAULT_CONTENT_TYPE, contentTypeOf } from "../../../core/src/loader/mime-types.js";
import { conditionalStatus, etagOf, lastModifiedOf, rangeOf, type ConditionalHeaders, type FileVersion } from "../../../core/src/loader/static-http.js";

// 2026-01-02T03:04:05.678Z, 1000 bytes.
const F: FileVersion = { size: 1000, mtimeMs: Date.UTC(2026, 0, 2, 3, 4, 5, 678) };
const ETAG = etagOf(F);
const LAST = lastModifiedOf(F);

test("etagOf() is nginx's strong tag of mtime seconds and size in hex", (t) => {
  t.is(ETAG, `"${Math.floor(F.mtimeMs / 1000).toString(16)}-3e8"`);
  t.is(etagOf({ ...F, size: 1001 }) === ETAG, false);
});

test("lastModifiedOf() is an HTTP date in whole seconds", (t) => {
  t.is(LAST, "Fri, 02 Jan 2026 03:04:05 GMT");
});

const CONDITIONAL: ReadonlyArray<readonly [string, ConditionalHeaders, 304 | 412 | undefined]> = [
  ["no conditional header", {}, undefined],
  ["If-None-Match with the tag", { "if-none-match": ETAG }, 304],
  ["If-None-Match with the weak form of the tag", { "if-none-match": `W/${ETAG}` }, 304],
  ["If-None-Match listing the tag among others", { "if-none-match": `"x", ${ETAG}` }, 304],
  ["If-None-Match: *", { "if-none-match": "*" }, 304],
  ["If-None-Match with another tag", { "if-none-match": '"other"' }, undefined],
  ["If-None-Match with another tag wins over a matching If-Modified-Since", { "if-none-match": '"other"', "if-modified-since": LAST }, undefined],
  ["If-Modified-Since equal to Last-Modified", { "if-modified-since": LAST }, 304],
  ["If-Modified-Since later", { "if-modified-since": "Sat, 03 Jan 2026 00:00:00 GMT" }, 304],
  ["If-Modified-Since earlier", { "if-modified-since": "Thu, 01 Jan 2026 00:00:00 GMT" }, undefined],
  ["If-Modified-Since not a date", { "if-modified-since": "yesterday-ish" }, undefined],
  ["If-Match with the tag", { "if-match": ETAG }, undefined],
  ["If-Match with another tag", { "if-match": '"other"' }, 412],
  ["If-Match with the weak form (strong comparison)", { "if-match": `W/${ETAG}` }, 412],
  ["If-Unmodified-Since earlier", { "if-unmodified-since": "Thu, 01 Jan 2026 00:00:00 GMT" }, 412],
  ["If-Unmodified-Since equal", { "if-unmodified-since": LAST }, undefined],
];

for (const [what, headers, want] of CONDITIONAL) {
  test(`conditionalStatus() with ${what} is ${String(want)}`, (t) => {
    t.is(conditionalStatus(headers, F), want);
  });
}

const RANGES: ReadonlyArray<readonly [string, ConditionalHeaders, ReturnType<typeof rangeOf>]> = [
  ["no Range", {}, { kind: "full" }],
  ["bytes=0-99", { range: "bytes=0-99" }, { kind: "partial", start: 0, end: 99 }],
  ["bytes=990-", { range: "bytes=990-" }, { kind: "partial", start: 990, end: 999 }],
  ["bytes=-10", { range: "bytes=-10" }, { kind: "partial", start: 990, end: 999 }],
  ["bytes=-5000 (more than the file)", { range: "bytes=-5000" }, { kind: "partial", start: 0, end: 999 }],
  ["bytes=500-5000 (end past the file)", { range: "bytes=500-5000" }, { kind: "partial", start: 500, end: 999 }],
  ["bytes=999-999", { range: "bytes=999-999" }, { kind: "partial", start: 999, end: 999 }],
  ["bytes=1000- (starts at the end)", { range: "bytes=1000-" }, { kind: "unsatisfiable" }],
  ["bytes=4000-5000", { range: "bytes=4000-5000" }, { kind: "unsatisfiable" }],
  ["bytes=-0", { range: "bytes=-0" }, { kind: "unsatisfiable" }],
  ["bytes=9-3 (invalid: ignored)", { range: "bytes=9-3" }, { kind: "full" }],
  ["several ranges", { range: "bytes=0-1,5-6" }, { kind: "full" }],
  ["another unit", { range: "items=0-1" }, { kind: "full" }],
  ["garbage", { range: "bytes=abc" }, { kind: "full" }],
  ["bytes=-", { range: "bytes=-" }, { kind: "full" }],
  ["If-Range with the tag", { range: "bytes=0-9", "if-range": ETAG }, { kind: "partial", start: 0, end: 9 }],
  ["If-Range with another tag", { range: "bytes=0-9", "if-range": '"other"' }, { kind: "full" }],
  ["If-Range with a weak tag", { range: "bytes=0-9", "if-range": `W/${ETAG}` }, { kind: "full" }],
  ["If-Range with the Last-Modified date", { range: "bytes=0-9", "if-range": LAST }, { kind: "partial", start: 0, end: 9 }],
  ["If-Range with another date", { range: "bytes=0-9", "if-range": "Thu, 01 Jan 2026 00:00:00 GMT" }, { kind: "full" }],
];

for (const [what, headers, want] of RANGES) {
  test(`rangeOf() with ${what}`, (t) => {
    t.deepEqual(rangeOf(headers, F), want);
  });
}

test("rangeOf() sends an empty file whole", (t) => {
  t.deepEqual(rangeOf({ range: "bytes=0-" }, { size: 0, mtimeMs: F.mtimeMs }), { kind: "full" });
});

test("contentTypeOf() uses nginx's table by extension, in any case, with octet-stream otherwise", (t) => {
  t.is(contentTypeOf("css/site.css"), "text/css");
  t.is(contentTypeOf("index.HTML"), "text/html");
  t.is(contentTypeOf("app.js"), "application/javascript");
  t.is(contentTypeOf("mod.mjs"), "application/javascript");
  t.is(contentTypeOf("a/b/logo.svg"), "image/svg+xml");
  t.is(contentTypeOf("f.woff2"), "font/woff2");
  t.is(contentTypeOf("data.json"), "application/json");
  t.is(contentTypeOf("README"), DEFAULT_CONTENT_TYPE);
  t.is(contentTypeOf("archive.tar.gz"), DEFAULT_CONTENT_TYPE);
  t.is(contentTypeOf("dir.css/README"), DEFAULT_CONTENT_TYPE);
  t.is(DEFAULT_CONTENT_TYPE, "application/octet-stream");
});
