-- hello_http.lua - an HTTP/1.1 server with luasvc.http.
--
--   luasvc run examples/hello_http.lua -- PORT      (127.0.0.1:PORT; 0: any port)
--   curl http://127.0.0.1:PORT/hello             -> hello
--   curl -d 'some text' http://127.0.0.1:PORT/echo  -> some text
--   curl http://127.0.0.1:PORT/slow              -> slow (after 200 ms)
--   curl -i http://127.0.0.1:PORT/boom           -> 500 (the error is logged)
--   luasvc pause hello_http; luasvc continue hello_http
--
-- Each request's handler runs as a task: /slow sleeps without holding any
-- other request. The handler is ctx.data.http, looked up at each request,
-- which start and reload set: edit this file while it serves (change the
-- text of /hello) and the next request gets the new code, none fails.
-- PAUSE stops accepting new connections (they wait in the kernel's queue,
-- none is refused) and CONTINUE takes them up; STOP closes the listener
-- and idle connections at once and lets requests in flight finish.
local http = require "luasvc.http"

local S = {
  name = "hello_http",
  description = "HTTP hello, echo and slow answers",
  accepts = { "stop", "pause_continue", "shutdown", "paramchange" },
  stop_timeout = 5000,
}

local function handle(ctx, req)
  if req.path == "/hello" and req.method == "GET" then
    return 200, "hello\n", { ["Content-Type"] = "text/plain" }
  elseif req.path == "/echo" and req.method == "POST" then
    return 200, req.body, { ["Content-Type"] = req.headers["content-type"] or "application/octet-stream" }
  elseif req.path == "/slow" and req.method == "GET" then
    ctx:sleep(200) -- a wait: other requests go on meanwhile
    return 200, "slow\n"
  elseif req.path == "/boom" and req.method == "GET" then
    error("boom: this handler fails on purpose")
  end
  return 404, "not found\n"
end

function S.start(ctx, args)
  local port = math.tointeger(tonumber(args[1] or "8080"))
  if not port or port < 0 or port > 65535 then
    error("hello_http: PORT must be a number 0-65535, got " .. tostring(args[1]), 0)
  end
  ctx.data.http = handle
  ctx.data.server = assert(http.listen(ctx, { host = "127.0.0.1", port = port, handler = "http" }))
  ctx:log("info", "listening on http://127.0.0.1:%d/", ctx.data.server.port)
end

function S.reload(ctx, previous) ctx.data.http = handle end

function S.run(ctx)
  while ctx:sleep(3600000) do end
end

function S.pause(ctx) ctx.data.server:pause() end
function S.continue(ctx) ctx.data.server:resume() end

function S.stop(ctx)
  local n = ctx.data.server:stats().requests
  ctx.data.server:close(4000)
  ctx:log("info", "closed after %d requests", n)
end

return S
