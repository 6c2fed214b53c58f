/**
 * Keep-alive HTTP agents towards app processes, one per app address, so the
 * request path reuses connections to a process instead of opening one per
 * request. Agents of addresses nobody used for a while are dropped.
 */
import http from "node:http";
import type { AppAddress } from "../pool/session.js";

export interface AppAgentsOptions {
  /** Upper bound of connections to one app process. */
  readonly maxSocketsPerProcess?: number;
  /** Idle keep-alive connections kept per process. */
  readonly maxFreeSocketsPerProcess?: number;
  /** Idle keep-alive connections are closed after this many ms (below Node's server default of 5 s). */
  readonly freeSocketTimeoutMs?: number;
}

export function addressKey(a: AppAddress): string {
  return a.kind === "unix" ? `unix:${a.path}` : `tcp:${a.host}:${a.port}`;
}

/** Connection options for http.request towards an app address. */
export function addressRequestOptions(a: AppAddress): http.RequestOptions {
  return a.kind === "unix" ? { socketPath: a.path } : { host: a.host, port: a.port };
}

export class AppAgents {
  readonly #agents = new Map<string, http.Agent>();
  readonly #opts: Required<AppAgentsOptions>;
  #gets = 0;

  constructor(opts: AppAgentsOptions = {}) {
    this.#opts = {
      maxSocketsPerProcess: opts.maxSocketsPerProcess ?? 256,
      maxFreeSocketsPerProcess: opts.maxFreeSocketsPerProcess ?? 32,
      freeSocketTimeoutMs: opts.freeSocketTimeoutMs ?? 4_000,
    };
  }

  /** The agent for an address, created on first use. */
  get(address: AppAddress): http.Agent {
    if (++this.#gets % 256 === 0) this.#sweep();
    const key = addressKey(address);
    let agent = this.#agents.get(key);
    if (agent === undefined) {
      agent = new http.Agent({
        keepAlive: true,
        maxSockets: this.#opts.maxSocketsPerProcess,
        maxFreeSockets: this.#opts.maxFreeSocketsPerProcess,
        timeout: this.#opts.freeSocketTimeoutMs,
        scheduling: "lifo",
      });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  /** Drop the agent of an address whose process is gone, closing its connections. */
  forget(address: AppAddress): void {
    const key = addressKey(address);
    const agent = this.#agents.get(key);
    if (agent !== undefined) {
      this.#agents.delete(key);
      agent.destroy();
    }
  }

  /** Close every connection. */
  destroy(): void {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }

  get size(): number {
    return this.#agents.size;
  }

  #sweep(): void {
    for (const [key, agent] of this.#agents) {
      const busy = Object.keys(agent.sockets).length + Object.keys(agent.freeSockets).length + Object.keys(agent.requests).length;
      if (busy === 0) {
        this.#agents.delete(key);
        agent.destroy();
      }
    }
  }
}
