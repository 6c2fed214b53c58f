/**
 * The loader starts connection handoff only when fd 4 is the core's handoff
 * socket. Without handoff (module mode: Apache/nginx) fd 4 is free when Node
 * starts and becomes Node's own epoll descriptor, which must not be read as
 * an IPC pipe (it once was: every app process under Apache ran a bogus
 * handoff on its event loop's descriptor).
 */
import test from "ava";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ADOPTER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../core/src/loader/handoff-adopter.js");

function probe(extraFd: boolean): Promise<string> {
  const script = `import(${JSON.stringify(pathToFileURL(ADOPTER).href)}).then((m) => console.log(require("fs").readlinkSync("/proc/self/fd/4").split(":")[0], m.hasHandoffChannel()))`;
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit", "pipe", ...(extraFd ? ["pipe" as const] : [])] });
    let out = "";
    c.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    c.on("error", reject);
    c.on("exit", () => resolve(out.trim()));
  });
}

test("hasHandoffChannel() is false when fd 4 is Node's own epoll descriptor (no handoff channel)", async (t) => {
  t.is(await probe(false), "anon_inode false");
});

test("hasHandoffChannel() is true when fd 4 is a socket the core passed", async (t) => {
  t.is(await probe(true), "socket true");
});
