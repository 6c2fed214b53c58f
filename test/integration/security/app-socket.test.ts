/**
 * connectAppSocket() (core/src/os/app-socket.ts), run as root: the core talks
 * to an app socket only when its listener runs as the owner of the socket's
 * directory (the app's user). A root-only socket reached through a symlink
 * the app planted in its own directory is refused before a byte is sent.
 */
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmod, chown, mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { AppSocketPeerError, connectAppSocket } from "../../../core/src/os/app-socket.js";
import { lookupUser } from "../../helpers/users.js";

const IS_ROOT = process.getuid?.() === 0;
let dir = "";
const children: ChildProcess[] = [];
const servers: net.Server[] = [];

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ferry-app-socket-"));
  await chmod(dir, 0o755);
});

test.after.always(async () => {
  for (const c of children) c.kill("SIGKILL");
  for (const s of servers) s.close();
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

function connect(p: string): Promise<{ err: Error | null; received: string }> {
  return new Promise((resolve) => {
    connectAppSocket(p, (err, sock) => {
      if (err !== null || sock === undefined) {
        resolve({ err, received: "" });
        return;
      }
      let received = "";
      sock.setEncoding("utf8");
      sock.on("data", (d: string) => (received += d));
      sock.on("error", () => undefined);
      sock.on("close", () => resolve({ err: null, received }));
    }, { alwaysCheck: true });
  });
}

/** A root-listened socket that greets whoever connects. */
async function rootListener(p: string): Promise<void> {
  const srv = net.createServer((s) => {
    s.on("error", () => undefined); // the refused client resets the connection
    s.end("hello from root\n");
  });
  servers.push(srv);
  srv.listen(p);
  await once(srv, "listening");
}

/** A dir owned by nobody (an app's socket dir). */
async function nobodyDir(name: string): Promise<string> {
  const nobody = lookupUser("nobody");
  if (nobody === undefined) throw new Error("no user nobody");
  const d = path.join(dir, name);
  await mkdir(d, { mode: 0o700 });
  await chown(d, nobody.uid, nobody.gid);
  return d;
}

const rootTest = IS_ROOT ? test : test.skip;

rootTest("a socket whose listener is the directory's owner is connected", async (t) => {
  const nobody = lookupUser("nobody");
  if (nobody === undefined) return t.fail("no user nobody");
  const d = await nobodyDir("own");
  const p = path.join(d, "app.sock");
  const script = `require("net").createServer((s) => { s.on("error", () => {}); s.end("hello from the app\\n"); }).listen(${JSON.stringify(p)}, () => console.log("up"))`;
  const child = spawn("setpriv", [`--reuid=${nobody.uid}`, `--regid=${nobody.gid}`, "--clear-groups", "--", process.execPath, "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`listener exited ${String(code)}`)));
  });
  const r = await connect(p);
  t.is(r.err, null);
  t.is(r.received, "hello from the app\n");
});

rootTest("a symlink in an app's directory to a root-only socket is refused before any byte is exchanged", async (t) => {
  const target = path.join(dir, "root-only.sock");
  await rootListener(target);
  const d = await nobodyDir("swapped");
  const p = path.join(d, "app.sock");
  await symlink(target, p);
  const r = await connect(p);
  t.true(r.err instanceof AppSocketPeerError, String(r.err));
  t.regex(r.err?.message ?? "", /served by uid 0 .* not by the app's uid/);
  t.is(r.received, "");
});

rootTest("a root-owned directory with a root listener (the core's own fakes) is connected", async (t) => {
  const d = path.join(dir, "rootdir");
  await mkdir(d);
  const p = path.join(d, "x.sock");
  await rootListener(p);
  const r = await connect(p);
  t.is(r.err, null);
  t.is(r.received, "hello from root\n");
});

test("a missing socket gives the connect error", async (t) => {
  const r = await connect(path.join(dir, "nope", "x.sock"));
  t.is((r.err as NodeJS.ErrnoException | null)?.code, "ENOENT");
});
