/**
 * Head builder parity (docs/protocol.md "Passes"): test/fixtures/protocol/app-heads.txt
 * lists request heads (the fields of a REQUEST_HEAD) and the exact bytes the
 * app must receive. The core's leaseRequestHead() must produce them byte for
 * byte; apache-module's C test holds ferry_app_head() to the same file. A
 * case with `pass 1` is what the module writes with a pass: the core's head
 * with `X-Ferry-Pass: 1` as the last header.
 */
import test from "ava";
import { readFileSync } from "node:fs";
import path from "node:path";
import { leaseRequestHead } from "../../../core/src/exchange/lease.js";
import type { RequestHead } from "../../../core/src/protocol/request-head.js";
import { VECTOR_DIR } from "../../helpers/protocol-vectors.js";

interface AppHeadCase {
  readonly name: string;
  readonly head: RequestHead;
  readonly pass: boolean;
  readonly chunked: boolean;
  /** The expected head bytes as a latin1 string. */
  readonly expected: string;
}

const FIELDS = ["method", "uri", "proto", "remote_addr", "remote_port", "server_name", "server_port", "https", "has_body", "upgrade", "pass", "chunked"];

/** Parse the fixture (bytes read as latin1: one char per byte, as Node's header strings are). */
function parseCases(text: string): AppHeadCase[] {
  const out: AppHeadCase[] = [];
  let fields: Map<string, string> | undefined;
  let headers: string[] = [];
  let lines: string[] = [];
  let name = "";
  for (const [i, line] of text.split("\n").entries()) {
    if (line === "" || line.startsWith("#")) continue;
    const sp = line.indexOf(" ");
    const key = sp < 0 ? line : line.slice(0, sp);
    const value = sp < 0 ? "" : line.slice(sp + 1);
    const where = `app-heads.txt line ${i + 1}`;
    if (key === "case") {
      if (fields !== undefined) throw new Error(`${where}: case inside a case`);
      fields = new Map();
      headers = [];
      lines = [];
      name = value;
      continue;
    }
    if (fields === undefined) throw new Error(`${where}: ${key} outside a case`);
    if (key === "header") {
      const colon = value.indexOf(":");
      if (colon <= 0) throw new Error(`${where}: header without a name`);
      const v = value.slice(colon + 1);
      headers.push(value.slice(0, colon), v.startsWith(" ") ? v.slice(1) : v);
    } else if (key === "head") {
      lines.push(value);
    } else if (key === "end") {
      const f = (k: string): string => {
        const v = fields?.get(k);
        if (v === undefined) throw new Error(`${where}: case "${name}" lacks ${k}`);
        return v;
      };
      const flag = (k: string): boolean => f(k) === "1";
      out.push({
        name,
        head: {
          method: f("method"), uri: f("uri"), proto: f("proto"), headers,
          remoteAddr: f("remote_addr"), remotePort: Number(f("remote_port")), serverName: f("server_name"), serverPort: Number(f("server_port")),
          https: flag("https"), hasBody: flag("has_body"), upgrade: flag("upgrade"),
        },
        pass: flag("pass"),
        chunked: flag("chunked"),
        expected: lines.map((l) => `${l}\r\n`).join("") + "\r\n",
      });
      fields = undefined;
    } else if (FIELDS.includes(key)) {
      fields.set(key, value);
    } else {
      throw new Error(`${where}: unknown key ${key}`);
    }
  }
  if (fields !== undefined) throw new Error(`app-heads.txt: case "${name}" has no end`);
  return out;
}

const CASES = parseCases(readFileSync(path.join(VECTOR_DIR, "app-heads.txt")).toString("latin1"));

test("app-heads.txt holds cases, some with a pass and some chunked", (t) => {
  t.true(CASES.length >= 15);
  t.true(CASES.some((c) => c.pass));
  t.true(CASES.some((c) => c.chunked));
  t.true(CASES.some((c) => c.head.upgrade));
});

for (const c of CASES) {
  test(`leaseRequestHead() gives the exact head of app-heads.txt case "${c.name}"`, (t) => {
    const { bytes, chunked } = leaseRequestHead(c.head);
    // With a pass the module adds the marker as the last header, after the core's rules.
    const head = c.pass ? Buffer.concat([bytes.subarray(0, -2), Buffer.from("X-Ferry-Pass: 1\r\n\r\n")]) : bytes;
    t.is(head.toString("latin1"), c.expected);
    t.is(chunked, c.chunked);
  });
}
