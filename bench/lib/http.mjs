// Small HTTP helpers for readiness, the spread check and cold start timing.
import http from "node:http";
import net from "node:net";
import { sleep } from "./proc.mjs";

/** One GET with a deadline; resolves {status, headers, body} or rejects. */
export function get(port, path, { timeoutMs = 10000, agent = false } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`Cannot GET ${path}: no answer in ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

/** Resolves when something accepts TCP connections on the port. */
export async function waitListening(port, deadlineMs, isDead = () => false) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (isDead()) throw new Error(`Cannot reach port ${port}: the server exited`);
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`Cannot reach port ${port}: nothing listening after ${deadlineMs} ms`);
}

/**
 * Polls GET / until a 200 with an X-Pid. Returns the ms from `since`, and the
 * successful request's own latency (for a server that spawns the app on the
 * first request, that request waits for the spawn).
 */
export async function waitOk(port, deadlineMs, isDead = () => false, since = performance.now()) {
  const deadline = Date.now() + deadlineMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (isDead()) throw new Error(`Cannot get a first response on port ${port}: the server exited`);
    try {
      const sent = performance.now();
      const r = await get(port, "/", { timeoutMs: Math.max(1000, deadline - Date.now()) });
      const now = performance.now();
      if (r.status === 200 && r.headers["x-pid"] !== undefined) return { ms: now - since, requestMs: now - sent };
      last = `status ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(10);
  }
  throw new Error(`Cannot get a first response on port ${port}: ${last} after ${deadlineMs} ms`);
}

/**
 * Sends waves of concurrent /slow requests, each on a new connection (a
 * balancer that spreads connections, like the cluster module, must get the
 * chance), until `want` distinct app pids answered or the deadline passes.
 * Returns the pids seen.
 */
export async function spread(port, want, deadlineMs) {
  const pids = new Set();
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline && pids.size < want) {
    const wave = await Promise.allSettled(
      Array.from({ length: 16 }, () => get(port, "/slow", { timeoutMs: 10000 })),
    );
    for (const r of wave) {
      if (r.status === "fulfilled" && r.value.headers["x-pid"] !== undefined) pids.add(r.value.headers["x-pid"]);
    }
    if (pids.size < want) await sleep(200);
  }
  return [...pids];
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}
