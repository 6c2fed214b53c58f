/**
 * A private redis-server for integration tests: on a free 127.0.0.1 port
 * (restartable on the same port), no persistence, in a temp dir. Ready when
 * PING answers PONG (polled with a deadline); stop() kills it and waits.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fsp } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** A free TCP port on 127.0.0.1 (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** One PING; resolves true on +PONG within the deadline. */
export function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on("error", () => done(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d: Buffer) => {
      buf += d.toString();
      if (buf.includes("\r\n")) done(buf.startsWith("+PONG"));
    });
  });
}

export class RedisServer {
  #child: ChildProcess | undefined;
  #log = "";

  private constructor(readonly port: number, readonly dir: string) {}

  static async start(): Promise<RedisServer> {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "ferry-redis-"));
    const r = new RedisServer(await freePort(), dir);
    await r.restart();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  /** The redis-server process (for SIGSTOP/SIGCONT in fault tests); undefined when stopped. */
  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Start (again) on the same port; resolves when PING answers. */
  async restart(timeoutMs = 15_000): Promise<void> {
    if (this.running) return;
    const child = spawn("redis-server", [
      "--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
      "--dir", this.dir, "--daemonize", "no", "--protected-mode", "no", "--enable-debug-command", "local",
    ], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.on("data", (d: Buffer) => { this.#log = (this.#log + d.toString()).slice(-4000); });
    child.stderr?.on("data", (d: Buffer) => { this.#log = (this.#log + d.toString()).slice(-4000); });
    child.on("error", (e) => { this.#log += `\nspawn error: ${e.message}`; });
    this.#child = child;
    const until = Date.now() + timeoutMs;
    while (!(await ping(this.port))) {
      if (child.exitCode !== null || Date.now() > until) {
        child.kill("SIGKILL");
        throw new Error(`Cannot start redis-server on port ${this.port}: not answering PING (log: ${this.#log.slice(-1000)})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Kill it (SIGKILL: an outage, not a clean shutdown) and wait for the exit. */
  async stop(): Promise<void> {
    const c = this.#child;
    if (c === undefined || !this.running) return;
    const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
    c.kill("SIGKILL");
    await exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    await fsp.rm(this.dir, { recursive: true, force: true });
  }
}

/** Send one command (RESP) and resolve with the raw reply once a full line arrived. */
export function redisCommand(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port });
    let out = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`Cannot run redis command ${args[0] ?? ""}: no reply within 10 s`));
    }, 10_000);
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on("data", (d: Buffer) => {
      out += d.toString();
      // A bulk reply ($n) needs its second line too.
      const complete = out.startsWith("$") && !out.startsWith("$-1") ? out.split("\r\n").length >= 3 : out.includes("\r\n");
      if (complete) {
        clearTimeout(timer);
        s.destroy();
        resolve(out);
      }
    });
    s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`);
  });
}

/** GET a key's string value, or undefined. */
export async function redisGet(port: number, key: string): Promise<string | undefined> {
  const r = await redisCommand(port, "GET", key);
  if (r.startsWith("$-1")) return undefined;
  return r.split("\r\n")[1];
}
