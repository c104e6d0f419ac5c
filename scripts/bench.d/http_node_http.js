// http_node_http.js - bench section 11's Node peer: Node's own `http`
// module serving what examples/hello_http.lua's GET /hello serves (200,
// "hello\n", Content-Type text/plain; anything else 404), keep-alive as
// Node does by default, for the same C client (bench.d/loopbench.c http).
//   node http_node_http.js PORT     (0: any; the port is logged as the example does)
"use strict";
const http = require("http");

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/hello") {
    res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": 6 });
    res.end("hello\n");
  } else {
    res.writeHead(404, { "Content-Length": 10 });
    res.end("not found\n");
  }
});
server.listen(Number(process.argv[2] || 8080), "127.0.0.1", () => {
  console.error(`listening on http://127.0.0.1:${server.address().port}/`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
setInterval(() => {}, 1 << 30); // keep-alive sockets aside, stay up until SIGTERM
