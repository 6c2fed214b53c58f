/**
 * The direct path (docs/protocol.md, "Version 3: leases"): the request path
 * has checked out a process; instead of relaying the exchange, hand the module
 * a lease — the process, the request head to write, and a connected socket
 * (or "reuse yours") — and wait for its DONE report. The core never sees the
 * bodies here; it keeps the accounting (the session is released with the
 * report's outcome).
 *
 *   Step one   the connection: the module's own idle one (`held`), else connect
 *              (peer credentials checked, os/app-socket.ts); a process that
 *              cannot be connected to costs another checkout (RetryCheckout)
 *   Step two   the lease: head bytes, body framing, added response headers, deadline,
 *              and a pass when the head asked for one and policy/pass.ts grants it
 *   Step three send it (descriptor attached) and wait for DONE
 */
import net from "node:net";
import type { AppOptions } from "../config/schema.js";
import { connectAppSocket } from "../os/app-socket.js";
import { MAX_PASS_PROCS, PASS_TTL_MS, type Lease, type Pass, type PassSticky } from "../protocol/frames.js";
import { passDecision } from "../policy/pass.js";
import type { AppAddress, GroupPassView, Session, SessionOutcome } from "../pool/session.js";
import type { LeaseTaker, RequestHead } from "./exchange.js";
import { CONNECT_CODES, RetryCheckout, appError, errCode, sendError, type RequestContext } from "./context.js";
import { addedResponseHeaders, appRequestHeaders, stickySetCookie } from "./headers.js";
import { LeaseNotSentError } from "./exchange.js";
import { socketFd } from "../os/socket-fd.js";

/** How long connecting to an app socket may take (a Unix connect is immediate unless the backlog is full). */
const CONNECT_TIMEOUT_MS = 10_000;

/** Whether this exchange takes the direct path (docs/protocol.md, "Which requests take which path"). */
export function takesDirectPath(lease: LeaseTaker | undefined, app: AppOptions): lease is LeaseTaker {
  // Friendly error pages need the core to see the app's failure and output.
  return lease !== undefined && !app.friendlyErrorPages;
}

/** The exact request head the app receives: request line, the forwarded headers, blank line. */
export function leaseRequestHead(head: RequestHead): { bytes: Buffer; chunked: boolean } {
  const headers = appRequestHeaders(head);
  let text = `${head.method} ${head.uri} HTTP/1.1\r\n`;
  let chunked = false;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i] ?? "";
    const value = headers[i + 1] ?? "";
    if (name === "Transfer-Encoding" && value === "chunked") chunked = true;
    text += `${name}: ${value}\r\n`;
  }
  text += "\r\n";
  // Header values are Node byte strings (one char per byte): latin1 gives the bytes back.
  return { bytes: Buffer.from(text, "latin1"), chunked };
}

/**
 * The pass for this LEASE (docs/protocol.md "Passes"), or undefined: asked
 * for by the head and granted by policy/pass.ts on the group's state now.
 */
export function leasePass(ctx: RequestContext, lease: LeaseTaker, session: Session): Pass | undefined {
  if (!lease.pass || session.passView === undefined) return undefined;
  const { ex, deps } = ctx;
  const app = ex.app;
  const view = session.passView();
  const d = passDecision({
    asked: lease.pass,
    directPath: takesDirectPath(lease, app),
    nodeLoader: app.appType === "node",
    upgrade: ex.head.upgrade,
    stickySessions: app.stickySessions,
    stickyAsked: lease.passSticky,
    maxRequests: app.maxRequests,
    maxRequestTimeMs: app.maxRequestTimeMs,
    maxConcurrencyPerProcess: app.maxConcurrentRequestsPerProcess,
    sharedAffinity: deps.affinity !== undefined,
    friendlyErrorPages: app.friendlyErrorPages,
    queueLength: view.queueLength,
    restarting: view.restarting,
    alwaysRestart: view.alwaysRestart,
    restartFileKnown: view.restartMtimeNs !== undefined,
    leaseId: session.leaseId,
    ready: view.ready,
    maxProcs: MAX_PASS_PROCS,
  });
  if (!d.grant) return undefined;
  const base = { ttlMs: PASS_TTL_MS, procs: d.procs, restartFile: view.restartFile, restartMtimeNs: view.restartMtimeNs ?? -1n };
  return app.stickySessions ? { ...base, sticky: passSticky(app, d.procs, view) } : base;
}

/**
 * LEASE `pass.sticky`: the cookie, each named process's sticky id and the
 * Set-Cookie values pinning a client to it (as addedResponseHeaders() adds
 * them to every response of the app), and the other headers a pass response gets.
 */
export function passSticky(app: AppOptions, procs: readonly string[], view: GroupPassView): PassSticky {
  const ids: string[] = [];
  const setCookie: string[] = [];
  const setCookieHttps: string[] = [];
  for (const id of procs) {
    const stickyId = view.readyStickyIds[view.ready.indexOf(id)] ?? "";
    ids.push(stickyId);
    setCookie.push(stickySetCookie(app, stickyId, false));
    setCookieHttps.push(stickySetCookie(app, stickyId, true));
  }
  return { cookie: app.stickySessionsCookieName, ids, setCookie, setCookieHttps, addHeaders: addedResponseHeaders(app, "", false) };
}

/** Connect to an app process (Unix socket with its peer check, or loopback TCP). */
function connectApp(address: AppAddress, signal: AbortSignal): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    let socket: net.Socket | undefined;
    let settled = false;
    const finish = (err: Error | null, s?: net.Socket): void => {
      if (settled) {
        s?.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      if (err !== null || s === undefined) {
        socket?.destroy();
        reject(err ?? new Error("Cannot connect to app: no socket"));
      } else resolve(s);
    };
    const onAbort = (): void => finish(Object.assign(new Error("Cannot connect to app: the client went away"), { code: "ABORT_ERR" }));
    const timer = setTimeout(
      () => finish(Object.assign(new Error(`Cannot connect to app: no connection within ${CONNECT_TIMEOUT_MS} ms`), { code: "ETIMEDOUT" })),
      CONNECT_TIMEOUT_MS,
    );
    signal.addEventListener("abort", onAbort, { once: true });
    if (address.kind === "unix") {
      socket = connectAppSocket(address.path, (err, s) => finish(err, s));
    } else {
      const s = net.connect({ host: address.host, port: address.port });
      socket = s;
      s.once("error", (e: Error) => finish(e));
      s.once("connect", () => {
        s.removeAllListeners("error");
        s.on("error", () => undefined);
        finish(null, s);
      });
    }
  });
}

/**
 * Serve the exchange on the direct path. Returns the session's outcome, or
 * "relay" when the lease could not be handed over (nothing was sent: the
 * caller relays the exchange on the same session). Throws RetryCheckout when
 * the process cannot be connected to and another checkout is allowed.
 */
export async function leaseExchange(
  ctx: RequestContext, lease: LeaseTaker, session: Session, allowRetry: boolean,
): Promise<SessionOutcome | "relay"> {
  const { ex } = ctx;

  // Step one: the connection.
  const reuse = lease.held.includes(session.leaseId);
  let appSocket: net.Socket | undefined;
  if (!reuse) {
    try {
      appSocket = await connectApp(session.address, ex.signal);
    } catch (e: unknown) {
      if (ex.signal.aborted) return "client_aborted";
      const code = errCode(e);
      if (allowRetry && (CONNECT_CODES.has(code) || session.processGone.aborted)) {
        throw new RetryCheckout(appError(e, session, "connect to the app"));
      }
      sendError(ctx, appError(e, session, "connect to the app"));
      return "app_error";
    }
  }

  // Step two: what the module needs to talk to the app.
  const { bytes, chunked } = leaseRequestHead(ex.head);
  const pass = leasePass(ctx, lease, session);
  const plan: Lease = {
    id: session.leaseId,
    pid: session.pid,
    reuse,
    head: bytes,
    chunked,
    addHeaders: addedResponseHeaders(ex.app, session.stickyId, ex.head.https),
    deadline: ex.app.maxRequestTimeMs,
    ...(pass === undefined ? {} : { pass }),
  };

  // Step three: hand it over and wait for the report.
  if (ex.head.upgrade) session.markUpgraded(); // a WebSocket keeps the process, not a request slot
  let report;
  try {
    const fd = appSocket === undefined ? undefined : socketFd(appSocket);
    if (appSocket !== undefined && fd === undefined) return "relay";
    const done = lease.take(plan, fd);
    session.leased?.(pass !== undefined);
    // The module holds its own copy of the descriptor now (or the send failed):
    // close ours and let it go, as a WebSocket's lease waits here until the
    // tunnel closes.
    appSocket?.destroy();
    appSocket = undefined;
    report = await done;
  } catch (e: unknown) {
    appSocket?.destroy();
    if (e instanceof LeaseNotSentError) {
      ctx.log.debug({ pid: session.pid }, `${e.message}; relaying the exchange`);
      return "relay";
    }
    throw e;
  }
  if (report === undefined) return "client_aborted";
  if (report.outcome === "app_error" || report.outcome === "timeout") {
    ctx.log.warn({ pid: session.pid, status: report.status, outcome: report.outcome },
      `The exchange with app process ${session.pid} ended with ${report.outcome} (${ex.head.method} ${ex.head.uri})`);
  }
  return report.outcome;
}
