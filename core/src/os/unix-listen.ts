/**
 * Listening on a Unix socket that no client may ever see with wider
 * permissions than meant (the EACCES race): listen on a temporary name beside
 * it, let `secure` set its mode and owner, then rename it into place. On a
 * failure the server is closed and the temporary socket removed. Used by the
 * module socket (front/module/listener.ts) and the admin socket
 * (control/admin-api.ts).
 */
import { promises as fsp } from "node:fs";
import type net from "node:net";

export async function listenUnixSecurely(
  server: net.Server, socketPath: string, secure: (tmpPath: string) => Promise<void>, backlog?: number,
): Promise<void> {
  const tmpPath = `${socketPath}.${process.pid}.tmp`;
  await fsp.rm(tmpPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    const onError = (e: unknown): void => reject(e);
    server.once("error", onError);
    server.listen({ path: tmpPath, ...(backlog !== undefined ? { backlog } : {}) }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  try {
    await secure(tmpPath);
    await fsp.rename(tmpPath, socketPath);
  } catch (e: unknown) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await fsp.rm(tmpPath, { force: true });
    throw e;
  }
}
