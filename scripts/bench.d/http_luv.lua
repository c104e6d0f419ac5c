-- http_luv.lua - bench section 10's minimal HTTP/1.1 keep-alive server on
-- plain luv (what examples/http_health.lua was before luasvc.http): GET
-- /health answers 200 with the state and the request count, requests are
-- parsed at "\r\n\r\n", "Connection: close" or HTTP/1.0 ends a connection.
-- The same file runs as a service (luasvc run http_luv.lua -- PORT) and
-- under plain lua5.4 with a stand-in ctx (the bench's plain_http.lua), so
-- the two show what the runtime costs a luv server; section 11 compares it
-- with luasvc.http (the full protocol).
local uv = require "luv"

local S = {
  name = "http_luv",
  description = "minimal luv HTTP server (bench)",
  accepts = { "stop", "pause_continue", "shutdown", "paramchange" },
  stop_timeout = 5000,
}

local ok, cjson = pcall(require, "cjson")
local function json(t)
  if ok then return cjson.encode(t) end
  return string.format('{"state":"%s","requests":%d}', t.state, t.requests)
end

-- This version's code: one request -> status line, body.
local function handle(ctx, method, path)
  ctx.data.requests = ctx.data.requests + 1
  if method == "GET" and path == "/health" then
    return "200 OK", json { state = ctx:state(), requests = ctx.data.requests }
  end
  return "404 Not Found", '{"error":"not found"}'
end

-- One connection: each complete request is answered with the current
-- version's ctx.data.handle, in order; "Connection: close" or HTTP/1.0 ends it.
local function serve(ctx, client)
  local buf = ""
  client:read_start(function(err, chunk)
    if err or not chunk then
      client:close()
      return
    end
    buf = buf .. chunk
    while true do
      local eoh = buf:find("\r\n\r\n", 1, true)
      if not eoh then
        if #buf > 65536 then client:close() end -- no header is that long
        return
      end
      local head = buf:sub(1, eoh - 1)
      buf = buf:sub(eoh + 4)
      local method, path, version = head:match("^(%u+) (%S+) HTTP/(%d%.%d)")
      local close = version ~= "1.1" or head:lower():find("\nconnection:%s*close") ~= nil
      local status, body = ctx.data.handle(ctx, method, path)
      client:write(string.format(
        "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s",
        status, #body, close and "Connection: close\r\n" or "", body))
      if close then
        client:shutdown(function() client:close() end)
        return
      end
    end
  end)
end

function S.start(ctx, args)
  local port = tonumber(args[1] or "8080")
  local address = args[2] or "127.0.0.1"
  if not port or port < 0 or port > 65535 then
    error("http_luv: PORT must be a number 0-65535, got " .. tostring(args[1]), 0)
  end
  ctx.data.requests = 0
  ctx.data.handle = handle
  local server = uv.new_tcp()
  assert(server:bind(address, port))
  assert(server:listen(128, function(err)
    if err then return end
    local client = uv.new_tcp()
    if server:accept(client) then serve(ctx, client) else client:close() end
  end))
  ctx.data.server = server
  ctx:log("info", "listening on http://%s:%d/health", address, server:getsockname().port)
end

function S.reload(ctx, previous) ctx.data.handle = handle end

function S.run(ctx)
  while ctx:sleep(3600000) do end
end

S.controls = {
  [200] = function(ctx) ctx:log("info", "requests: %d, state %s", ctx.data.requests, ctx:state()) end,
}

function S.stop(ctx)
  ctx.data.server:close()
  ctx:log("info", "listener closed after %d requests", ctx.data.requests)
end

return S
