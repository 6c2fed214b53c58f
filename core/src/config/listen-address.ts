/**
 * An ADDR:PORT option (PassengerMetricsListen, `--metrics-listen`): "127.0.0.1:9464",
 * "[::1]:9464", "0.0.0.0:9464" or a bare port (the loopback address).
 */
import { ConfigError } from "../errors.js";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464" or "9464" (= 127.0.0.1:9464); ConfigError otherwise. */
export function parseListenAddress(spec: string, what: string): ListenAddress {
  const m = /^(?:(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):)?(\d{1,5})$/.exec(spec.trim());
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`Cannot use ${what} ${JSON.stringify(spec)}: expected ADDR:PORT (e.g. 127.0.0.1:9464) or a port`);
  }
  const host = (m[1] ?? "127.0.0.1").replace(/^\[(.*)\]$/, "$1");
  return { host, port };
}
