/**
 * Static files of `ferry start` (docs/standalone.md "Static files"), through
 * the real command (`bin/ferry.js start`) on both paths: handed-off
 * connections (the default: the loader answers inside the app process) and
 * the relay (`--no-connection-handoff`: the front server answers). A file in
 * the static dir gets its headers, 304, HEAD, ranges; a large one streams
 * with bounded memory in the process that serves it; missing files,
 * directories, other methods, dotfiles, symlinks out of the dir and `..`
 * (plain or encoded) go to the app unchanged (h3-app answers them with its
 * JSON 404 naming the path).
 */
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fsp, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { copyApp, makeTmp, readyPids, req, startApp, waitFor, type Reply, type Running } from "../../helpers/standalone.js";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../../bin/ferry.js");
const ENV = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: process.env["HOME"] ?? "/root" };
const CSS = "body { color: teal }\n";
const ABOUT = "<h1>about (page cache)</h1>\n";
const DOCS = "<h1>docs index (page cache)</h1>\n";
/** A sparse file: streaming it whole must not grow the serving process by its size. */
const BIG_BYTES = 256 * 1024 * 1024;

const children: ChildProcess[] = [];
const tmps: string[] = [];
const instances: Running[] = [];
test.after.always(async () => {
  await Promise.all(instances.map((r) => r.stop()));
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await Promise.all(tmps.map((d) => fsp.rm(d, { recursive: true, force: true })));
});

interface Served {
  readonly port: number;
  /** The pid of the ferry start process. */
  readonly ferryPid: number;
  readonly agent: http.Agent;
}

/** An h3-app copy whose static dir `dirName` holds the test files, and a secret next to the app. */
async function makeApp(dirName: string): Promise<string> {
  const tmp = await makeTmp("ferry-static");
  tmps.push(tmp);
  const app = await copyApp("h3-app", tmp);
  const pub = path.join(app, dirName);
  await fsp.mkdir(path.join(pub, "css"), { recursive: true });
  await fsp.mkdir(path.join(pub, ".git"));
  await fsp.writeFile(path.join(pub, "css", "site.css"), CSS);
  await fsp.writeFile(path.join(pub, "digits.txt"), "0123456789");
  await fsp.mkdir(path.join(pub, "docs"));
  await fsp.writeFile(path.join(pub, "about.html"), ABOUT);
  await fsp.writeFile(path.join(pub, "docs", "index.html"), DOCS);
  await fsp.writeFile(path.join(pub, ".env"), "SECRET=1\n");
  await fsp.writeFile(path.join(pub, ".git", "config"), "[core]\n");
  await fsp.writeFile(path.join(app, "secret.txt"), "outside the static dir\n");
  await fsp.symlink("../secret.txt", path.join(pub, "out.txt"));
  await fsp.symlink("css/site.css", path.join(pub, "in.css"));
  await fsp.symlink(".env", path.join(pub, "env.txt"));
  const big = await fsp.open(path.join(pub, "big.bin"), "w");
  await big.truncate(BIG_BYTES);
  await big.close();
  await fsp.chmod(tmp, 0o755);
  return app;
}

async function ferryStart(app: string, flags: string[]): Promise<Served> {
  const reg = path.join(path.dirname(app), "reg");
  const child = spawn(process.execPath, [BIN, "start", app, "--port", "0", "--instance-registry-dir", reg, "--log-file", path.join(path.dirname(app), "ferry.log"), ...flags], {
    env: ENV, stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => { out += d.toString(); });
  child.stderr.on("data", (d: Buffer) => { err += d.toString(); });
  const port = await waitFor(`"serving" in ferry start's output (stderr: ${err.slice(-500)})`, () => {
    const m = /serving .* on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
    if (m === null && child.exitCode !== null) throw new Error(`ferry start exited ${child.exitCode}: ${err}`);
    return m === null ? undefined : Number(m[1]);
  }, 30_000);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return { port, ferryPid: child.pid ?? 0, agent };
}

/** GET /socket: the app's view of the connection, and the client's own port. */
function socketSeen(port: number, agent: http.Agent): Promise<{ remotePort: number | null; pid: number; clientPort: number }> {
  return new Promise((resolve, reject) => {
    const q = http.get({ host: "127.0.0.1", port, path: "/socket", agent, signal: AbortSignal.timeout(20_000) }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => {
        const seen = JSON.parse(text) as { remotePort: number | null; pid: number };
        resolve({ ...seen, clientPort: q.socket?.localPort ?? 0 });
      });
    });
    q.on("error", reject);
  });
}

/** Peak resident memory of a process so far (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (m === null) throw new Error(`Cannot read VmHWM of ${pid}`);
  return Number(m[1]) * 1024;
}

/** Stream a GET's body without keeping it; resolves with the status and byte count. */
function download(port: number, pathname: string, agent: http.Agent): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const q = http.get({ host: "127.0.0.1", port, path: pathname, agent, signal: AbortSignal.timeout(120_000) }, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => { bytes += c.length; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on("error", reject);
    });
    q.on("error", reject);
  });
}

/** Send a request line exactly as written (no client-side normalisation) and read the answer. */
function rawGet(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`Cannot GET ${target}: no answer within 20 s`)); }, 20_000);
    sock.on("connect", () => sock.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("error", (e) => { clearTimeout(timer); reject(e); });
    sock.on("close", () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString("latin1")); });
  });
}

function fromApp(r: Reply, pathPart: RegExp): boolean {
  return r.status === 404 && /"error":"not found"/.test(r.text) && pathPart.test(r.text);
}

const MODES = [
  { name: "handed-off connection", flags: ["--static-files-dir", "www"], dir: "www", handoff: true },
  { name: "relay (--no-connection-handoff)", flags: ["--no-connection-handoff"], dir: "public", handoff: false },
] as const;

for (const mode of MODES) {
  const started = (async () => {
    const app = await makeApp(mode.dir);
    const s = await ferryStart(app, [...mode.flags]);
    // Until a process is ready a connection is relayed (and closed after one answer); then, by default, handed off.
    const seen = await waitFor("the connection path of the mode", async () => {
      const x = await socketSeen(s.port, s.agent);
      return (x.remotePort === x.clientPort) === mode.handoff ? x : undefined;
    }, 60_000);
    return { ...s, appPid: seen.pid };
  })();
  started.catch(() => undefined);

  test.serial(`${mode.name}: a file in the static dir is answered with its type, length, validators and X-Powered-By`, async (t) => {
    const s = await started;
    const before = await socketSeen(s.port, s.agent);
    const r = await req(s.port, "/css/site.css?v=2", { agent: s.agent });
    t.is(r.status, 200);
    t.is(r.text, CSS);
    t.is(r.headers["content-type"], "text/css");
    t.is(r.headers["content-length"], String(Buffer.byteLength(CSS)));
    t.regex(r.headers["etag"] ?? "", /^"[0-9a-f]+-[0-9a-f]+"$/);
    t.regex(r.headers["last-modified"] ?? "", / GMT$/);
    t.is(r.headers["accept-ranges"], "bytes");
    t.regex(String(r.headers["x-powered-by"]), /^Ferry\/\d/);
    // A symlink to a file inside the dir is served; the connection stays on its path (kept alive).
    t.is((await req(s.port, "/in.css", { agent: s.agent })).text, CSS);
    const after = await socketSeen(s.port, s.agent);
    t.is(after.clientPort, before.clientPort, "the same kept-alive connection");
    t.is(after.remotePort === after.clientPort, mode.handoff);
  });

  test.serial(`${mode.name}: If-None-Match and If-Modified-Since get 304 without a body; HEAD gets the head only`, async (t) => {
    const s = await started;
    const first = await req(s.port, "/css/site.css", { agent: s.agent });
    const etag = first.headers["etag"] ?? "";
    const inm = await req(s.port, "/css/site.css", { agent: s.agent, headers: { "If-None-Match": etag } });
    t.is(inm.status, 304);
    t.is(inm.body.length, 0);
    t.is(inm.headers["etag"], etag);
    const ims = await req(s.port, "/css/site.css", { agent: s.agent, headers: { "If-Modified-Since": first.headers["last-modified"] ?? "" } });
    t.is(ims.status, 304);
    const changed = await req(s.port, "/css/site.css", { agent: s.agent, headers: { "If-None-Match": '"other"' } });
    t.is(changed.status, 200);
    t.is(changed.text, CSS);
    const head = await req(s.port, "/css/site.css", { agent: s.agent, method: "HEAD" });
    t.is(head.status, 200);
    t.is(head.body.length, 0);
    t.is(head.headers["content-length"], String(Buffer.byteLength(CSS)));
    t.is(head.headers["etag"], etag);
  });

  test.serial(`${mode.name}: a single range gets 206, one past the end 416, several the whole file`, async (t) => {
    const s = await started;
    const part = await req(s.port, "/digits.txt", { agent: s.agent, headers: { Range: "bytes=2-4" } });
    t.is(part.status, 206);
    t.is(part.text, "234");
    t.is(part.headers["content-range"], "bytes 2-4/10");
    t.is(part.headers["content-length"], "3");
    t.is((await req(s.port, "/digits.txt", { agent: s.agent, headers: { Range: "bytes=-3" } })).text, "789");
    const none = await req(s.port, "/digits.txt", { agent: s.agent, headers: { Range: "bytes=10-" } });
    t.is(none.status, 416);
    t.is(none.headers["content-range"], "bytes */10");
    const several = await req(s.port, "/digits.txt", { agent: s.agent, headers: { Range: "bytes=0-1,4-5" } });
    t.is(several.status, 200);
    t.is(several.text, "0123456789");
  });

  test.serial(`${mode.name}: missing files, directories, other methods, dotfiles and symlinks out of the dir go to the app`, async (t) => {
    const s = await started;
    t.true(fromApp(await req(s.port, "/nope.css", { agent: s.agent }), /nope\.css/));
    t.true(fromApp(await req(s.port, "/css", { agent: s.agent }), /"\/css"/), "a directory");
    t.true(fromApp(await req(s.port, "/css/", { agent: s.agent }), /"\/css\/"/), "a directory with a slash");
    t.true(fromApp(await req(s.port, "/css/site.css", { agent: s.agent, method: "POST", body: Buffer.from("x") }), /site\.css/), "POST");
    t.true(fromApp(await req(s.port, "/css/site.css", { agent: s.agent, method: "DELETE" }), /site\.css/), "DELETE");
    t.true(fromApp(await req(s.port, "/.env", { agent: s.agent }), /\.env/), "a dotfile");
    t.true(fromApp(await req(s.port, "/.git/config", { agent: s.agent }), /config/), "a file in a dot dir");
    t.true(fromApp(await req(s.port, "/out.txt", { agent: s.agent }), /out\.txt/), "a symlink out of the dir");
    t.true(fromApp(await req(s.port, "/env.txt", { agent: s.agent }), /env\.txt/), "a symlink to a dotfile");
    t.true(fromApp(await req(s.port, "/css/site.css%00", { agent: s.agent }), /site\.css/), "a NUL");
    // The app's own routes still answer.
    t.is((await req(s.port, "/", { agent: s.agent })).status, 200);
  });

  test.serial(`${mode.name}: Passenger's page cache: /about is answered from about.html, /docs/ from docs/index.html, for GET and HEAD only`, async (t) => {
    const s = await started;
    const about = await req(s.port, "/about?x=1", { agent: s.agent });
    t.is(about.status, 200);
    t.is(about.text, ABOUT);
    t.is(about.headers["content-type"], "text/html");
    t.is((await req(s.port, "/docs/", { agent: s.agent })).text, DOCS);
    t.is((await req(s.port, "/about", { agent: s.agent, method: "HEAD" })).headers["content-length"], String(Buffer.byteLength(ABOUT)));
    t.true(fromApp(await req(s.port, "/about", { agent: s.agent, method: "POST", body: Buffer.from("x") }), /about/), "POST goes to the app");
    t.true(fromApp(await req(s.port, "/docs", { agent: s.agent }), /"\/docs"/), "no docs.html: the app");
    t.true(fromApp(await req(s.port, "/css/", { agent: s.agent }), /"\/css\/"/), "no css/index.html: the app");
  });

  test.serial(`${mode.name}: .. and its encodings never leave the dir: the app gets the URI unchanged`, async (t) => {
    const s = await started;
    for (const target of ["/../secret.txt", "/css/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/css/%2e%2e/%2e%2e/secret.txt"]) {
      const answer = await rawGet(s.port, target);
      t.regex(answer, /^HTTP\/1\.1 404 /, target);
      t.notRegex(answer, /outside the static dir/, target);
      t.regex(answer, /"error":"not found"/, `${target} reached the app`);
    }
  });

  test.serial(`${mode.name}: a 256 MiB file streams whole with bounded memory in the serving process`, async (t) => {
    const s = await started;
    // The relay answers in ferry start's own process, a handed-off connection in the app process.
    const pid = mode.handoff ? s.appPid : s.ferryPid;
    const before = peakRss(pid);
    const got = await download(s.port, "/big.bin", s.agent);
    t.is(got.status, 200);
    t.is(got.bytes, BIG_BYTES);
    const grew = peakRss(pid) - before;
    t.true(grew < 96 * 1024 * 1024, `peak RSS of ${mode.handoff ? "the app" : "ferry start"} grew by ${Math.round(grew / 1048576)} MiB`);
  });
}

/** Requests the pool counted for the app (relayed, or reported by the loader for handed-off connections). */
function processed(r: Running): number {
  return r.instance.pool.status().groups.flatMap((g) => g.processes).reduce((n, p) => n + p.processed, 0);
}

for (const mode of MODES) {
  test(`${mode.name}: a static answer starts no process and is not one of the app's requests`, async (t) => {
    const app = await makeApp(mode.dir);
    const r = await startApp(app, mode.handoff ? { "static-files-dir": mode.dir } : { "no-connection-handoff": true });
    instances.push(r);
    // No process yet (ferry start would prestart one; this instance does not): the front answers the file itself.
    t.is((await req(r.port, "/css/site.css")).text, CSS);
    t.is(r.instance.pool.status().groups.flatMap((g) => g.processes).length, 0);
    // The app's own requests start and reach a process; then the path of the mode carries the connection.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    let appRequests = 0;
    await waitFor("the connection path of the mode", async () => {
      appRequests++;
      const x = await socketSeen(r.port, agent);
      return readyPids(r).length > 0 && (x.remotePort === x.clientPort) === mode.handoff ? true : undefined;
    }, 60_000);
    await waitFor(`${appRequests} requests counted`, () => (processed(r) >= appRequests ? true : undefined), 10_000);
    const before = processed(r);
    for (let i = 0; i < 5; i++) t.is((await req(r.port, "/css/site.css", { agent })).status, 200);
    t.is((await req(r.port, "/pid", { agent })).status, 200);
    // Counts arrive in order (the loader reports on one channel): once /pid is in, a counted static answer would be too.
    await waitFor("/pid counted", () => (processed(r) >= before + 1 ? true : undefined), 10_000);
    t.is(processed(r), before + 1, "only /pid was the app's");
  });
}
