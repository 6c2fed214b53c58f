/**
 * Peer traffic over TLS (PassengerAffinityTLSCertFile/KeyFile/CAFile): a
 * PeerServer with a certificate, a PeerClient trusting its CA forwards to it;
 * a client that does not trust the certificate declines (serves locally).
 */
import test from "ava";
import { execFileSync } from "node:child_process";
import { promises as fsp, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable, type Duplex } from "node:stream";
import { pino } from "pino";
import { PeerVerifier } from "../../../core/src/affinity/peer-auth.js";
import { PeerClient } from "../../../core/src/affinity/peer-client.js";
import { PeerServer } from "../../../core/src/affinity/peer-server.js";
import { makeAppOptions } from "../../../core/src/config/schema.js";
import type { Exchange, RequestHead } from "../../../core/src/exchange/exchange.js";
import { systemClock } from "../../../core/src/util/clock.js";

const SECRET = Buffer.from("a shared secret of enough bytes!");
const APP = makeAppOptions("/srv/app", { stickySessions: true });
const log = pino({ level: "silent" });
let dir = "";
let server: PeerServer | undefined;
let port = 0;
let ca: Buffer = Buffer.alloc(0);

test.before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), "ferry-peer-tls-"));
  const key = path.join(dir, "key.pem");
  const crt = path.join(dir, "crt.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", "1",
    "-subj", "/CN=ferry-test", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore", timeout: 30_000 });
  ca = readFileSync(crt);
  server = new PeerServer({
    verifier: new PeerVerifier(SECRET, systemClock),
    log,
    resolveApp: () => APP,
    hasProcess: () => true,
    tls: { cert: readFileSync(crt), key: readFileSync(key) },
    handler: (ex) => {
      ex.writeHead(200, ["Content-Type", "text/plain"]);
      ex.write(Buffer.from(`tls ok ${ex.head.uri}`));
      ex.end();
      return Promise.resolve();
    },
  });
  port = (await server.listen(0, "127.0.0.1")).port;
});

test.after.always(async () => {
  await server?.close(1_000);
  if (dir !== "") await fsp.rm(dir, { recursive: true, force: true });
});

function exchange(): { ex: Exchange; out: () => { status: number; body: string } } {
  let status = 0;
  const chunks: Buffer[] = [];
  const head: RequestHead = {
    method: "GET", uri: "/over-tls", proto: "HTTP/1.1", headers: ["Host", "x"], remoteAddr: "10.0.0.1", remotePort: 1,
    serverName: "x", serverPort: 443, https: true, hasBody: false, upgrade: false,
  };
  const ex: Exchange = {
    head, app: APP, body: Readable.from([]), signal: new AbortController().signal,
    writeHead: (s) => { status = s; },
    write: (c) => { chunks.push(Buffer.from(c)); return true; },
    waitDrain: () => Promise.resolve(),
    end: () => undefined,
    abort: () => undefined,
    upgraded: (): Duplex => { throw new Error("no"); },
    tunnelEnded: () => undefined,
  };
  return { ex, out: () => ({ status, body: Buffer.concat(chunks).toString() }) };
}

test("a client trusting the peer's CA forwards over TLS", async (t) => {
  const client = new PeerClient({ self: "a", secret: SECRET, log, clock: systemClock, ca });
  const { ex, out } = exchange();
  t.is(await client.forward(ex, { node: "b", peer: `127.0.0.1:${port}`, tls: true }, "1"), "served");
  t.deepEqual(out(), { status: 200, body: "tls ok /over-tls" });
  client.destroy();
});

test("a client that does not trust the peer's certificate declines (the request is served locally)", async (t) => {
  const client = new PeerClient({ self: "a", secret: SECRET, log, clock: systemClock });
  const { ex, out } = exchange();
  t.is(await client.forward(ex, { node: "b", peer: `127.0.0.1:${port}`, tls: true }, "1"), "declined");
  t.is(out().status, 0);
  client.destroy();
});

test("plain TCP to a TLS peer declines too", async (t) => {
  const client = new PeerClient({ self: "a", secret: SECRET, log, clock: systemClock, connectTimeoutMs: 3_000 });
  const { ex } = exchange();
  t.is(await client.forward(ex, { node: "b", peer: `127.0.0.1:${port}`, tls: false }, "1"), "declined");
  client.destroy();
});
