// e2e-app: the stub app the end-to-end tests drive through a real Apache.
// Plain node:http (plus `ws` for /ws); listens on PORT like any Node app, so
// Ferry's loader decides where it really listens. The graceful test rewrites
// the VERSION line below in a copy of this file.
"use strict";
const http = require("node:http");
const crypto = require("node:crypto");

const VERSION = "v1";
const BASE = process.env.PASSENGER_BASE_URI || "";

function json(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

// Deterministic bytes for /download: block i of the stream is sha256("ferry-e2e-<i>") repeated.
function block(i) {
  const seed = crypto.createHash("sha256").update(`ferry-e2e-${i}`).digest();
  const out = Buffer.alloc(65536);
  for (let o = 0; o < out.length; o += seed.length) seed.copy(out, o);
  return out;
}

const routes = {
  "/": (req, res) => {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end(`hello from e2e-app ${VERSION} pid ${process.pid}\n`);
  },
  "/version": (req, res) => json(res, 200, { version: VERSION, pid: process.pid }),
  "/pid": (req, res) => json(res, 200, { pid: process.pid, cwd: process.cwd() }),
  "/url": (req, res) => json(res, 200, { url: req.url, base: BASE, pid: process.pid }),
  "/headers": (req, res) => json(res, 200, { headers: req.headers, rawHeaders: req.rawHeaders, method: req.method }),
  "/cookies": (req, res) => {
    res.setHeader("Set-Cookie", ["first=one; Path=/", "second=two; Path=/; HttpOnly"]);
    res.setHeader("X-E2E-Custom", "custom-value");
    json(res, 200, { cookie: req.headers.cookie ?? null });
  },
  "/env": (req, res) => json(res, 200, { env: process.env, uid: process.getuid ? process.getuid() : -1 }),
  "/upload": (req, res) => {
    const hash = crypto.createHash("sha256");
    let bytes = 0;
    req.on("data", (chunk) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on("end", () =>
      json(res, 200, {
        bytes,
        sha256: hash.digest("hex"),
        transferEncoding: req.headers["transfer-encoding"] ?? null,
        contentLength: req.headers["content-length"] ?? null,
      }),
    );
  },
  "/download": (req, res, query) => {
    const total = Number(query.get("bytes") ?? "0");
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": total });
    let sent = 0;
    let i = 0;
    const pump = () => {
      while (sent < total) {
        const b = block(i++);
        const piece = b.subarray(0, Math.min(b.length, total - sent));
        sent += piece.length;
        if (!res.write(piece)) {
          res.once("drain", pump);
          return;
        }
      }
      res.end();
    };
    pump();
  },
  "/stream": (req, res, query) => {
    const chunks = Number(query.get("chunks") ?? "5");
    const interval = Number(query.get("interval") ?? "300");
    res.writeHead(200, { "Content-Type": "text/plain" });
    let n = 0;
    const tick = () => {
      res.write(`chunk ${n} at ${Date.now()}\n`);
      n += 1;
      if (n >= chunks) res.end("done\n");
      else setTimeout(tick, interval);
    };
    tick();
  },
  "/sse": (req, res, query) => {
    const events = Number(query.get("events") ?? "5");
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    let n = 0;
    const tick = () => {
      res.write(`id: ${n}\nevent: tick\ndata: ${n}\n\n`);
      n += 1;
      if (n >= events) res.end();
      else setTimeout(tick, 200);
    };
    tick();
  },
  "/slow": (req, res, query) => {
    const ms = Number(query.get("ms") ?? "500");
    setTimeout(() => json(res, 200, { pid: process.pid, ms }), ms);
  },
  "/cpu": (req, res, query) => {
    // Burns ms of CPU (blocks the event loop), for the saturation scaling tests.
    const ms = Number(query.get("ms") ?? "20");
    const end = Date.now() + ms;
    while (Date.now() < end);
    json(res, 200, { pid: process.pid, ms });
  },
  "/status": (req, res, query) => {
    const code = Number(query.get("code") ?? "200");
    if (code === 204 || code === 304) {
      res.writeHead(code, { ETag: '"e2e"' });
      res.end();
    } else json(res, code, { code });
  },
  "/say": (req, res, query) => {
    // One line of app output (log tests), written before the response.
    console.log(query.get("line") ?? "");
    json(res, 200, { pid: process.pid });
  },
  "/block": (req, res, query) => {
    // Block the event loop (health tests): a stuck loop sends no reports.
    const until = Date.now() + Number(query.get("ms") ?? "1000");
    while (Date.now() < until) { /* busy */ }
    json(res, 200, { pid: process.pid });
  },
  "/health": (req, res) => {
    // Healthy unless <app root>/tmp/unhealthy exists.
    const sick = require("node:fs").existsSync(require("node:path").join(__dirname, "tmp", "unhealthy"));
    json(res, sick ? 500 : 200, { pid: process.pid, healthy: !sick });
  },
  "/crash": () => {
    // Die in the middle of a request: the client must get a 502.
    process.exit(3);
  },
};

const server = http.createServer((req, res) => {
  const u = new URL(req.url, "http://x");
  let p = u.pathname;
  if (BASE && p.startsWith(BASE)) p = p.slice(BASE.length) || "/";
  const handler = routes[p];
  if (handler) handler(req, res, u.searchParams);
  else json(res, 404, { error: "not found", url: req.url });
});

// WebSocket echo on /ws (any base URI).
try {
  const { WebSocketServer } = require("ws");
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(`welcome ${process.pid}`);
      ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
} catch (e) {
  console.error("e2e-app: ws unavailable:", e && e.message);
}

server.listen(process.env.PORT || 3000);
