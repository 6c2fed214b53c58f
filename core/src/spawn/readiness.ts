/**
 * Wait until a starting app accepts connections, with a deadline (the spawn
 * request's AbortSignal). Node apps: the loader's "listening" message on the
 * control channel. Generic apps: the TCP port accepts a connection.
 * Failures are ReadinessFailure values naming the step; the spawner turns them
 * into SpawnError with the captured output.
 */
import net from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import type { ProcessExit } from "./spawner.js";
import type { LoaderMessage, SpawnStep } from "../loader/messages.js";
import type { LoaderChannel } from "./loader-channel.js";

export class ReadinessFailure extends Error {
  constructor(
    readonly step: SpawnStep,
    message: string,
    readonly timeout: boolean,
    readonly exit: ProcessExit | undefined,
  ) {
    super(message);
    this.name = "ReadinessFailure";
  }
}

function describeExit(e: ProcessExit): string {
  return e.signal !== null ? `was killed by ${e.signal}` : `exited with code ${e.code ?? "?"}`;
}

const STEP_HINT: Record<SpawnStep, string> = {
  prepare: "preparing the spawn",
  exec: "starting the loader",
  load: "loading the app (it has not called listen())",
  listen: "listening on Ferry's socket",
};

function stepFailure(step: SpawnStep, e: ProcessExit, appError?: string): ReadinessFailure {
  const why = appError === undefined ? "" : `: ${appError}`;
  return new ReadinessFailure(step, `process ${describeExit(e)} while ${STEP_HINT[step]}${why}`, false, e);
}

function abortFailure(step: SpawnStep, signal: AbortSignal, elapsedMs: number): ReadinessFailure {
  const reason: unknown = signal.reason;
  const timeout = reason instanceof Error && reason.name === "TimeoutError";
  const what = timeout ? `not ready after ${elapsedMs} ms` : "spawn aborted";
  return new ReadinessFailure(step, `${what} while ${STEP_HINT[step]}`, timeout, undefined);
}

export interface LoaderReadinessInput {
  /** Core end of the control channel (fd 3 of the app). */
  readonly channel: LoaderChannel;
  readonly exited: Promise<ProcessExit>;
  readonly signal: AbortSignal;
  /** The socket the loader must report. */
  readonly socketPath: string;
}

/** Resolve when the loader reports "listening" on `socketPath`; reject with ReadinessFailure. */
export function waitForLoader(input: LoaderReadinessInput): Promise<void> {
  const started = Date.now();
  let step: SpawnStep = "exec";
  let appError: string | undefined;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (err: ReadinessFailure | undefined): void => {
      if (settled) return;
      settled = true;
      unsubscribe();
      input.signal.removeEventListener("abort", onAbort);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onMessage = (msg: LoaderMessage): void => {
      switch (msg.type) {
        case "started":
          step = "load";
          break;
        case "listen-called":
          step = "listen";
          break;
        case "listening":
          if (msg.path === input.socketPath) finish(undefined);
          else finish(new ReadinessFailure("listen", `loader reported socket ${msg.path}, expected ${input.socketPath}`, false, undefined));
          break;
        case "error":
          // The process is about to exit: wait for it, so its whole output is captured.
          step = msg.step;
          appError = msg.message;
          break;
        case "loop":
          break;
      }
    };
    const onAbort = (): void => finish(abortFailure(step, input.signal, Date.now() - started));
    const unsubscribe = input.channel.subscribe(onMessage);
    void input.exited.then((e) => finish(stepFailure(step, e, appError)));
    if (input.signal.aborted) onAbort();
    else input.signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** One connection attempt with its own short timeout. */
function tryConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

export interface PortReadinessInput {
  readonly host: string;
  readonly port: number;
  readonly exited: Promise<ProcessExit>;
  readonly signal: AbortSignal;
}

/** Resolve when host:port accepts a connection (polled with capped backoff); reject with ReadinessFailure. */
export async function waitForPort(input: PortReadinessInput): Promise<void> {
  const started = Date.now();
  let exit: ProcessExit | undefined;
  void input.exited.then((e) => { exit = e; });
  let pause = 25;
  for (;;) {
    if (exit !== undefined) throw stepFailure("load", exit);
    if (input.signal.aborted) throw abortFailure("load", input.signal, Date.now() - started);
    if (await tryConnect(input.host, input.port, 1000)) {
      if (exit !== undefined) throw stepFailure("load", exit);
      return;
    }
    try {
      await delay(pause, undefined, { signal: input.signal });
    } catch {
      // aborted: reported at the top of the loop
    }
    pause = Math.min(pause * 2, 250);
  }
}
