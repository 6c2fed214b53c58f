/**
 * PassengerCustomErrorPage (Passenger 6.0.23): the HTML file an administrator
 * set to be served instead of Ferry's own error page when friendly error
 * pages are off. Read when an error page is needed (errors are rare), kept
 * while the file's size and mtime stay the same; at most 1 MB. A file that
 * cannot be read yields undefined (the built-in page is served) and one log
 * line per path and minute.
 */
import { closeSync, fstatSync, openSync, readSync, constants } from "node:fs";
import type { Logger } from "../log.js";

/** Largest custom error page served, bytes. */
export const MAX_CUSTOM_ERROR_PAGE = 1024 * 1024;

interface Cached {
  readonly size: number;
  readonly mtimeMs: number;
  readonly body: Buffer;
}

const cache = new Map<string, Cached>();
const warnedAt = new Map<string, number>();

/** The page's bytes, or undefined when it cannot be used (logged). */
export function readCustomErrorPage(file: string, log: Logger): Buffer | undefined {
  let fd: number | undefined;
  try {
    // O_NONBLOCK: a FIFO never blocks the core; the file must be a regular file.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error("not a regular file");
    if (st.size > MAX_CUSTOM_ERROR_PAGE) throw new Error(`larger than ${MAX_CUSTOM_ERROR_PAGE} bytes`);
    const hit = cache.get(file);
    if (hit !== undefined && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.body;
    const body = Buffer.alloc(st.size);
    let at = 0;
    while (at < body.length) {
      const n = readSync(fd, body, at, body.length - at, at);
      if (n === 0) break;
      at += n;
    }
    const page = body.subarray(0, at);
    if (cache.size > 64) cache.clear();
    cache.set(file, { size: st.size, mtimeMs: st.mtimeMs, body: page });
    return page;
  } catch (e: unknown) {
    const now = Date.now();
    if (now - (warnedAt.get(file) ?? 0) > 60_000) {
      warnedAt.set(file, now);
      log.warn({ err: e, file }, `Cannot serve PassengerCustomErrorPage ${file}: ${e instanceof Error ? e.message : String(e)}; serving the built-in page`);
    }
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
