import test from "ava";
import { parseListenArgs } from "../../../core/src/loader/listen-args.js";

const cb = (): void => undefined;

const cases: { title: string; args: unknown[]; target: unknown; backlog?: number; hasCb: boolean }[] = [
  { title: "no arguments", args: [], target: { kind: "port", port: undefined, host: undefined }, hasCb: false },
  { title: "a port and callback", args: [3000, cb], target: { kind: "port", port: 3000, host: undefined }, hasCb: true },
  { title: "a numeric string port", args: ["8080"], target: { kind: "port", port: 8080, host: undefined }, hasCb: false },
  { title: "port, host, backlog, callback", args: [80, "0.0.0.0", 511, cb], target: { kind: "port", port: 80, host: "0.0.0.0" }, backlog: 511, hasCb: true },
  { title: "port and backlog", args: [80, 100], target: { kind: "port", port: 80, host: undefined }, backlog: 100, hasCb: false },
  { title: "an options object with port and host", args: [{ port: 1, host: "::", backlog: 5 }, cb], target: { kind: "port", port: 1, host: "::" }, backlog: 5, hasCb: true },
  { title: "a Unix path", args: ["/tmp/app.sock", cb], target: { kind: "path", path: "/tmp/app.sock" }, hasCb: true },
  { title: "an options object with a path", args: [{ path: "/tmp/x.sock" }], target: { kind: "path", path: "/tmp/x.sock" }, hasCb: false },
  { title: "'passenger'", args: ["passenger", cb], target: { kind: "passenger" }, hasCb: true },
  { title: "'/passenger'", args: ["/passenger"], target: { kind: "passenger" }, hasCb: false },
  { title: "{ path: 'passenger' }", args: [{ path: "passenger" }], target: { kind: "passenger" }, hasCb: false },
  { title: "an fd", args: [{ fd: 3 }], target: { kind: "handle" }, hasCb: false },
  { title: "a handle object", args: [{ _handle: {} }], target: { kind: "handle" }, hasCb: false },
  { title: "an empty options object", args: [{}], target: { kind: "port", port: undefined, host: undefined }, hasCb: false },
  { title: "undefined port (process.env.PORT unset)", args: [undefined, cb], target: { kind: "port", port: undefined, host: undefined }, hasCb: true },
];

for (const c of cases) {
  test(`parseListenArgs() understands ${c.title}`, (t) => {
    const r = parseListenArgs(c.args);
    t.deepEqual(r.target, c.target);
    t.is(r.backlog, c.backlog);
    t.is(r.callback !== undefined, c.hasCb);
  });
}
