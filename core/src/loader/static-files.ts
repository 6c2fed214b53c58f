/**
 * `ferry start` serves the app's static files (`--static-files-dir`, default
 * `<app>/public`) for GET and HEAD without reaching the app, as Passenger
 * Standalone's nginx does (docs/standalone.md "Static files"). One
 * implementation for both of ferry start's paths: the relay front server
 * (front/http/front-server.ts) and, on handed-off connections, the loader
 * inside the app process (handoff-adopter.ts), so a file gets the same
 * answer, headers and validators whichever path carried the request.
 *
 * A request is taken only when its URI names a regular file under the dir
 * (static-path.ts), or Passenger's page-cache file for it (`/about` →
 * `about.html`, `/docs/` → `docs/index.html`), whose real path (symlinks resolved) is still inside it
 * and has no dot segment; everything else goes to the app unchanged. The
 * decision is synchronous (stat, realpath, open: a few µs on a local disk,
 * as nginx decides), so a request that is not a file reaches the app with
 * no extra event-loop turn, and a path found to be no file is remembered
 * for a second, so requests for the app pay no stat per request (the page
 * cache makes even `/` a candidate); the body is streamed from the open
 * descriptor with backpressure, a chunk at a time, never read whole (streamFile).
 *
 * Runs inside the app process too: node: built-ins and this folder only.
 */
import fs from "node:fs";
import type http from "node:http";
import { contentTypeOf } from "./mime-types.js";
import { conditionalStatus, etagOf, lastModifiedOf, rangeOf } from "./static-http.js";
import { hasDotSegment, staticCandidates } from "./static-path.js";

/** Read size of a streamed file (what Node's fs streams use): the memory a response holds beyond its socket's buffer. */
const READ_CHUNK = 64 * 1024;

/**
 * How long the static dir's resolved real path, its presence, and a path
 * found to be no regular file are used before they are looked at again (ms).
 */
const ROOT_RECHECK_MS = 1_000;

/** Most paths remembered as no regular file (past it the memory starts afresh). */
const MAX_MISSING = 1_024;

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

export interface StaticFilesOptions {
  /** Absolute path of the static files dir (it may be a symlink, and may not exist yet). */
  readonly root: string;
  /** `X-Powered-By` on every answer, as the app's answers get it ("" = none). */
  readonly poweredBy: string;
  /** Monotonic clock in ms (default performance.now; tests pass their own). */
  readonly now?: () => number;
}

/** An open regular file under the root, ready to answer. */
interface OpenFile {
  readonly fd: number;
  /** Its real path. */
  readonly path: string;
  /** The path the URI named, relative to the root (its extension gives the Content-Type, as in nginx). */
  readonly relative: string;
  readonly stat: fs.Stats;
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Already closed; nothing to release.
  }
}

/**
 * Write bytes start..end of `fd` to `res` and end it, READ_CHUNK at a time:
 * each chunk is read synchronously (from the page cache, as nginx reads
 * without aio: no thread-pool round trip per chunk) and the next one only
 * once `res` drained, so a response holds at most a chunk beyond the
 * socket's buffer. The fd is closed when the response closes; a read error
 * or a file that shrank cuts the connection (the length is promised).
 */
function streamFile(res: http.ServerResponse, fd: number, start: number, end: number): Promise<void> {
  return new Promise((resolve) => {
    let pos = start;
    res.once("close", () => {
      closeQuietly(fd);
      resolve();
    });
    const pump = (): void => {
      try {
        while (pos <= end) {
          const want = Math.min(READ_CHUNK, end - pos + 1);
          const chunk = Buffer.allocUnsafe(want);
          const got = fs.readSync(fd, chunk, 0, want, pos);
          if (got === 0) {
            res.destroy();
            return;
          }
          pos += got;
          const data = got < want ? chunk.subarray(0, got) : chunk;
          if (pos > end) {
            res.end(data);
            return;
          }
          if (!res.write(data)) {
            res.once("drain", pump);
            return;
          }
        }
      } catch {
        res.destroy();
      }
    };
    pump();
  });
}

/** Whether `key` was remembered in `memory` less than ROOT_RECHECK_MS before `now` (an older entry is dropped). */
function knownMissing(memory: Map<string, number>, key: string, now: number): boolean {
  const at = memory.get(key);
  if (at === undefined) return false;
  if (now - at < ROOT_RECHECK_MS) return true;
  memory.delete(key);
  return false;
}

/** Remember `key` as of `at` in `memory`, which starts afresh when it holds MAX_MISSING entries. */
function remember(memory: Map<string, number>, key: string, at: number): void {
  if (memory.size >= MAX_MISSING) memory.clear();
  memory.set(key, at);
}

export class StaticFiles {
  readonly #root: string;
  readonly #poweredBy: string;
  readonly #now: () => number;
  #resolved: string | undefined;
  #resolvedAt = 0;
  #present = false;
  #presentAt = -Infinity;
  /**
   * Paths under the root found to be no regular file, and when: most
   * requests of an app name no file (and `/` names a page-cache file that
   * few apps have), so a stat per request is paid at most once a second per path.
   */
  readonly #missing = new Map<string, number>();
  /**
   * Request URIs all of whose candidates (the file, its page-cache file) are
   * in #missing, with the oldest of those times: a URI asked for again within
   * that second is the app's without being decoded again (Map lookup only).
   */
  readonly #missingUris = new Map<string, number>();

  constructor(opts: StaticFilesOptions) {
    this.#root = opts.root.length > 1 && opts.root.endsWith("/") ? opts.root.slice(0, -1) : opts.root;
    this.#poweredBy = opts.poweredBy;
    this.#now = opts.now ?? (() => performance.now());
  }

  get root(): string {
    return this.#root;
  }

  /**
   * Whether the dir exists, looked at again at most every ROOT_RECHECK_MS:
   * an app without one (many Node apps have no public/) pays no stat per
   * request, and a dir created later is served within that time.
   */
  #rootPresent(now: number): boolean {
    if (now - this.#presentAt >= ROOT_RECHECK_MS) {
      try {
        this.#present = fs.statSync(this.#root, { throwIfNoEntry: false })?.isDirectory() === true;
      } catch {
        this.#present = false;
      }
      this.#presentAt = now;
    }
    return this.#present;
  }

  /**
   * The dir's real path, resolved again at most every ROOT_RECHECK_MS: a
   * deploy that switches a symlink on the way (`current -> releases/N`) is
   * followed within that time, and a request does not pay a second realpath.
   */
  #realRoot(now: number): string {
    if (this.#resolved === undefined || now - this.#resolvedAt >= ROOT_RECHECK_MS) {
      this.#resolved = fs.realpathSync.native(this.#root);
      this.#resolvedAt = now;
    }
    return this.#resolved;
  }

  /**
   * Answer the request when it names a static file: returns a promise that
   * settles once the answer is done (or its connection closed), or undefined
   * when the request is not a static file's and belongs to the app (nothing
   * was written). `beforeAnswer` runs once the file is known, before the
   * head is written (the loader closes the connection of a retiring process).
   */
  serve(req: http.IncomingMessage, res: http.ServerResponse, beforeAnswer?: () => void): Promise<void> | undefined {
    const method = req.method;
    if (method !== "GET" && method !== "HEAD") return undefined;
    const now = this.#now();
    if (!this.#rootPresent(now)) return undefined;
    const uri = req.url ?? "";
    if (knownMissing(this.#missingUris, uri, now)) return undefined;
    const candidates = staticCandidates(uri);
    if (candidates === undefined) return undefined;
    const exact = candidates.file === undefined ? undefined : this.#open(candidates.file, now);
    // Passenger's page cache: /about → about.html, / and /docs/ → index.html.
    const file = exact ?? this.#open(candidates.pageCache, now);
    if (file === undefined) {
      // Remembered no longer than what it rests on: a file created since is served within the second.
      const fileAt = candidates.file === undefined ? now : this.#missing.get(candidates.file);
      const pageAt = this.#missing.get(candidates.pageCache);
      if (fileAt !== undefined && pageAt !== undefined) remember(this.#missingUris, uri, Math.min(fileAt, pageAt));
      return undefined;
    }
    beforeAnswer?.();
    return this.#answer(req, res, file);
  }


  /** Open `relative` when it is a regular file whose real path lies inside the root; else undefined. */
  #open(relative: string, now: number): OpenFile | undefined {
    if (knownMissing(this.#missing, relative, now)) return undefined;
    const candidate = `${this.#root}/${relative}`;
    let fd: number | undefined;
    let first: fs.Stats | undefined;
    try {
      // Most requests of an app name no file: one stat, without an exception when it is missing.
      first = fs.statSync(candidate, { throwIfNoEntry: false });
    } catch {
      // Not a directory on the way, name too long, no search permission: no file there either.
    }
    if (first === undefined || !first.isFile()) {
      remember(this.#missing, relative, now);
      return undefined;
    }
    try {
      const realRoot = this.#realRoot(now);
      const real = fs.realpathSync.native(candidate);
      const prefix = realRoot === "/" ? "/" : `${realRoot}/`;
      if (!real.startsWith(prefix) || hasDotSegment(real.slice(prefix.length))) return undefined;
      fd = fs.openSync(real, OPEN_FLAGS);
      const stat = fs.fstatSync(fd);
      if (!stat.isFile()) {
        closeQuietly(fd);
        return undefined;
      }
      return { fd, path: real, relative, stat };
    } catch {
      // Gone, unreadable, not a directory on the way, name too long: the app's.
      if (fd !== undefined) closeQuietly(fd);
      return undefined;
    }
  }

  #answer(req: http.IncomingMessage, res: http.ServerResponse, file: OpenFile): Promise<void> {
    const { fd, stat } = file;
    const version = { size: stat.size, mtimeMs: stat.mtimeMs };
    const validators: Record<string, string> = { "Last-Modified": lastModifiedOf(version), ETag: etagOf(version) };
    if (this.#poweredBy !== "") validators["X-Powered-By"] = this.#poweredBy;
    const headers = req.headers as Record<string, string | undefined>;
    const status = conditionalStatus(headers, version);
    if (status !== undefined) {
      closeQuietly(fd);
      return this.#end(res, status, status === 304 ? validators : { ...validators, "Content-Length": "0" });
    }
    const range = req.method === "GET" ? rangeOf(headers, version) : { kind: "full" as const };
    if (range.kind === "unsatisfiable") {
      closeQuietly(fd);
      return this.#end(res, 416, { ...validators, "Content-Range": `bytes */${stat.size}`, "Content-Length": "0" });
    }
    const start = range.kind === "partial" ? range.start : 0;
    const end = range.kind === "partial" ? range.end : stat.size - 1;
    const head: Record<string, string> = {
      "Content-Type": contentTypeOf(file.relative),
      "Content-Length": String(end - start + 1),
      ...validators,
      "Accept-Ranges": "bytes",
    };
    if (range.kind === "partial") head["Content-Range"] = `bytes ${start}-${end}/${stat.size}`;
    res.writeHead(range.kind === "partial" ? 206 : 200, head);
    if (req.method === "HEAD" || end < start) {
      closeQuietly(fd);
      return this.#finish(res, () => res.end());
    }
    return streamFile(res, fd, start, end);
  }

  /** A whole answer without a body. */
  #end(res: http.ServerResponse, status: number, headers: Record<string, string>): Promise<void> {
    res.writeHead(status, headers);
    return this.#finish(res, () => res.end());
  }

  #finish(res: http.ServerResponse, end: () => void): Promise<void> {
    return new Promise((resolve) => {
      res.once("close", () => resolve());
      end();
    });
  }
}

/**
 * Put `files` in front of `server`'s own request listeners: a request that
 * `take(req)` accepts and that names a static file is answered without being
 * emitted to them (the app, and anything counting its requests, never see
 * it); `served(req, res)` runs first. Every other request is emitted as before.
 */
export function interceptStaticRequests(
  server: http.Server,
  files: StaticFiles,
  take: (req: http.IncomingMessage) => boolean,
  served: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): void {
  const emit = server.emit;
  server.emit = function (this: http.Server, event: string | symbol, a?: unknown, b?: unknown): boolean {
    if (event === "request") {
      const req = a as http.IncomingMessage;
      const res = b as http.ServerResponse;
      if (take(req) && files.serve(req, res, () => served(req, res)) !== undefined) return true;
    }
    // All the arguments as given (no copy: V8 forwards `arguments` to apply as is).
    return emit.apply(this, arguments as unknown as Parameters<typeof emit>);
  } as typeof server.emit;
}
