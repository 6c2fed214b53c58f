/**
 * An in-memory Spawner for pool tests: "processes" are objects whose exit the
 * test triggers. Each fake listens on a real Unix socket in a temp dir (so the
 * pool's liveness probe after an app error sees a live or a dead socket), and
 * records shutdown()/kill() calls.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AppOptions } from "../../core/src/config/schema.js";
import { SpawnError } from "../../core/src/errors.js";
import type { AppAddress } from "../../core/src/pool/session.js";
import type { ProcessExit, SpawnedProcess, SpawnRequest, Spawner } from "../../core/src/spawn/spawner.js";

export type SpawnBehaviour =
  /** Succeed after the delay. */
  | { readonly kind: "ok" }
  /** Fail after the delay with a SpawnError carrying this output. */
  | { readonly kind: "fail"; readonly output?: string }
  /** Never become ready (only the abort signal ends it). */
  | { readonly kind: "hang" };

export class FakeProcess implements SpawnedProcess {
  readonly address: AppAddress;
  readonly exited: Promise<ProcessExit>;
  shutdownCalls = 0;
  killCalls = 0;
  /** Exit by itself when shutdown() is called (like a well-behaved app). */
  exitOnShutdown = true;
  private resolveExit: (e: ProcessExit) => void = () => undefined;
  private done = false;
  private server: Server | null = null;

  constructor(
    readonly pid: number,
    readonly app: AppOptions,
    socketPath: string,
  ) {
    this.address = { kind: "unix", path: socketPath };
    this.exited = new Promise<ProcessExit>((res) => {
      this.resolveExit = res;
    });
  }

  async listen(): Promise<void> {
    const server = createServer((sock) => sock.destroy());
    await new Promise<void>((res, rej) => {
      server.once("error", rej);
      server.listen(this.address.kind === "unix" ? this.address.path : 0, () => res());
    });
    this.server = server;
  }

  /** Stop accepting connections while "alive" (a broken app). */
  stopListening(): void {
    this.server?.close();
    this.server = null;
  }

  get hasExited(): boolean {
    return this.done;
  }

  /** Trigger the exit (crash, or the end of a graceful shutdown). */
  exit(code: number | null = 0, signal: NodeJS.Signals | null = null): void {
    if (this.done) return;
    this.done = true;
    this.stopListening();
    this.resolveExit({ code, signal });
  }

  shutdown(): void {
    this.shutdownCalls++;
    if (this.exitOnShutdown) setImmediate(() => this.exit(0, null));
  }

  kill(): void {
    this.killCalls++;
    setImmediate(() => this.exit(null, "SIGKILL"));
  }
}

export interface FakeSpawnerOptions {
  /** How long a spawn takes; default 20 ms. */
  readonly delayMs?: number;
}

export class FakeSpawner implements Spawner {
  readonly processes: FakeProcess[] = [];
  readonly requests: SpawnRequest[] = [];
  /** What the next spawns do; the test changes it at will. */
  behaviour: SpawnBehaviour = { kind: "ok" };
  delayMs: number;
  /** Pid to hand out for the next spawn only (e.g. the test's own pid, for metrics). */
  nextPidOverride: number | null = null;
  private nextPid = 900_000;
  private readonly dir: string;

  constructor(opts: FakeSpawnerOptions = {}) {
    this.delayMs = opts.delayMs ?? 20;
    this.dir = mkdtempSync(join(tmpdir(), "ferry-fake-spawner-"));
  }

  get spawnCalls(): number {
    return this.requests.length;
  }

  /** Live (not exited) fakes. */
  get live(): FakeProcess[] {
    return this.processes.filter((p) => !p.hasExited);
  }

  byPid(pid: number): FakeProcess {
    const p = this.processes.find((x) => x.pid === pid);
    if (p === undefined) throw new Error(`Cannot find fake process ${pid}`);
    return p;
  }

  async spawn(req: SpawnRequest): Promise<SpawnedProcess> {
    this.requests.push(req);
    const behaviour = this.behaviour;
    await new Promise<void>((res, rej) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        rej(new SpawnError(`Cannot spawn app "${req.app.appGroupName}": aborted`, { timeout: true, step: "listen" }));
      };
      const timer = behaviour.kind === "hang" ? undefined : setTimeout(() => {
        req.signal.removeEventListener("abort", onAbort);
        res();
      }, this.delayMs);
      if (req.signal.aborted) onAbort();
      else req.signal.addEventListener("abort", onAbort, { once: true });
    });
    if (behaviour.kind === "fail") {
      throw new SpawnError(`Cannot spawn app "${req.app.appGroupName}": the app exited with code 1`, {
        output: behaviour.output ?? "Error: boom",
        step: "load",
      });
    }
    const pid = this.nextPidOverride ?? this.nextPid++;
    this.nextPidOverride = null;
    const p = new FakeProcess(pid, req.app, join(this.dir, `p${pid}-${this.processes.length}.sock`));
    await p.listen();
    this.processes.push(p);
    return p;
  }

  /** Exit every live fake and remove the socket dir. */
  cleanup(): void {
    for (const p of this.processes) p.exit(0, null);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
