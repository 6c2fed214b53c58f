/**
 * A private Prometheus server for end-to-end tests (Debian's `prometheus`
 * package, installed by scripts/install-deps.sh or here when root): its own
 * config scraping the given targets every second, its own data dir, a free
 * loopback port; ready when /-/ready answers; stop() = SIGTERM, then SIGKILL
 * after a deadline. Also `promtool check metrics` on a scraped text.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { freePort, waitFor } from "./apache.js";

function onPath(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function ensurePrometheusInstalled(): void {
  if (onPath("prometheus") && onPath("promtool")) return;
  if (process.getuid?.() !== 0 || !onPath("apt-get")) {
    throw new Error("Cannot start Prometheus: it is not installed (sh scripts/install-deps.sh as root)");
  }
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "prometheus"], {
    stdio: "ignore", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, timeout: 300_000,
  });
}

export interface PromSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export class PrometheusServer {
  #output = "";

  private constructor(readonly port: number, private readonly child: ChildProcess) {
    child.stdout?.on("data", (d: Buffer) => (this.#output += d.toString("utf8")));
    child.stderr?.on("data", (d: Buffer) => (this.#output += d.toString("utf8")));
  }

  /** Start one scraping `targets` ("127.0.0.1:9464", …) as job "ferry" every second. */
  static async start(dir: string, targets: readonly string[]): Promise<PrometheusServer> {
    ensurePrometheusInstalled();
    await mkdir(path.join(dir, "data"), { recursive: true });
    const config = path.join(dir, "prometheus.yml");
    await writeFile(config, [
      "global:",
      "  scrape_interval: 1s",
      "  scrape_timeout: 1s",
      "scrape_configs:",
      "  - job_name: ferry",
      "    static_configs:",
      `      - targets: [${targets.map((t) => JSON.stringify(t)).join(", ")}]`,
      "",
    ].join("\n"));
    const port = await freePort();
    const child = spawn("prometheus", [
      `--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn",
    ], { stdio: ["ignore", "pipe", "pipe"] });
    const server = new PrometheusServer(port, child);
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited: ${server.output.slice(-2000)}`);
        const r = await fetch(`http://127.0.0.1:${port}/-/ready`, { signal: AbortSignal.timeout(1000) });
        return r.status === 200;
      }, { timeoutMs: 30_000, intervalMs: 200, what: "Prometheus to be ready" });
    } catch (e: unknown) {
      await server.stop();
      throw e;
    }
    return server;
  }

  get output(): string {
    return this.#output;
  }

  /** An instant query; the samples of its vector result. */
  async query(expr: string): Promise<PromSample[]> {
    const r = await fetch(`http://127.0.0.1:${this.port}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(5000) });
    const body = (await r.json()) as { status: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }; error?: string };
    if (body.status !== "success" || body.data === undefined) throw new Error(`Cannot query ${expr}: ${body.error ?? r.status}`);
    return body.data.result.map((s) => ({ labels: s.metric, value: Number(s.value[1]) }));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, "exit");
    this.child.kill("SIGTERM");
    const t = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
  }
}

/** `promtool check metrics` on an exposition text: "" when it passes, else its complaints. */
export function promtoolCheck(text: string): Promise<string> {
  ensurePrometheusInstalled();
  return new Promise((resolve) => {
    const child = execFile("promtool", ["check", "metrics"], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve(err === null ? "" : `${stdout}${stderr}`.trim() || err.message);
    });
    child.stdin?.end(text);
  });
}
