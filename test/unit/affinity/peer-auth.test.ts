import test from "ava";
import {
  NonceCache, PeerVerifier, decodeMeta, encodeMeta, headersDigest, newNonce, signRequest, type PeerMeta,
} from "../../../core/src/affinity/peer-auth.js";

const secret = Buffer.from("0123456789abcdef0123456789abcdef");
let now = 1_700_000_000_000;
const clock = { now: () => now };

function meta(over: Partial<PeerMeta> = {}): PeerMeta {
  return {
    from: "a", app: "/srv/app (production)", sticky: "42", ts: now, nonce: newNonce(), proto: "HTTP/1.1",
    remoteAddr: "10.0.0.9", remotePort: 5555, serverName: "example.com", serverPort: 80, https: false,
    hasBody: false, upgrade: false, ...over,
  };
}

const headers = ["Host", "example.com", "Cookie", "_passenger_route=42", "Accept", "*/*"];

function signed(m: PeerMeta, h: readonly string[] = headers, key: Uint8Array = secret): { metaText: string; signature: string } {
  const metaText = encodeMeta(m);
  return { metaText, signature: signRequest(key, "GET", "/x?y=1", metaText, h) };
}

test("PeerVerifier.verify() accepts a correctly signed request and returns its meta", (t) => {
  const v = new PeerVerifier(secret, clock);
  const m = meta();
  const r = v.verify({ method: "GET", uri: "/x?y=1", headers, ...signed(m) });
  t.true(r.ok);
  if (r.ok) t.deepEqual(r.meta, m);
});

test("PeerVerifier.verify() refuses a request without signature", (t) => {
  const v = new PeerVerifier(secret, clock);
  const r = v.verify({ method: "GET", uri: "/x?y=1", headers, metaText: encodeMeta(meta()), signature: undefined });
  t.deepEqual(r, { ok: false, reason: "no signature" });
});

test("PeerVerifier.verify() refuses a signature made with another secret", (t) => {
  const v = new PeerVerifier(secret, clock);
  const r = v.verify({ method: "GET", uri: "/x?y=1", headers, ...signed(meta(), headers, Buffer.from("another secret of 32 bytes......")) });
  t.deepEqual(r, { ok: false, reason: "wrong signature" });
});

const tampered: ReadonlyArray<{ title: string; change: (i: { method: string; uri: string; headers: string[]; metaText: string }) => void }> = [
  { title: "method", change: (i) => { i.method = "POST"; } },
  { title: "uri", change: (i) => { i.uri = "/admin"; } },
  { title: "a header value", change: (i) => { i.headers[3] = "_passenger_route=43"; } },
  { title: "an added header", change: (i) => { i.headers.push("X-Admin", "1"); } },
  { title: "the meta (other sticky id)", change: (i) => { i.metaText = encodeMeta({ ...meta(), sticky: "43" }); } },
];
for (const c of tampered) {
  test(`PeerVerifier.verify() refuses a request whose ${c.title} was changed after signing`, (t) => {
    const v = new PeerVerifier(secret, clock);
    const s = signed(meta());
    const input = { method: "GET", uri: "/x?y=1", headers: [...headers], metaText: s.metaText };
    c.change(input);
    const r = v.verify({ ...input, signature: s.signature });
    t.false(r.ok);
  });
}

test("PeerVerifier.verify() ignores hop-by-hop headers (they change per hop)", (t) => {
  const v = new PeerVerifier(secret, clock);
  const s = signed(meta());
  const r = v.verify({ method: "GET", uri: "/x?y=1", headers: ["Connection", "keep-alive", ...headers, "Expect", "100-continue"], ...s });
  t.true(r.ok);
});

test("PeerVerifier.verify() refuses a replayed request", (t) => {
  const v = new PeerVerifier(secret, clock);
  const s = signed(meta());
  t.true(v.verify({ method: "GET", uri: "/x?y=1", headers, ...s }).ok);
  t.deepEqual(v.verify({ method: "GET", uri: "/x?y=1", headers, ...s }), { ok: false, reason: "replayed nonce" });
});

test("PeerVerifier.verify() refuses a request outside the time window", (t) => {
  const v = new PeerVerifier(secret, clock, 30_000);
  const old = signed(meta({ ts: now - 31_000 }));
  const r = v.verify({ method: "GET", uri: "/x?y=1", headers, ...old });
  t.false(r.ok);
  if (!r.ok) t.regex(r.reason, /outside/);
  const future = signed(meta({ ts: now + 31_000 }));
  t.false(v.verify({ method: "GET", uri: "/x?y=1", headers, ...future }).ok);
  t.true(v.verify({ method: "GET", uri: "/x?y=1", headers, ...signed(meta({ ts: now - 29_000 })) }).ok);
});

test("decodeMeta() rejects malformed input", (t) => {
  t.is(typeof decodeMeta(undefined), "string");
  t.is(typeof decodeMeta("not base64!"), "string");
  t.is(typeof decodeMeta(Buffer.from("[1]").toString("base64url")), "string");
  t.is(typeof decodeMeta(encodeMeta({ ...meta(), nonce: "xyz" })), "string");
  const { ts: _ts, ...noTs } = meta();
  t.is(typeof decodeMeta(Buffer.from(JSON.stringify(noTs)).toString("base64url")), "string");
});

test("headersDigest() depends on order and values but not on name case", (t) => {
  t.is(headersDigest(["A", "1", "B", "2"]), headersDigest(["a", "1", "b", "2"]));
  t.not(headersDigest(["A", "1", "B", "2"]), headersDigest(["B", "2", "A", "1"]));
  t.not(headersDigest(["A", "1"]), headersDigest(["A", "2"]));
});

test("NonceCache.add() forgets nonces after they expire and stays bounded", (t) => {
  const c = new NonceCache(3);
  t.true(c.add("n1", 100, 0));
  t.false(c.add("n1", 100, 50));
  t.true(c.add("n1", 300, 150));
  for (const n of ["a", "b", "c", "d", "e"]) t.true(c.add(n, 1000, 200));
  t.true(c.size <= 3, `size ${c.size}`);
  t.false(c.add("e", 1000, 200), "the newest nonce is still remembered");
});
