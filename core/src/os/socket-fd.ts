/**
 * The file descriptor of a connected net.Socket: Node keeps it on the
 * internal handle and has no public accessor. Used to read peer credentials
 * and to pass a socket to the module (SCM_RIGHTS).
 */
import type net from "node:net";

/** The file descriptor of a connected net.Socket (Node keeps it on the internal handle). */
export function socketFd(socket: net.Socket): number | undefined {
  const handle: unknown = Reflect.get(socket, "_handle");
  if (typeof handle !== "object" || handle === null) return undefined;
  const fd: unknown = Reflect.get(handle, "fd");
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
}
