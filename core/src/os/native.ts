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
  sendFd(sockFd: number, data: Buffer, fd: number): number;
  recvFd(sockFd: number, maxLen: number): { data: Buffer; fd: number };
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

/**
 * Send `data` on a connected Unix socket with the descriptor `fd` attached
 * (SCM_RIGHTS, on its first byte), without blocking. Returns the bytes sent;
 * the caller writes the rest. Throws an ErrnoException (`code` EAGAIN when the
 * send buffer is full and nothing was sent).
 */
export function sendFd(sockFd: number, data: Buffer, fd: number): number {
  return addon.sendFd(sockFd, data, fd);
}

/**
 * One non-blocking recvmsg on a Unix socket: the bytes and the descriptor that
 * came with them (-1 when none). Empty data means EOF. Throws EAGAIN when
 * nothing is there (tests read leases with it).
 */
export function recvFd(sockFd: number, maxLen: number): { data: Buffer; fd: number } {
  return addon.recvFd(sockFd, maxLen);
}
