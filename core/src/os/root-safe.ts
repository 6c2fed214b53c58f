/**
 * Files the core, running as root, opens on an app's behalf (today:
 * PassengerAppLogFile). A path that runs through a directory a tenant
 * controls (its app root, a symlink it planted) must not be opened with
 * root's rights: the tenant could aim it at /etc/cron.d or a device and have
 * root create or append to it (issue 4, docs/security.md).
 *
 * `rootControlled(dir)` walks the path from `/` component by component: every
 * directory must be root's and not writable by others (a sticky directory such
 * as /tmp is fine: nobody else can rename root's entries in it); a symlink is
 * followed only when it sits in such a directory (only root made it).
 */
import { constants as fsConstants } from "node:fs";
import { lstat, open, readlink, type FileHandle } from "node:fs/promises";
import path from "node:path";

const MAX_SYMLINKS = 40;

/** Whether only root can change what `dir` (an absolute path) resolves to. */
export async function rootControlled(dir: string): Promise<boolean> {
  let pending = path.resolve(dir).split("/").filter((c) => c !== "");
  // `cur` is always a real (symlink-free) directory only root controls.
  let cur = "/";
  let hops = 0;
  const safeDir = (st: { uid: number; mode: number }): boolean =>
    st.uid === 0 && ((st.mode & 0o022) === 0 || (st.mode & 0o1000) !== 0);
  if (!safeDir(await lstat("/"))) return false;
  while (pending.length > 0) {
    const [name, ...rest] = pending;
    pending = rest;
    if (name === undefined || name === ".") continue;
    if (name === "..") {
      cur = path.dirname(cur);
      continue;
    }
    const next = path.join(cur, name);
    let st;
    try {
      st = await lstat(next);
    } catch {
      return false;
    }
    if (st.isSymbolicLink()) {
      // It sits in `cur`, a root-controlled directory: root made it. Follow it.
      if (++hops > MAX_SYMLINKS) return false;
      const target = await readlink(next);
      if (path.isAbsolute(target)) cur = "/";
      pending = [...target.split("/").filter((c) => c !== ""), ...pending];
      continue;
    }
    if (!st.isDirectory() || !safeDir(st)) return false;
    cur = next;
  }
  return true;
}

export interface LogOwner {
  readonly uid: number;
  readonly name: string;
}

/**
 * Open (append) an app's log file for the core. In a root-controlled
 * directory root creates it (mode 0640); elsewhere `createAsUser` must create
 * it with the app user's rights first, and it is opened without O_CREAT. In
 * both cases a final symlink is not followed, a FIFO does not block, and the
 * file is used only if it is a regular file owned by root or by the app's
 * user (in a tenant-controlled directory: by the app's user only).
 */
export async function openAppLogFile(
  file: string, owner: LogOwner, createAsUser: (file: string) => Promise<void>,
): Promise<FileHandle> {
  const abs = path.resolve(file);
  const safe = await rootControlled(path.dirname(abs));
  const flags = fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
  let fh: FileHandle;
  if (safe) {
    fh = await open(abs, flags | fsConstants.O_CREAT, 0o640);
  } else {
    await createAsUser(abs);
    fh = await open(abs, flags);
  }
  const st = await fh.stat();
  const ownerOk = st.uid === owner.uid || (safe && st.uid === 0);
  if (!st.isFile() || !ownerOk) {
    await fh.close();
    throw new Error(`Cannot use app log file ${abs}: it is not a regular file owned by ${safe ? `root or ${owner.name}` : owner.name}`);
  }
  return fh;
}
