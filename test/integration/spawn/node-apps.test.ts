/**
 * ChildSpawner + the Node loader against real fixture apps: every kind of
 * entry point and listen() call ends up answering HTTP on the address the
 * spawner returns.
 */
import test from "ava";
import { execFileSync } from "node:child_process";
import { chmod } from "node:fs/promises";
import path from "node:path";
import WebSocket from "ws";
import { fixtureApp, httpRequest, makeHarness, waitForLine, type Harness } from "../../helpers/spawn-harness.js";

let h: Harness;
test.before(async () => { h = await makeHarness("spawn-node"); });
test.after.always(async () => { await h.cleanup(); });

test("spawn() runs a CommonJS app with require.main === module and answers on a Unix socket", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("hello")));
  t.is(p.address.kind, "unix");
  const res = await httpRequest(p.address);
  t.is(res.status, 200);
  t.is(res.body, `hello from ${p.pid} main=true\n`);
  t.is(await waitForLine(h, p.pid, "hello listening"), `hello listening, pid ${p.pid}`);
});

test("spawn() runs an .mjs ES module entry point with top-level await", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("esm-app"), { startupFile: "app.mjs" }));
  t.is((await httpRequest(p.address)).body, "esm mjs true\n");
});

test("spawn() runs a \"type\": \"module\" entry point listening with an options object", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("esm-type-module")));
  t.is((await httpRequest(p.address)).body, "esm type-module true\n");
});

test("spawn() runs an Express 5 app that listens only when it is the main module", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("express-app")));
  const res = await httpRequest(p.address, { path: "/users/42" });
  t.is(res.status, 200);
  t.deepEqual(JSON.parse(res.body), { id: "42" });
  const root = JSON.parse((await httpRequest(p.address)).body) as { framework: string; pid: number; ip: string };
  t.is(root.framework, "express");
  t.is(root.pid, p.pid);
  t.is(root.ip, "127.0.0.1");
});

test("spawn() gives the first server Ferry's socket and a second server a private one", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("listen-twice")));
  t.is((await httpRequest(p.address)).body, "main server\n");
  // The second server's callback fires, with a private socket path as its address.
  const second = await waitForLine(h, p.pid, "second listening on ");
  const secondPath = second.slice("second listening on ".length);
  t.true(secondPath.startsWith(path.dirname(p.address.kind === "unix" ? p.address.path : "")));
  t.is((await httpRequest({ kind: "unix", path: secondPath })).body, "admin server\n");
});

test("spawn() keeps a ws WebSocketServer attached to the app's server working", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("ws-echo")));
  if (p.address.kind !== "unix") return t.fail("expected a unix address");
  t.is((await httpRequest(p.address)).body, "ws-echo http\n");
  const ws = new WebSocket(`ws+unix://${p.address.path}:/`);
  const echoed = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("Cannot receive echo: timed out")), 10_000);
    ws.on("open", () => ws.send("ping over ferry"));
    ws.on("message", (d: Buffer) => { clearTimeout(timer); resolve(d.toString()); });
    ws.on("error", reject);
  });
  ws.close();
  t.is(echoed, "ping over ferry");
});

test("spawn() serves an https app as plain HTTP on the private socket", async (t) => {
  const tls = path.join(h.dir, "tls");
  execFileSync("mkdir", ["-p", tls]);
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path.join(tls, "key.pem"),
    "-out", path.join(tls, "cert.pem"), "-days", "1", "-subj", "/CN=localhost"], { stdio: "ignore" });
  await chmod(tls, 0o755);
  await chmod(path.join(tls, "key.pem"), 0o644);
  const p = await h.spawn(h.app(fixtureApp("https-app"), { env: { TLS_DIR: tls } }));
  t.is((await httpRequest(p.address)).body, "https-app encrypted=false\n");
});

test("spawn() binds a plain net.Server", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("net-server")));
  t.is((await httpRequest(p.address)).body, "net-server\n");
});

test("spawn() honours PhusionPassenger.configure({ autoInstall: false }) and listen('passenger')", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("passenger-opt-in")));
  t.is((await httpRequest(p.address)).body, "opt-in main\n");
  const side = await waitForLine(h, p.pid, "side listening on tcp ");
  const port = Number(side.slice("side listening on tcp ".length));
  t.true(port > 0);
  t.is((await httpRequest({ kind: "tcp", host: "127.0.0.1", port })).body, "side server\n");
});

test("spawn() streams a request body through echo-body", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("echo-body")));
  const body = "x".repeat(200_000);
  const res = await httpRequest(p.address, { method: "POST", body, headers: { "content-type": "text/plain" } });
  t.is(res.status, 200);
  t.is(res.body.length, body.length);
});

test("spawn() runs a generic app through PassengerAppStartCommand with $PORT", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("generic-app"), { appType: "generic", appStartCommand: "exec node server.js" }));
  if (p.address.kind !== "tcp") return t.fail("expected a tcp address");
  t.is(p.address.host, "127.0.0.1");
  t.is((await httpRequest(p.address)).body, `generic on ${p.address.port} pid ${p.pid}\n`);
});

test("spawn() re-binds Ferry's socket when the app closes and re-listens its server", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("relisten")));
  t.is((await httpRequest(p.address)).body, "generation 1\n");
  t.is((await httpRequest(p.address, { path: "/relisten" })).body, "closing\n");
  await waitForLine(h, p.pid, "relisten: listening again");
  t.is((await httpRequest(p.address)).body, "generation 2\n");
});

test("spawn() serves a cluster-module app through its primary's round-robin handle", async (t) => {
  const p = await h.spawn(h.app(fixtureApp("cluster-app")));
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add((await httpRequest(p.address)).body);
  t.true([...seen].every((b) => /^worker \d+\n$/.test(b)));
  t.false(seen.has(`worker ${p.pid}\n`));
});
