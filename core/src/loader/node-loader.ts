/**
 * Ferry's Node loader: the program an app process runs,
 * `node node-loader.js <startup file>`, with the app root as cwd and
 * FERRY_LOADER_OPTIONS in the environment. It runs INSIDE the app process and
 * imports only node: built-ins and its own folder.
 *
 * 1. Read and remove FERRY_LOADER_OPTIONS; open the control channel (fd 3).
 * 2. Install reverse port binding (reverse-binding.ts) and the
 *    `PhusionPassenger` global (configure({ autoInstall }), 'exit' event).
 * 3. Run the startup file as Node runs a main module (CommonJS with
 *    require.main === module, or ES module for .mjs / "type": "module").
 * 4. Report "listen-called" and "listening" on the channel, and the event
 *    loop's utilisation and delay every LOOP_REPORT_INTERVAL_MS ("loop");
 *    on "shutdown" or EOF, shut down gracefully (docs/loader.md).
 * 5. Count the requests served without the core — sent with a pass
 *    (pass-requests.ts) or on handed-off connections (handoff-adopter.ts) —
 *    and report them ("reqs", request-reporter.ts).
 */
import Module from "node:module";
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import { EventEmitter } from "node:events";
import { fstatSync } from "node:fs";
import {
  CHANNEL_FD, LOADER_OPTIONS_ENV, LOOP_REPORT_INTERVAL_MS, MAX_MESSAGE_BYTES, parseCoreMessage, parseLoaderOptions, splitLines,
  type LoaderMessage, type LoaderOptions,
} from "./messages.js";
import { startLoopReports } from "./loop-monitor.js";
import { isAdopted, startHandoff, type Handoff } from "./handoff-adopter.js";
import { watchPassRequests } from "./pass-requests.js";
import { RequestReporter } from "./request-reporter.js";
import { ReverseBinding } from "./reverse-binding.js";

function fail(message: string): never {
  process.stderr.write(`Ferry loader: ${message}\n`);
  process.exit(1);
}

function readOptions(): LoaderOptions {
  const raw = process.env[LOADER_OPTIONS_ENV];
  delete process.env[LOADER_OPTIONS_ENV];
  if (raw === undefined) fail(`Cannot start: ${LOADER_OPTIONS_ENV} is not set (this program is started by Ferry)`);
  try {
    return parseLoaderOptions(raw);
  } catch (e: unknown) {
    return fail(e instanceof Error ? e.message : String(e));
  }
}

function openChannel(): net.Socket | undefined {
  try {
    fstatSync(CHANNEL_FD);
  } catch {
    return undefined;
  }
  const channel = new net.Socket({ fd: CHANNEL_FD, readable: true, writable: true });
  channel.unref();
  channel.on("error", () => { /* the core went away: handled as EOF via 'close' */ });
  return channel;
}

const options = readOptions();
const channel = openChannel();
if (channel === undefined) fail(`Cannot start: control channel fd ${CHANNEL_FD} is not open`);

function send(msg: LoaderMessage): void {
  if (channel !== undefined && !channel.destroyed && channel.writable) channel.write(`${JSON.stringify(msg)}\n`);
}

const binding = new ReverseBinding({
  socketPath: options.socketPath,
  socketDir: options.socketDir,
  onListenCalled: () => {
    listenCalled = true;
    const server = binding.installed;
    if (server !== undefined) {
      // Connection handoff: the deadlines apply from the moment the server listens.
      handoff?.prepare(server);
      // Passes are the Apache/nginx modules' (docs/protocol.md "Passes"); under `ferry start`
      // with connection handoff (options.handoff) none come, and handed-off requests lose a
      // client's marker with the forwarded headers: no listener to run per request.
      if (reporter !== undefined && options.handoff === undefined) watchPassRequests(server, reporter, isAdopted);
    }
    send({ type: "listen-called" });
  },
  onListening: (p) => {
    ready = true;
    send({ type: "listening", path: p });
  },
  warn: (m) => process.stderr.write(`${m}\n`),
});
binding.install();

/** Passenger's app-facing API, for apps written for Passenger. */
class PassengerApi extends EventEmitter {
  readonly options = { app_root: options.appRoot, startup_file: options.startupFile, socket: options.socketPath };
  configure(opts: unknown): void {
    if (typeof opts === "object" && opts !== null && "autoInstall" in opts) {
      binding.autoInstall = (opts as { autoInstall: unknown }).autoInstall !== false;
    }
  }
}
const passenger = new PassengerApi();
(globalThis as Record<string, unknown>)["PhusionPassenger"] = passenger;

let shuttingDown = false;
let handoff: Handoff | undefined;
/** Reports the requests served without the core (made with the control channel). */
let reporter: RequestReporter | undefined;

/** Graceful shutdown: the app's own hook if it has one, else close, drain, exit. */
function shutdown(): void {
  if (shuttingDown) return;
  shuttingDown = true;
  if (passenger.listenerCount("exit") > 0) {
    passenger.emit("exit");
    return;
  }
  if (process.listenerCount("message") > 0) {
    (process as EventEmitter).emit("message", "shutdown");
    return;
  }
  const installed = binding.installed;
  let installedClosed: Promise<void> = Promise.resolve();
  const closeIdle = (): void => {
    for (const s of binding.servers) {
      if ("closeIdleConnections" in s && typeof s.closeIdleConnections === "function") s.closeIdleConnections();
    }
  };
  for (const s of binding.servers) {
    // http.Server#close() also closes idle kept-alive connections at once; handed-off
    // ones stay open for a last request until handoff.settled() (no race with a
    // request the client is sending), so only stop listening here.
    const keepIdle = handoff !== undefined && s === installed && s instanceof http.Server;
    const closed = new Promise<void>((resolve) => {
      if (keepIdle) net.Server.prototype.close.call(s, () => resolve());
      else s.close(() => resolve());
    });
    if (s === installed) installedClosed = closed;
  }
  // Connection handoff: connections passed just before the retirement are served
  // first (each answer then closes its connection); an idle one is not closed
  // before its first request arrived.
  void (handoff?.settled() ?? Promise.resolve()).then(() => {
    closeIdle();
    // HTTP servers: exit once in-flight requests are answered (idle keep-alive and
    // upgraded connections do not hold the process). Other servers: once every
    // connection has ended. The core SIGKILLs after its shutdown deadline.
    const isHttp = installed instanceof http.Server || installed instanceof tls.Server;
    return isHttp ? binding.whenIdle() : installedClosed;
  }).then(() => process.exit(0));
}

if (channel !== undefined) {
  let buf = "";
  channel.setEncoding("utf8");
  channel.on("data", (chunk: string) => {
    buf += chunk;
    const { lines, rest } = splitLines(buf);
    buf = rest.length > MAX_MESSAGE_BYTES ? "" : rest;
    for (const line of lines) {
      if (parseCoreMessage(line)?.type === "shutdown") shutdown();
    }
  });
  channel.on("end", orphaned);
  channel.on("close", orphaned);
}

/** Longest an orphaned process keeps serving what it has (then it exits). */
const ORPHAN_MAX_MS = 60 * 60 * 1000;

/**
 * The channel closed: the core is gone (stopped, or killed and being
 * restarted). Requests already handed to this process — downloads, uploads,
 * WebSockets on the direct path (docs/protocol.md, "Core restarts") — go on:
 * stop accepting, keep serving every open connection until it closes, then
 * exit. Nobody reads our output any more and nobody will SIGKILL us, so
 * broken-pipe errors on stdout/stderr are ignored and the wait is capped.
 */
function orphaned(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);
  if (shuttingDown) return;
  if (passenger.listenerCount("exit") > 0 || process.listenerCount("message") > 0) {
    shutdown();
    return;
  }
  shuttingDown = true;
  const closed = [...binding.servers].map((s) => new Promise<void>((resolve) => { s.close(() => resolve()); }));
  // Kept-alive connections become idle between requests: close them as they do.
  const sweep = setInterval(() => {
    for (const s of binding.servers) {
      if ("closeIdleConnections" in s && typeof s.closeIdleConnections === "function") s.closeIdleConnections();
    }
  }, 500);
  sweep.unref();
  setTimeout(() => process.exit(0), ORPHAN_MAX_MS).unref();
  void Promise.all(closed).then(() => process.exit(0));
}

// Before the app is ready, tell the core which exception is about to end the
// process (Node still prints it to stderr and exits as usual).
let ready = false;
let listenCalled = false;
process.on("uncaughtExceptionMonitor", (err: unknown) => {
  if (ready) return;
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  send({ type: "error", step: listenCalled ? "listen" : "load", message: message.slice(0, 2000) });
});

if (channel !== undefined) {
  const stopReports = startLoopReports((r) => send({ type: "loop", ...r }), LOOP_REPORT_INTERVAL_MS);
  channel.once("close", stopReports);
  reporter = new RequestReporter(send);
  const r = reporter;
  // Requests finished just before a graceful exit (process.exit runs before the scheduled report).
  process.on("exit", () => r.exiting());
  handoff = startHandoff({
    server: () => binding.installed, reporter, warn: (m) => process.stderr.write(`${m}\n`), shuttingDown: () => shuttingDown, settings: options.handoff,
  });
}

process.title = `Ferry NodeApp: ${options.appRoot}`;
process.argv.splice(1, process.argv.length - 1, options.startupFile);
send({ type: "started", pid: process.pid });
Module.runMain(options.startupFile);
