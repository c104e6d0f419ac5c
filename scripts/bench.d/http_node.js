// http_node.js - bench section 10's Node peer: the same minimal HTTP/1.1
// keep-alive health server as bench.d/http_luv.lua (GET /health -> 200
// with {"state":...,"requests":n}, requests parsed at "\r\n\r\n", "Connection:
// close" or HTTP/1.0 ends a connection), on Node's `net`, for the same C
// client (bench.d/loopbench.c http).
//   node http_node.js PORT     (0: any; the port is logged as the example does)
"use strict";
const net = require("net");

let requests = 0;

function handle(method, path) {
  requests++;
  if (method === "GET" && path === "/health")
    return ["200 OK", JSON.stringify({ state: "RUNNING", requests })];
  return ["404 Not Found", '{"error":"not found"}'];
}

const server = net.createServer((client) => {
  let buf = "";
  client.setEncoding("latin1");
  client.on("data", (chunk) => {
    buf += chunk;
    for (;;) {
      const eoh = buf.indexOf("\r\n\r\n");
      if (eoh < 0) {
        if (buf.length > 65536) client.destroy();
        return;
      }
      const head = buf.slice(0, eoh);
      buf = buf.slice(eoh + 4);
      const m = /^([A-Z]+) (\S+) HTTP\/(\d\.\d)/.exec(head) || [];
      const close = m[3] !== "1.1" || /\nconnection:\s*close/i.test(head);
      const [status, body] = handle(m[1], m[2]);
      client.write(
        `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n` +
          (close ? "Connection: close\r\n" : "") + `\r\n${body}`, "latin1");
      if (close) {
        client.end();
        return;
      }
    }
  });
  client.on("error", () => client.destroy());
});
server.listen(Number(process.argv[2] || 8080), "127.0.0.1", () => {
  console.error(`listening on http://127.0.0.1:${server.address().port}/health`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
