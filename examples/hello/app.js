// The smallest Ferry app: a plain Node http server. Ferry's loader makes its
// listen(3000) listen on a private socket Ferry chose, so the code is unchanged.
const http = require("node:http");

const server = http.createServer((req, res) => {
  res.setHeader("Content-Type", "text/plain; charset=utf-8");
  res.end(`Hello from Ferry! pid ${process.pid}, ${req.method} ${req.url}\n`);
});

server.listen(process.env.PORT || 3000);
