/**
 * Metrics wiring of an instance (instance.ts, for both modes):
 * build the FerryMetrics when an address is configured, serve it, stop it.
 * The metrics object exists before the pool (it is the pool's observer) and
 * reads the pool through `sources` only when scraped.
 */
import type { AddressInfo } from "node:net";
import type { Logger } from "../log.js";
import type { Exchange } from "../exchange/exchange.js";
import { recordExchange } from "./recorded-exchange.js";
import { FerryMetrics, type MetricsSources } from "./prometheus.js";
import { parseListenAddress } from "../config/listen-address.js";
import { MetricsServer } from "./endpoint.js";

export interface MetricsService {
  readonly metrics: FerryMetrics;
  /** Where /metrics is served, once started. */
  address: AddressInfo | undefined;
  /** Bind the endpoint (rejects when the address cannot be used). */
  start(): Promise<AddressInfo>;
  stop(): Promise<void>;
  /** Wrap a request handler so each exchange is counted once when it ends. */
  wrap(handle: (ex: Exchange) => Promise<void>): (ex: Exchange) => Promise<void>;
}

/** undefined when `listen` is "" (metrics off). Throws ConfigError for a bad address. */
export function createMetrics(listen: string | undefined, sources: MetricsSources, log: Logger): MetricsService | undefined {
  if (listen === undefined || listen === "") return undefined;
  const addr = parseListenAddress(listen, "metrics_listen");
  const metrics = new FerryMetrics(sources);
  const server = new MetricsServer(metrics, log);
  const svc: MetricsService = {
    metrics,
    address: undefined,
    async start() {
      svc.address = await server.listen(addr);
      return svc.address;
    },
    stop: () => server.close(),
    wrap: (handle) => (ex) => recordExchange(ex, metrics, handle),
  };
  return svc;
}
