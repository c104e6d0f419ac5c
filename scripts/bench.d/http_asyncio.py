"""http_asyncio.py - bench section 10's Python peer: the same minimal HTTP/1.1
keep-alive health server as bench.d/http_luv.lua (GET /health -> 200 with
{"state":...,"requests":n}, requests parsed at "\\r\\n\\r\\n", "Connection:
close" or HTTP/1.0 ends a connection), on asyncio's protocols (callbacks on
the event loop, as luv's), for the same C client (bench.d/loopbench.c http).
    python3 http_asyncio.py PORT    (0: any; the port is logged as the example does)
"""
import asyncio
import json
import re
import signal
import sys

REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/(\d\.\d)")
CLOSE = re.compile(rb"\nconnection:\s*close", re.IGNORECASE)
requests = 0


def handle(method, path):
    global requests
    requests += 1
    if method == b"GET" and path == b"/health":
        return "200 OK", json.dumps({"state": "RUNNING", "requests": requests}, separators=(",", ":"))
    return "404 Not Found", '{"error":"not found"}'


class Conn(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while True:
            eoh = self.buf.find(b"\r\n\r\n")
            if eoh < 0:
                if len(self.buf) > 65536:
                    self.transport.close()
                return
            head, self.buf = self.buf[:eoh], self.buf[eoh + 4:]
            m = REQUEST_LINE.match(head)
            method, path, version = m.groups() if m else (None, None, None)
            close = version != b"1.1" or CLOSE.search(head) is not None
            status, body = handle(method, path)
            extra = "Connection: close\r\n" if close else ""
            self.transport.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{extra}\r\n{body}".encode("latin-1"))
            if close:
                self.transport.close()
                return


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Conn, "127.0.0.1", port)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}/health",
          file=sys.stderr, flush=True)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    await stop
    server.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8080))
