/**
 * One HTTP health check of an app process (docs/health.md): `GET <path>` over
 * the process's socket with `Connection: close`, bounded by a timeout. 2xx and
 * 3xx are healthy; anything else, a refused connection or no status line in
 * time is a failure with a reason. Reads the status line only.
 */
import net from "node:net";
import { connectAppSocket } from "../os/app-socket.js";
import type { AppAddress } from "./session.js";

/** Resolves with null when healthy, else why it failed. Never rejects. */
export function probeHealth(address: AppAddress, path: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    let done = false;
    let sock: net.Socket | undefined;
    let head = "";
    const finish = (why: string | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock?.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs);
    timer.unref();
    const send = (s: net.Socket): void => {
      sock = s;
      s.on("error", (e: Error) => finish(`GET ${path}: ${e.message}`));
      s.on("data", (chunk: Buffer) => {
        head += chunk.toString("latin1");
        const eol = head.indexOf("\r\n");
        if (eol < 0) {
          if (head.length > 1024) finish(`GET ${path}: no HTTP status line`);
          return;
        }
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(head.slice(0, eol));
        const status = m?.[1] === undefined ? 0 : Number(m[1]);
        finish(status >= 200 && status < 400 ? null : status === 0 ? `GET ${path}: no HTTP status line` : `GET ${path} answered ${status}`);
      });
      s.on("end", () => finish(`GET ${path}: connection closed without an answer`));
      s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Ferry-HealthCheck\r\nConnection: close\r\n\r\n`);
    };
    if (address.kind === "unix") {
      // Checks who listens (issue 4), like every connection to an app socket.
      sock = connectAppSocket(address.path, (e, s) => {
        if (e !== null || s === undefined) finish(`cannot connect: ${e?.message ?? "no socket"}`);
        else send(s);
      });
    } else {
      const s = net.connect({ host: address.host, port: address.port });
      sock = s;
      s.once("error", (e: Error) => finish(`cannot connect: ${e.message}`));
      s.once("connect", () => send(s));
    }
  });
}
