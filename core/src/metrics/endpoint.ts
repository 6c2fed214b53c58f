/**
 * The metrics endpoint: a small node:http server on PassengerMetricsListen /
 * `--metrics-listen` ADDR:PORT answering GET /metrics with the Prometheus text
 * exposition (docs/metrics.md). Off unless configured; a bare port binds the
 * loopback address.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ListenAddress } from "../config/listen-address.js";
import type { Logger } from "../log.js";

/** http://host:port/metrics for properties.json. */
export function metricsUrl(a: { address: string; port: number; family: string }): string {
  return `http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}/metrics`;
}

export interface MetricsEndpoint {
  scrape(): Promise<string>;
  readonly contentType: string;
}

export class MetricsServer {
  readonly #server: http.Server;
  readonly #log: Logger;

  constructor(source: MetricsEndpoint, log: Logger) {
    this.#log = log;
    this.#server = http.createServer({ requestTimeout: 10_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, (req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (path !== "/metrics") {
        res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("Not found: metrics are at /metrics\n");
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("Method not allowed\n");
        return;
      }
      source.scrape().then((text) => {
        res.writeHead(200, { "content-type": source.contentType, "content-length": Buffer.byteLength(text) });
        res.end(req.method === "HEAD" ? undefined : text);
      }, (e: unknown) => {
        this.#log.error({ err: e }, "Cannot collect metrics");
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("Cannot collect metrics\n");
      });
    });
  }

  /** Bind; rejects with the listen error (address in use, not permitted). */
  listen(addr: ListenAddress): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(new Error(`Cannot serve metrics on ${addr.host}:${addr.port}: ${e.message}`, { cause: e }));
      this.#server.once("error", onError);
      this.#server.listen({ host: addr.host, port: addr.port }, () => {
        this.#server.off("error", onError);
        this.#server.on("error", (e: unknown) => this.#log.error({ err: e }, "metrics server error"));
        this.#log.info({ address: addr.host, port: (this.#server.address() as AddressInfo).port }, "Serving metrics at /metrics");
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  async close(): Promise<void> {
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
