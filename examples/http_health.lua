-- http_health.lua - an HTTP health endpoint with luasvc.http.
--
--   luasvc run examples/http_health.lua -- PORT [ADDRESS]
--   curl http://127.0.0.1:PORT/health   -> {"state":"RUNNING","requests":3}
--   luasvc control http_health 200      -> logs the counts
--
-- GET /health answers 200 with the service's state (PAUSED while paused:
-- the server answers then too) and the number of requests so far;
-- anything else 404. The listener is made once, by the first version, and
-- kept in ctx.data; every request is answered by ctx.data.handle, which
-- each version's start and reload set: edit this file while it serves and
-- the new code answers the next request, without a failed one (README, "A
-- live server across hot edits"). Stop closes the listener.
local http = require "luasvc.http"
local cjson = require "cjson"

local S = {
  name = "http_health",
  description = "HTTP health endpoint",
  accepts = { "stop", "pause_continue", "shutdown", "paramchange" },
  stop_timeout = 5000,
}

local JSON = { ["Content-Type"] = "application/json" }

-- This version's code: one request -> status, body, headers.
local function handle(ctx, req)
  ctx.data.requests = ctx.data.requests + 1
  if req.method == "GET" and req.path == "/health" then
    return 200, cjson.encode { state = ctx:state(), requests = ctx.data.requests }, JSON
  end
  return 404, '{"error":"not found"}', JSON
end

function S.start(ctx, args)
  local port = math.tointeger(tonumber(args[1] or "8080"))
  local address = args[2] or "127.0.0.1"
  if not port or port < 0 or port > 65535 then
    error("http_health: PORT must be a number 0-65535, got " .. tostring(args[1]), 0)
  end
  ctx.data.requests = 0
  ctx.data.handle = handle
  ctx.data.server = assert(http.listen(ctx, { host = address, port = port, handler = "handle" }))
  ctx:log("info", "listening on http://%s:%d/health", address, ctx.data.server.port)
end

function S.reload(ctx, previous) ctx.data.handle = handle end

function S.run(ctx)
  while ctx:sleep(3600000) do end
end

S.controls = {
  [200] = function(ctx) ctx:log("info", "requests: %d, state %s", ctx.data.requests, ctx:state()) end,
}

function S.stop(ctx)
  ctx.data.server:close(4000)
  ctx:log("info", "listener closed after %d requests", ctx.data.requests)
end

return S
