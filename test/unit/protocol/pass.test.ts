/**
 * Passes on the wire (docs/protocol.md "Passes"): the LEASE `pass` map and the
 * REQUEST_HEAD `pass` key, beyond the golden vectors (codec.test.ts).
 */
import test from "ava";
import { Packr } from "msgpackr";
import { ProtocolError } from "../../../core/src/errors.js";
import { decodePayload, encodeFrame, packInteger } from "../../../core/src/protocol/codec.js";
import type { Lease } from "../../../core/src/protocol/frames.js";
import { validateRequestHead } from "../../../core/src/protocol/validate.js";

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

const LEASE: Lease = {
  id: "a.1", pid: 7, reuse: true, head: Buffer.from("GET / HTTP/1.1\r\n\r\n"), chunked: false, addHeaders: [], deadline: 0,
};
const WIRE = { id: "a.1", pid: 7, reuse: true, head: Buffer.from("GET / HTTP/1.1\r\n\r\n"), chunked: false, add_headers: [], deadline: 0 };
const PASS = { ttl: 200, procs: ["a.1", "a.2"], restart_file: "/srv/app/tmp/restart.txt", restart_mtime: -1 };

function leaseWith(pass: unknown): Buffer {
  return packr.pack([6, { ...WIRE, pass }]);
}

test("packInteger() writes the smallest msgpack encoding at every boundary", (t) => {
  const cases: Array<[bigint, string]> = [
    [0n, "00"], [127n, "7f"], [128n, "cc80"], [255n, "ccff"], [256n, "cd0100"], [65535n, "cdffff"], [65536n, "ce00010000"],
    [4294967295n, "ceffffffff"], [4294967296n, "cf0000000100000000"], [(1n << 63n) - 1n, "cf7fffffffffffffff"],
    [-1n, "ff"], [-32n, "e0"], [-33n, "d0df"], [-128n, "d080"], [-129n, "d1ff7f"], [-32768n, "d18000"], [-32769n, "d2ffff7fff"],
    [-2147483648n, "d280000000"], [-2147483649n, "d3ffffffff7fffffff"],
  ];
  for (const [n, hex] of cases) t.is(packInteger(n).toString("hex"), hex, String(n));
});

test("a LEASE without pass decodes without one; nil counts as absent", (t) => {
  const plain = decodePayload(packr.pack([6, WIRE]));
  t.true(plain.kind === "lease" && plain.lease.pass === undefined);
  const nil = decodePayload(leaseWith(null));
  t.true(nil.kind === "lease" && nil.lease.pass === undefined);
});

test("a LEASE pass restart_mtime survives the round trip at ns precision", (t) => {
  for (const ns of [-1n, 0n, 1n, 1765012345123456789n, (1n << 63n) - 1n]) {
    const lease: Lease = { ...LEASE, pass: { ttlMs: 200, procs: ["a.1"], restartFile: "/r.txt", restartMtimeNs: ns } };
    const f = decodePayload(encodeFrame({ kind: "lease", lease }).subarray(4));
    t.true(f.kind === "lease" && f.lease.pass?.restartMtimeNs === ns, String(ns));
  }
});

test("decodePayload() rejects a malformed LEASE pass with a ProtocolError naming the field", (t) => {
  const bad: Array<[unknown, RegExp]> = [
    ["yes", /pass is a string/],
    [{ ...PASS, ttl: -1 }, /ttl/],
    [{ ...PASS, ttl: "200" }, /ttl/],
    [{ ...PASS, procs: [] }, /procs/],
    [{ ...PASS, procs: ["a", 1] }, /procs/],
    [{ ...PASS, procs: Array.from({ length: 17 }, (_, i) => `a.${i}`) }, /procs/],
    [{ ...PASS, restart_file: "tmp/restart.txt" }, /restart_file/],
    [{ ...PASS, restart_file: undefined }, /restart_file/],
    [{ ...PASS, restart_mtime: -2 }, /restart_mtime/],
    [{ ...PASS, restart_mtime: 1.5 }, /restart_mtime/],
    [{ ...PASS, restart_mtime: undefined }, /restart_mtime/],
  ];
  for (const [pass, msg] of bad) {
    t.throws(() => decodePayload(leaseWith(pass)), { instanceOf: ProtocolError, message: msg }, JSON.stringify(pass));
  }
});

const STICKY = {
  cookie: "_passenger_route", ids: ["11", "22"], set_cookie: ["_passenger_route=11; Path=/", "_passenger_route=22; Path=/"],
  set_cookie_https: ["_passenger_route=11; Path=/; Secure", "_passenger_route=22; Path=/; Secure"], add_headers: ["X-Powered-By", "Ferry"],
};

test("a LEASE pass sticky map decodes to one entry per process of procs", (t) => {
  const f = decodePayload(leaseWith({ ...PASS, sticky: STICKY }));
  t.true(f.kind === "lease");
  if (f.kind !== "lease") return;
  t.deepEqual(f.lease.pass?.sticky, {
    cookie: "_passenger_route", ids: ["11", "22"], setCookie: STICKY.set_cookie, setCookieHttps: STICKY.set_cookie_https, addHeaders: ["X-Powered-By", "Ferry"],
  });
  const nil = decodePayload(leaseWith({ ...PASS, sticky: null }));
  t.true(nil.kind === "lease" && nil.lease.pass !== undefined && nil.lease.pass.sticky === undefined);
});

test("decodePayload() rejects a malformed LEASE pass sticky map with a ProtocolError naming the field", (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [[], /pass sticky is a/],
    [{ ...STICKY, cookie: "" }, /sticky cookie/],
    [{ ...STICKY, cookie: 1 }, /sticky cookie/],
    [{ ...STICKY, ids: ["11"] }, /sticky ids must be an array of 2 strings/],
    [{ ...STICKY, ids: ["11", 22] }, /sticky ids/],
    [{ ...STICKY, set_cookie: ["a", "b", "c"] }, /sticky set_cookie must/],
    [{ ...STICKY, set_cookie_https: undefined }, /sticky set_cookie_https/],
    [{ ...STICKY, add_headers: ["X-Powered-By"] }, /sticky add_headers/],
  ];
  for (const [sticky, msg] of bad) {
    t.throws(() => decodePayload(leaseWith({ ...PASS, sticky })), { instanceOf: ProtocolError, message: msg }, JSON.stringify(sticky));
  }
});

const HEAD = { v: 3, method: "GET", uri: "/", app: { app_root: "/srv/app" } };

test("validateRequestHead() reads pass_sticky: false when absent, the boolean when present", (t) => {
  t.false(validateRequestHead(HEAD).passSticky);
  t.true(validateRequestHead({ ...HEAD, pass: true, pass_sticky: true }).passSticky);
  t.false(validateRequestHead({ ...HEAD, pass_sticky: false }).passSticky);
  t.throws(() => validateRequestHead({ ...HEAD, pass_sticky: "yes" }), { instanceOf: ProtocolError, message: /pass_sticky must be a boolean/ });
});

test("validateRequestHead() reads pass: false when absent, the boolean when present", (t) => {
  t.false(validateRequestHead(HEAD).pass);
  t.true(validateRequestHead({ ...HEAD, pass: true }).pass);
  t.false(validateRequestHead({ ...HEAD, pass: false }).pass);
  t.throws(() => validateRequestHead({ ...HEAD, pass: 1 }), { instanceOf: ProtocolError, message: /pass must be a boolean, got 1/ });
});
