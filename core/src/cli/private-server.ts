/**
 * What the commands that run a private web server (`ferry apache start|stop`,
 * `ferry nginx …`) need from this machine besides the probes of os/probes.ts:
 * the package root, a program on PATH, a wait under a deadline, a log's tail.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The ferry package root (this file runs from build/core/src/cli/). */
export function packageRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
}

/** The first of `names` on PATH or in the sbin dirs, or undefined. */
export function findExecutable(names: readonly string[]): string | undefined {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"]);
  for (const name of names) {
    for (const dir of dirs) {
      if (dir === "") continue;
      const candidate = path.join(dir, name);
      if (existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

/** Poll `cond` every 100 ms until it holds (true) or `timeoutMs` passed (false). */
export async function pollUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The last `lines` lines of a file, or a note that there is none. */
export function fileTail(file: string, lines: number, missing = "(no error log)"): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return missing;
  }
}
