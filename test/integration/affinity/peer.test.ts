/**
 * The peer transport on real sockets: a PeerServer (what a core listens on with
 * PassengerAffinityListen) with a stub request path, and a PeerClient that
 * forwards exchanges to it. Unauthenticated, wrongly signed and replayed
 * forwards are refused with a log line; signed ones stream both ways, bodies
 * and upgrades included; a gone process or an unreachable peer is "declined"
 * before the body is consumed.
 */
import test from "ava";
import http from "node:http";
import net from "node:net";
import { Duplex, PassThrough, Readable } from "node:stream";
import { pino } from "pino";
import { encodeMeta, newNonce, signRequest, PeerVerifier, META_HEADER, SIGNATURE_HEADER } from "../../../core/src/affinity/peer-auth.js";
import { PeerClient } from "../../../core/src/affinity/peer-client.js";
import { PeerServer } from "../../../core/src/affinity/peer-server.js";
import { makeAppOptions } from "../../../core/src/config/schema.js";
import type { Exchange, RequestHead } from "../../../core/src/exchange/exchange.js";
import { systemClock } from "../../../core/src/util/clock.js";

const SECRET = Buffer.from("a shared secret of enough bytes!");
const APP = makeAppOptions("/srv/app", { stickySessions: true });
const lines: string[] = [];
const logStream = new PassThrough();
logStream.on("data", (d: Buffer) => lines.push(...d.toString().split("\n").filter((l) => l !== "")));
const log = pino({ level: "debug" }, logStream);

let served = 0;
const server = new PeerServer({
  verifier: new PeerVerifier(SECRET, systemClock),
  log,
  resolveApp: (name) => (name === APP.appGroupName ? APP : undefined),
  hasProcess: (_app, sticky) => sticky === "42",
  handler: async (ex) => {
    served++;
    if (ex.head.upgrade) {
      ex.writeHead(101, ["Connection", "Upgrade", "Upgrade", "echo", "X-Pid", "4242"]);
      const s = ex.upgraded();
      s.on("data", (d: Buffer) => s.write(Buffer.concat([Buffer.from("echo:"), d])));
      s.on("end", () => s.end());
      await new Promise((r) => s.once("close", r));
      return;
    }
    if (ex.head.uri === "/fake-gone") {
      // An app imitating the peer's "gone" answer must not make the sender run the request again.
      ex.writeHead(421, ["X-Ferry-Peer", "gone", "Content-Length", "0"]);
      ex.end();
      return;
    }
    let bytes = 0;
    for await (const c of ex.body) bytes += (c as Buffer).length;
    const body = Buffer.from(JSON.stringify({ head: ex.head, bytes, app: ex.app.appGroupName }));
    ex.writeHead(200, ["Content-Type", "application/json", "Set-Cookie", "_passenger_route=42; Path=/"]);
    ex.write(body);
    ex.end();
  },
});
let port = 0;
test.before(async () => {
  port = (await server.listen(0, "127.0.0.1")).port;
});
const client = new PeerClient({ self: "a", secret: SECRET, log, clock: systemClock });
test.after.always(async () => {
  client.destroy();
  await server.close(1_000);
});

/** Two connected in-memory duplexes (a stand-in for the client connection after a 101). */
function duplexPair(): { left: Duplex; right: Duplex } {
  const ends: Duplex[] = [];
  const mk = (other: () => Duplex | undefined): Duplex => new Duplex({
    read() {
      // pushed by the other end
    },
    write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void) {
      other()?.push(chunk);
      cb();
    },
    final(cb: (e?: Error | null) => void) {
      other()?.push(null);
      cb();
    },
  });
  const left = mk(() => ends[1]);
  const right = mk(() => ends[0]);
  ends.push(left, right);
  return { left, right };
}

/** A minimal in-memory Exchange that records what the front end would send. */
class MemExchange implements Exchange {
  readonly signal: AbortSignal;
  readonly ac = new AbortController();
  status = 0;
  headers: readonly string[] = [];
  readonly chunks: Buffer[] = [];
  ended = false;
  aborted = "";
  bodyRead = false;
  readonly body: Readable;
  readonly client: Duplex;
  readonly #server: Duplex;

  constructor(readonly head: RequestHead, body: Buffer[] = [], readonly app = APP) {
    this.signal = this.ac.signal;
    const rest = [...body];
    this.body = new Readable({
      read: () => {
        this.bodyRead = true;
        this.body.push(rest.shift() ?? null);
      },
    });
    const pair = duplexPair();
    this.#server = pair.left;
    this.client = pair.right;
  }

  writeHead(status: number, headers: readonly string[]): void {
    this.status = status;
    this.headers = headers;
  }
  write(chunk: Uint8Array): boolean {
    this.chunks.push(Buffer.from(chunk));
    return true;
  }
  waitDrain(): Promise<void> {
    return Promise.resolve();
  }
  end(): void {
    this.ended = true;
  }
  abort(code: string): void {
    this.aborted = code;
  }
  upgraded(): Duplex {
    return this.#server;
  }
  /** What tunnelEnded() reported (-1: not called). */
  tunnelled = -1;
  tunnelEnded(bytesToClient: number): void {
    this.tunnelled = bytesToClient;
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

function head(over: Partial<RequestHead> = {}): RequestHead {
  return {
    method: "GET", uri: "/hit?s=1", proto: "HTTP/1.1",
    headers: ["Host", "example.com", "Cookie", "_passenger_route=42", "Accept", "*/*"],
    remoteAddr: "10.1.2.3", remotePort: 4000, serverName: "example.com", serverPort: 80, https: false,
    hasBody: false, upgrade: false, ...over,
  };
}

const target = (): { node: string; peer: string; tls: boolean } => ({ node: "b", peer: `127.0.0.1:${port}`, tls: false });

function raw(reqText: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port });
    let out = "";
    s.on("data", (d: Buffer) => { out += d.toString(); });
    s.on("end", () => resolve(out));
    s.on("close", () => resolve(out));
    s.on("error", reject);
    s.setTimeout(10_000, () => s.destroy());
    s.write(reqText);
  });
}

function waitLog(re: RegExp): Promise<string> {
  const until = Date.now() + 10_000;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const l = lines.find((x) => re.test(x));
      if (l !== undefined) resolve(l);
      else if (Date.now() > until) reject(new Error(`no log line ${re}`));
      else setTimeout(check, 20);
    };
    check();
  });
}

test.serial("a forward without signature is refused with 403 and a log line", async (t) => {
  const before = served;
  const out = await raw("GET /hit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  t.regex(out, /^HTTP\/1\.1 403 /);
  t.regex(out, /x-ferry-peer: refused/i);
  t.is(served, before, "the request path never saw it");
  t.regex(await waitLog(/Refusing forwarded request.*no signature/), /no signature/);
});

test.serial("a forward signed with another secret is refused with 403 and a log line", async (t) => {
  const before = served;
  const meta = encodeMeta({
    from: "evil", app: APP.appGroupName, sticky: "42", ts: Date.now(), nonce: newNonce(), proto: "HTTP/1.1",
    remoteAddr: "1.2.3.4", remotePort: 1, serverName: "x", serverPort: 80, https: false, hasBody: false, upgrade: false,
  });
  const sig = signRequest(Buffer.from("not the shared secret at all!!!!"), "GET", "/hit", meta, ["Host", "x"]);
  const out = await raw(`GET /hit HTTP/1.1\r\nHost: x\r\n${META_HEADER}: ${meta}\r\n${SIGNATURE_HEADER}: ${sig}\r\nConnection: close\r\n\r\n`);
  t.regex(out, /^HTTP\/1\.1 403 /);
  t.is(served, before);
  await waitLog(/Refusing forwarded request.*wrong signature/);
  t.pass();
});

test.serial("a replayed forward is refused even though its signature is right", async (t) => {
  const meta = encodeMeta({
    from: "a", app: APP.appGroupName, sticky: "42", ts: Date.now(), nonce: newNonce(), proto: "HTTP/1.1",
    remoteAddr: "1.2.3.4", remotePort: 1, serverName: "x", serverPort: 80, https: false, hasBody: false, upgrade: false,
  });
  const sig = signRequest(SECRET, "GET", "/hit", meta, ["Host", "x"]);
  const text = `GET /hit HTTP/1.1\r\nHost: x\r\n${META_HEADER}: ${meta}\r\n${SIGNATURE_HEADER}: ${sig}\r\nConnection: close\r\n\r\n`;
  t.regex(await raw(text), /^HTTP\/1\.1 200 /);
  t.regex(await raw(text), /^HTTP\/1\.1 403 /);
  await waitLog(/replayed nonce/);
});

test.serial("an unsigned upgrade is refused", async (t) => {
  const out = await raw("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  t.regex(out, /^HTTP\/1\.1 403 /);
});

test.serial("PeerClient.forward() relays a signed request and the answer, with the client's context", async (t) => {
  const ex = new MemExchange(head());
  t.is(await client.forward(ex, target(), "42"), "served");
  t.is(ex.status, 200);
  t.true(ex.ended);
  const got = JSON.parse(ex.text) as { head: RequestHead; app: string };
  t.is(got.app, APP.appGroupName);
  t.is(got.head.remoteAddr, "10.1.2.3");
  t.is(got.head.uri, "/hit?s=1");
  t.deepEqual(got.head.headers, ["Host", "example.com", "Cookie", "_passenger_route=42", "Accept", "*/*"]);
  t.true(ex.headers.includes("Set-Cookie"));
});

test.serial("PeerClient.forward() streams a request body once the peer accepted it", async (t) => {
  const body = [Buffer.alloc(100_000, 1), Buffer.alloc(50_000, 2)];
  const ex = new MemExchange(head({ method: "POST", hasBody: true, headers: ["Host", "example.com", "Content-Length", "150000"] }), body);
  t.is(await client.forward(ex, target(), "42"), "served");
  t.is((JSON.parse(ex.text) as { bytes: number }).bytes, 150_000);
});

test.serial("PeerClient.forward() declines without reading the body when the process is gone", async (t) => {
  const ex = new MemExchange(head({ method: "POST", hasBody: true, headers: ["Host", "example.com", "Content-Length", "5"] }), [Buffer.from("hello")]);
  t.is(await client.forward(ex, target(), "77"), "declined");
  t.false(ex.bodyRead, "the body is left for the local request path");
  t.is(ex.status, 0);
});

test.serial("PeerClient.forward() relays an app's own 421 + X-Ferry-Peer as an answer, not as a refusal", async (t) => {
  const before = served;
  const ex = new MemExchange(head({ uri: "/fake-gone" }));
  t.is(await client.forward(ex, target(), "42"), "served");
  t.is(ex.status, 421);
  t.is(served, before + 1, "the app ran the request exactly once");
  t.false(ex.headers.map((h) => h.toLowerCase()).includes("x-ferry-peer"));
});

test.serial("PeerClient.forward() declines when the app is not served there", async (t) => {
  const ex = new MemExchange(head(), [], makeAppOptions("/srv/other"));
  t.is(await client.forward(ex, target(), "42"), "declined");
});

test.serial("PeerClient.forward() declines when the peer is unreachable", async (t) => {
  const dead = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a !== null ? a.port : 1));
    });
  });
  const ex = new MemExchange(head());
  t.is(await client.forward(ex, { node: "c", peer: `127.0.0.1:${dead}`, tls: false }, "42"), "declined");
});

test.serial("PeerClient.forward() refused by a peer with another secret declines (served locally)", async (t) => {
  const other = new PeerClient({ self: "x", secret: Buffer.from("a different secret, 32 bytes long"), log, clock: systemClock });
  const ex = new MemExchange(head());
  t.is(await other.forward(ex, target(), "42"), "declined");
  other.destroy();
});

test.serial("PeerClient.forward() tunnels an upgrade both ways and reports the bytes sent to the client", async (t) => {
  const ex = new MemExchange(head({ uri: "/ws", upgrade: true, headers: ["Host", "example.com", "Upgrade", "echo", "Cookie", "_passenger_route=42"] }));
  const done = client.forward(ex, target(), "42");
  const reply = await new Promise<string>((resolve) => {
    const check = (): void => {
      if (ex.status === 101) {
        ex.client.once("data", (d: Buffer) => resolve(d.toString()));
        ex.client.write("ping");
      } else setTimeout(check, 10);
    };
    check();
  });
  t.is(reply, "echo:ping");
  t.true(ex.headers.includes("X-Pid"));
  ex.client.end();
  t.is(await done, "served");
  t.is(ex.tunnelled, "echo:ping".length, "the bytes the owner sent through the tunnel are reported");
});

test.serial("a stock HTTP client cannot use the peer port", async (t) => {
  const r = await new Promise<number>((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path: "/hit", agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", reject);
  });
  t.is(r, 403);
});
