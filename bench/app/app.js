// The benchmark app: one plain `http` server, the same code behind every target.
// CommonJS on purpose: Passenger 6's Node loader require()s the startup file.
// Every response carries X-Pid (which process served it); X-T is echoed so a
// load client can time requests by class (wrk's mixed scenario does).
"use strict";
const http = require("node:http");
const { WebSocketServer } = require("ws");

const BIG = Buffer.alloc(100 * 1024, "x");
const SMALL = Buffer.from("ok\n");
const PID = String(process.pid);

function burn(ms) {
  const until = process.hrtime.bigint() + BigInt(ms) * 1000000n;
  let x = 0;
  while (process.hrtime.bigint() < until) x += Math.sqrt(x + 1);
  return x;
}

function head(req, res, type) {
  res.setHeader("X-Pid", PID);
  const tag = req.headers["x-t"];
  if (tag !== undefined) res.setHeader("X-T", tag);
  res.setHeader("Content-Type", type);
}

const server = http.createServer((req, res) => {
  const path = req.url.split("?", 1)[0];
  if (req.method === "POST" && path === "/echo") {
    head(req, res, req.headers["content-type"] || "application/octet-stream");
    const len = req.headers["content-length"];
    if (len !== undefined) res.setHeader("Content-Length", len);
    req.pipe(res);
    return;
  }
  req.resume();
  switch (path) {
    case "/":
      head(req, res, "text/plain");
      res.setHeader("Content-Length", SMALL.length);
      res.end(SMALL);
      return;
    case "/100k":
      head(req, res, "application/octet-stream");
      res.setHeader("Content-Length", BIG.length);
      res.end(BIG);
      return;
    case "/slow":
      setTimeout(() => {
        head(req, res, "text/plain");
        res.end(SMALL);
      }, 50);
      return;
    case "/cpu":
      burn(20);
      head(req, res, "text/plain");
      res.end(SMALL);
      return;
    default:
      head(req, res, "text/plain");
      res.statusCode = 404;
      res.end("not found\n");
  }
});
// Behind a proxy that reuses connections, an idle timeout shorter than the
// proxy's would race it; every target gets the same server settings.
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000;

const wss = new WebSocketServer({ server, path: "/ws" });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on("error", () => ws.terminate());
});

server.listen(Number(process.env.PORT) || 3000, process.env.BENCH_HOST || undefined);
