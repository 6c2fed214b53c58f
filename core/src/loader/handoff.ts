/**
 * Connection handoff inside the app process (docs/standalone.md "Connection
 * handoff"): the core accepts client TCP connections and passes each one to
 * a process as Node's cluster module does, over the IPC socket at HANDOFF_FD.
 * This file adopts each passed handle as a net.Socket and gives it to the
 * server Ferry bound (reverse-binding.ts `installed`), which then serves every
 * request of that connection itself, with no proxy hop. It also counts the
 * requests on adopted connections and reports them to the core ("reqs"
 * message), so routing, scaling, max requests and metrics stay per request.
 *
 * Runs INSIDE the app process: node: built-ins and this folder only. The IPC
 * pipe comes from `process.binding("pipe_wrap")` (what child_process uses for
 * its IPC channel; the app's own process.send stays untouched).
 */
import { fstatSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import type { DirectRequest, LoaderMessage } from "./messages.js";
import { HANDOFF_FD, MAX_REQS_PER_MESSAGE } from "./messages.js";

interface PipeHandle {
  open(fd: number): number;
  readStart(): number;
  readStop(): number;
  close(cb?: () => void): void;
  unref(): void;
  onread: ((buf: ArrayBuffer | undefined) => void) | null;
  pendingHandle: unknown;
}

interface PipeWrapBinding {
  Pipe: new (type: number) => PipeHandle;
  constants: { IPC: number };
}

interface StreamWrapBinding {
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
}

/** Marks a socket the core handed over. */
const ADOPTED = Symbol("ferry.adopted");

export interface HandoffOptions {
  /** The server that serves adopted connections (undefined until the app listens). */
  server(): net.Server | undefined;
  send(msg: LoaderMessage): void;
  warn(message: string): void;
  /** The process is shutting down: answers close their connection. */
  shuttingDown(): boolean;
}

/** How long a shutting-down process waits for passed connections to bring their first request. */
const FIRST_REQUEST_GRACE_MS = 2_000;
/** How long it waits for connections the core passed just before the shutdown message. */
const IN_TRANSIT_GRACE_MS = 100;

export interface Handoff {
  /**
   * Resolves once connections passed before the shutdown have been received
   * (a short grace) and each adopted one brought its first request or closed
   * (at most FIRST_REQUEST_GRACE_MS).
   */
  settled(): Promise<void>;
  stop(): void;
}

/** Start receiving connections on HANDOFF_FD; undefined when the process has no such fd. */
export function startHandoff(opts: HandoffOptions): Handoff | undefined {
  try {
    fstatSync(HANDOFF_FD);
  } catch {
    return undefined;
  }
  const binding = (Reflect.get(process, "binding") as (name: string) => unknown).bind(process);
  const { Pipe, constants } = binding("pipe_wrap") as PipeWrapBinding;
  const { streamBaseState, kReadBytesOrError } = binding("stream_wrap") as StreamWrapBinding;
  const pipe = new Pipe(constants.IPC);
  if (pipe.open(HANDOFF_FD) !== 0) {
    opts.warn(`Ferry: cannot open the connection handoff channel (fd ${HANDOFF_FD})`);
    return undefined;
  }
  const tracker = new RequestTracker(opts.send, opts.shuttingDown);
  const prepared = new WeakSet<net.Server>();
  let stopped = false;
  pipe.onread = () => {
    const handle = pipe.pendingHandle;
    pipe.pendingHandle = null;
    if (handle === null || handle === undefined) {
      // EOF or an error: the core is gone; the control channel handles that.
      if ((streamBaseState[kReadBytesOrError] ?? 0) < 0) stop();
      return;
    }
    const socket = new net.Socket({ handle, readable: true, writable: true } as net.SocketConstructorOpts);
    // Also after shutdown began: a connection passed just before the core retired
    // this process is still served (its answer closes the connection).
    const server = opts.server();
    if (server === undefined || stopped) {
      socket.destroy();
      return;
    }
    if (!prepared.has(server)) {
      prepared.add(server);
      tracker.watch(server);
    }
    (socket as unknown as Record<symbol, boolean>)[ADOPTED] = true;
    tracker.adopted(socket);
    server.emit("connection", socket);
    socket.resume();
  };
  pipe.readStart();
  pipe.unref();
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    pipe.readStop();
    pipe.close();
  };
  const settled = async (): Promise<void> => {
    await new Promise((resolve) => setTimeout(resolve, IN_TRANSIT_GRACE_MS));
    await tracker.firstRequests(FIRST_REQUEST_GRACE_MS);
  };
  return { settled, stop };
}

function isAdopted(socket: unknown): boolean {
  return typeof socket === "object" && socket !== null && (socket as Record<symbol, unknown>)[ADOPTED] === true;
}

/**
 * The headers the core's relay adds (exchange/headers.ts): X-Forwarded-For
 * with the client address appended, X-Forwarded-Proto (plain HTTP here).
 */
function forwardedHeaders(req: http.IncomingMessage): void {
  const addr = req.socket.remoteAddress ?? "";
  const headers = req.headers;
  const xff = headers["x-forwarded-for"];
  const value = xff === undefined || xff === "" ? addr : `${xff}, ${addr}`;
  headers["x-forwarded-for"] = value;
  headers["x-forwarded-proto"] = "http";
  req.rawHeaders.push("X-Forwarded-For", value, "X-Forwarded-Proto", "http");
}

/** Counts requests and upgrades on adopted connections and reports them, coalesced per event-loop turn. */
class RequestTracker {
  #inFlight = 0;
  #upgraded = 0;
  /** Adopted connections open now. */
  #connections = 0;
  #done: DirectRequest[] = [];
  #scheduled = false;
  /** Adopted connections that have not brought a request yet. */
  readonly #waiting = new Set<net.Socket>();
  #onNoneWaiting: Array<() => void> = [];

  constructor(
    private readonly send: (msg: LoaderMessage) => void,
    private readonly shuttingDown: () => boolean,
  ) {}

  adopted(socket: net.Socket): void {
    this.#waiting.add(socket);
    this.#connections++;
    this.#schedule();
    socket.once("close", () => {
      this.#connections--;
      this.#schedule();
      this.#served(socket);
    });
  }

  #served(socket: net.Socket): void {
    if (!this.#waiting.delete(socket) || this.#waiting.size > 0) return;
    const fns = this.#onNoneWaiting;
    this.#onNoneWaiting = [];
    for (const f of fns) f();
  }

  /** Resolves when every adopted connection brought its first request or closed, or after `maxMs`. */
  firstRequests(maxMs: number): Promise<void> {
    if (this.#waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, maxMs);
      this.#onNoneWaiting.push(() => { clearTimeout(timer); resolve(); });
    });
  }

  watch(server: net.Server): void {
    if (!(server instanceof http.Server)) return;
    server.prependListener("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (!isAdopted(req.socket)) return;
      const started = performance.now();
      const socket = req.socket;
      this.#served(socket);
      forwardedHeaders(req);
      if (this.shuttingDown()) res.shouldKeepAlive = false;
      const written = socket.bytesWritten;
      this.#inFlight++;
      this.#schedule();
      res.once("close", () => {
        this.#inFlight--;
        const status = res.headersSent ? res.statusCode : 0;
        this.#done.push([status, Math.round((performance.now() - started) * 100) / 100, Math.max(0, socket.bytesWritten - written)]);
        this.#schedule();
      });
    });
    // Upgrades are observed without adding an 'upgrade' listener: Node decides
    // from the app's own listeners whether an Upgrade request is an upgrade.
    const emit = server.emit;
    const onUpgrade = (req: http.IncomingMessage, socket: net.Socket): void => {
      if (!isAdopted(req.socket)) return;
      this.#upgraded++;
      this.#schedule();
      socket.once("close", () => {
        this.#upgraded--;
        this.#schedule();
      });
    };
    server.emit = function (this: net.Server, event: string | symbol, ...args: unknown[]): boolean {
      if (event === "upgrade" && server.listenerCount("upgrade") > 0) onUpgrade(args[0] as http.IncomingMessage, args[1] as net.Socket);
      return Reflect.apply(emit, this, [event, ...args]) as boolean;
    } as typeof server.emit;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    do {
      const done = this.#done.splice(0, MAX_REQS_PER_MESSAGE);
      this.send({ type: "reqs", inFlight: this.#inFlight, upgraded: this.#upgraded, connections: this.#connections, done });
    } while (this.#done.length > 0);
  }
}
