/**
 * The only importer of the native addon (bindings/, built by binding.gyp).
 * Exposes typed wrappers of the OS calls Node lacks.
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

export interface PeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

interface NativeAddon {
  peerCred(fd: number): PeerCred;
}

/** Root of the package (the folder holding package.json). */
export const PACKAGE_ROOT: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

/** The privilege-dropping exec helper built by binding.gyp (bindings/src/exec_helper.c). */
export const EXEC_HELPER_PATH: string = path.join(PACKAGE_ROOT, "build", "Release", "ferry-exec-helper");

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const file = path.join(PACKAGE_ROOT, "build", "Release", "ferry_native.node");
  try {
    return require(file) as NativeAddon;
  } catch (e: unknown) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`Cannot load Ferry's native addon at ${file}: ${msg} (run npm install)`, { cause: e });
  }
}

const addon: NativeAddon = load();

/** Credentials of the peer of a connected Unix socket, by file descriptor. */
export function peerCred(fd: number): PeerCred {
  return addon.peerCred(fd);
}
