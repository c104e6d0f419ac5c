-- http.lua - luasvc.http: an HTTP/1.1 server and a small client on the
-- service's own event loop (compiled into the runtime; the parsing is
-- llhttp's, in C: runtime/engine/http.c gives this chunk its `core`).
--
--   local http = require "luasvc.http"
--   http.listen(ctx, opts) -> server | nil, message, code
--   server.port, server:pause(), server:resume(), server:close([ms]),
--   server:stats()
--   http.request(ctx, opts) -> response | nil, message, code
--   http.get(ctx, url [, opts]), http.post(ctx, url, body [, opts])
--
-- Each connection is served by one task (ctx:spawn): its requests are read,
-- answered in order (pipelining), and each request's handler runs inside
-- that task, so it may wait (ctx:sleep, ctx:await, a queue, a child, a
-- request of its own). The handler is looked up at each request: a string
-- names a field of ctx.data, which each version's start and reload set, so
-- a hot edit answers the next request with the new code. A connection's
-- reads, its parsing, its waits and its writes are C's (core.conn,
-- runtime/engine/httpconn.c): the task is resumed once per request.
local core = ...
local uv = require "luv"
local luasvc = require "luasvc"

local now = luasvc.now
local type, pairs, tostring, tonumber, error, setmetatable = type, pairs, tostring, tonumber, error, setmetatable
local format, concat = string.format, table.concat
local xpcall, traceback = xpcall, debug.traceback

local M = { llhttp_version = core.llhttp_version }

local REASONS = {
  [100] = "Continue", [101] = "Switching Protocols", [200] = "OK", [201] = "Created",
  [202] = "Accepted", [204] = "No Content", [206] = "Partial Content",
  [301] = "Moved Permanently", [302] = "Found", [303] = "See Other", [304] = "Not Modified",
  [307] = "Temporary Redirect", [308] = "Permanent Redirect", [400] = "Bad Request",
  [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [406] = "Not Acceptable", [408] = "Request Timeout",
  [409] = "Conflict", [410] = "Gone", [411] = "Length Required",
  [412] = "Precondition Failed", [413] = "Content Too Large", [414] = "URI Too Long",
  [415] = "Unsupported Media Type", [416] = "Range Not Satisfiable",
  [422] = "Unprocessable Content", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large", [500] = "Internal Server Error",
  [501] = "Not Implemented", [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout",
}
M.reasons = REASONS

-- The server's options and their defaults (ms, bytes, counts).
local DEFAULTS = {
  host = "127.0.0.1", port = false, handler = false, backlog = 511,
  max_connections = 512,   -- more wait in the kernel's accept queue
  header_timeout = 10000,  -- a request's head must be in within this
  idle_timeout = 5000,     -- a keep-alive connection idle, or a body stalled, this long closes
  send_timeout = 30000,    -- a client that does not read an answer this long is dropped
  max_line = 8192,         -- request target (414)
  max_header = 16384,      -- the whole head (431)
  max_headers = 100,       -- header lines (431)
  max_body = 1048576,      -- request body (413)
}
M.defaults = DEFAULTS

local http_date, call = core.date, core.call

local function bad_text(s) return s:find("[\r\n%z]") ~= nil end

-- One header of the handler's, checked: "Name: value\r\n", or "" for the
-- framing ones (Content-Length, Transfer-Encoding, Connection, Date: the
-- server's). The same rule as c:answer's in C (httpconn.c), which writes
-- whole answers; this one serves streams and says what a bad header is.
local function header_line(k, v)
  if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
    error("bad header " .. tostring(k) .. " (string = string|number expected)", 0)
  end
  local sv = tostring(v)
  if bad_text(k) or bad_text(sv) or k == "" or k:find("[:%s]") then
    error(format("bad header %q: no CR, LF or NUL, and a name without ':' or spaces", k), 0)
  end
  local lk = k:lower()
  if lk == "content-length" or lk == "transfer-encoding" or lk == "connection" or lk == "date" then
    return ""
  end
  return k .. ": " .. sv .. "\r\n"
end

-- "HTTP/1.1 200 OK\r\n" and the handler's headers, without the framing
-- ones (Content-Length, Transfer-Encoding, Connection: the server's).
local function head_lines(status, headers)
  local reason = REASONS[status] or "Unknown"
  if not headers then
    return "HTTP/1.1 " .. status .. " " .. reason .. "\r\nDate: " .. http_date() .. "\r\n"
  end
  local t = { "HTTP/1.1 ", status, " ", reason, "\r\nDate: ", http_date(), "\r\n" }
  for k, v in pairs(headers) do
    local line = header_line(k, v)
    if line ~= "" then t[#t + 1] = line end
  end
  return concat(t)
end

-- ==== the server =============================================================

local Server = {}
Server.__index = Server
local Request = {}
Request.__index = Request

local function checkopts(opts)
  if type(opts) ~= "table" then error("bad argument #2 to 'listen' (table expected, got " .. type(opts) .. ")", 3) end
  local o = {}
  for k, v in pairs(opts) do
    if DEFAULTS[k] == nil then error("listen: unknown option '" .. tostring(k) .. "'", 3) end
    o[k] = v
  end
  for k, v in pairs(DEFAULTS) do
    if o[k] == nil then o[k] = v end
    if type(v) == "number" and (math.type(o[k]) ~= "integer" or o[k] < 1) then
      error("listen: option '" .. k .. "' must be a positive integer, got " .. tostring(o[k]), 3)
    end
  end
  if math.type(o.port) ~= "integer" or o.port < 0 or o.port > 65535 then
    error("listen: option 'port' must be an integer 0-65535, got " .. tostring(o.port), 3)
  end
  if type(o.host) ~= "string" then error("listen: option 'host' must be a string", 3) end
  local h = o.handler
  if type(h) ~= "function" and type(h) ~= "string" then
    error("listen: option 'handler' must be a function or the name of a field of ctx.data", 3)
  end
  return o
end

-- Writes go through the connection (c:send, c:answer): what the socket
-- takes at once, the rest queued; past 64 KiB queued they wait until the
-- client has taken it (send_timeout). false: the connection is gone.

-- An error answer and the end of the connection.
local function send_error(cn, status, text)
  local body = (REASONS[status] or "Error") .. "\n"
  cn.conn:send(format("HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" ..
    "Connection: close\r\n\r\n%s", status, REASONS[status] or "Error", http_date(), #body, body))
  cn.srv.ctx:log("debug", "http: %s: answered %d (%s)", cn.srv.name, status, text or "")
end

-- Start serving an accepted connection: its task.
local serve_conn
local function start_conn(srv, c)
  c:nodelay(true)
  local cn = { srv = srv, c = c, conn = core.conn(c, core.parser("request", srv.opts), srv.opts) }
  srv.conns[cn] = true
  srv.nconn = srv.nconn + 1
  local ok, err = pcall(srv.ctx.spawn, srv.ctx, serve_conn, srv, cn)
  if not ok then
    srv.ctx:log("warning", "http: %s: a connection dropped: %s", srv.name, tostring(err))
    srv:_gone(cn)
  end
end

-- Accept what the listener holds, while the server takes connections:
-- libuv gives one at a time on POSIX (the next uv_accept fails until the
-- kernel's queue is looked at again), several that completed meanwhile on
-- Windows (its pending accepts, each told once).
local function accept_some(srv)
  while not srv.paused and not srv.closing and srv.nconn < srv.opts.max_connections do
    local c = uv.new_tcp()
    if not srv.tcp:accept(c) then
      c:close()
      srv.pending = false
      return
    end
    start_conn(srv, c)
  end
end

local function on_connection(srv, err)
  if err then
    srv.ctx:log("warning", "http: %s: accept: %s", srv.name, tostring(err))
    return
  end
  if srv.paused or srv.closing or srv.nconn >= srv.opts.max_connections or srv.ctx:stopping() then
    -- left in the kernel's queue (libuv stops watching until accept)
    srv.pending = true
    return
  end
  accept_some(srv)
end

-- The connection is done: flush, then close (reading what the client still
-- sends for a moment, so that an answer sent before its request ended is
-- not lost to a reset).
function Server:_gone(cn)
  if cn.gone then return end
  cn.gone = true
  self.conns[cn] = nil
  local dead = cn.conn:dead()
  cn.conn:close()
  local c = cn.c
  local function counted()
    if cn.counted then return end
    cn.counted = true
    self.nconn = self.nconn - 1
    if self.closing then self.closedq(true) end
    if self.pending and not self.paused and not self.closing and self.nconn < self.opts.max_connections then
      accept_some(self)
    end
  end
  if c:is_closing() then counted(); return end
  c:read_stop()
  local ok = dead and nil or c:shutdown(function()
    counted()
    if c:is_closing() then return end
    local t = uv.new_timer()
    local function done()
      if not t:is_closing() then t:close() end
      if not c:is_closing() then c:close() end
    end
    t:start(1000, 0, done)
    c:read_start(function(e, data) if e or not data then done() end end)
  end)
  if not ok then
    c:close()
    counted()
  end
end

-- What ends an answer's head after Content-Length (c:answer's tail).
local function tail_of(req, keep)
  if not keep then return 2 elseif req.version == "1.0" then return 1 end
  return 0
end

local ERROR_HEADERS = { ["Content-Type"] = "text/plain" }

-- Answer req with what the handler gives. Returns whether the connection
-- may serve another request.
local function respond(srv, cn, req)
  local ctx, conn = srv.ctx, cn.conn
  local h, ok, status, body, headers = srv.handler, false, nil, nil, nil
  if srv.by_name then h = ctx.data[h] end
  req._cn = cn
  setmetatable(req, Request)
  if srv.by_name and type(h) ~= "function" then
    status = format("http: %s: the handler ctx.data.%s is %s, not a function",
      srv.name, tostring(srv.handler), type(h))
  else
    ok, status, body, headers = call(h, ctx, req) -- xpcall(h, traceback, ...), in C
  end
  local keep = req.keep_alive and not srv.closing -- (a dead connection's sends fail)
  if ok and req._streaming then
    if req._chunked then keep = conn:send("0\r\n\r\n") and keep else keep = false end
    return keep
  end
  local head = req.method == "HEAD"
  if ok then
    -- checks what the handler returned (status 100-599, a string body, a
    -- table of headers) and sends it, or says what is wrong (false: a header)
    local sent, why = conn:answer(status, REASONS[status] or "Unknown", headers, body,
      not keep and 2 or req.version == "1.0" and 1 or 0, head) -- tail_of(req, keep), inline
    if sent ~= nil then return sent and keep end
    if why == false then
      local fine, err = pcall(head_lines, status, headers) -- a bad header: what is wrong with it
      why = not fine and err or "a bad header"
    end
    status = why
  end
  ctx:log("error", "http: %s %s: %s", req.method, req.target, status)
  if req._streaming then return false end -- started, then failed
  return conn:answer(500, REASONS[500], ERROR_HEADERS, "Internal Server Error\n", tail_of(req, keep), head) and keep
end

local function conn_loop(srv, cn)
  local conn = cn.conn
  while true do
    local req, status, text = conn:next()
    if req then
      cn.busy = true
      local keep = respond(srv, cn, req)
      cn.busy = false
      srv.requests = srv.requests + 1
      if not keep or srv.closing then return end
    elseif req == false then
      return send_error(cn, status, text)
    else
      return -- closed, idle past idle_timeout, the server closes, or the service stops
    end
  end
end

serve_conn = function(srv, cn)
  -- ends the connection however the task ends (an error, an interrupt)
  local guard <close> = setmetatable({}, { __close = function() srv:_gone(cn) end })
  local ok, err = xpcall(conn_loop, traceback, srv, cn)
  if not ok then srv.ctx:log("error", "http: %s: %s", srv.name, tostring(err)) end
end

-- ---- requests: streaming answers ----------------------------------------

-- req:stream(status [, headers]): begin an answer whose body follows in
-- req:write calls (chunked for HTTP/1.1 clients; for 1.0 the connection's
-- close ends it); the handler returns when done.
function Request:stream(status, headers)
  if self._streaming then error("stream: the answer has begun already", 2) end
  if math.type(status) ~= "integer" or status < 200 or status > 599 then
    error("bad argument #1 to 'stream' (a status 200-599 expected)", 2)
  end
  if headers ~= nil and type(headers) ~= "table" then
    error("bad argument #2 to 'stream' (table expected, got " .. type(headers) .. ")", 2)
  end
  local head = head_lines(status, headers)
  self._streaming = true
  if self.version == "1.1" then
    self._chunked = true
    head = head .. "Transfer-Encoding: chunked\r\n" ..
      ((self.keep_alive and not self._cn.srv.closing) and "\r\n" or "Connection: close\r\n\r\n")
  else
    head = head .. "Connection: close\r\n\r\n"
  end
  if self._cn.conn:send(head) then return true end
  return nil, "the connection is gone"
end

-- req:write(data) -> true | nil, message: a piece of a streamed answer;
-- waits while the client is behind (send_timeout).
function Request:write(data)
  if type(data) ~= "string" then error("bad argument #1 to 'write' (string expected, got " .. type(data) .. ")", 2) end
  if not self._streaming then error("write: call req:stream(status, headers) first", 2) end
  if #data == 0 then return true end
  local ok
  if self._chunked then
    ok = self._cn.conn:send(format("%x\r\n", #data), data, "\r\n")
  else
    ok = self._cn.conn:send(data)
  end
  if ok then return true end
  return nil, "the connection is gone"
end

-- req:peer() -> address, port of the client.
function Request:peer()
  local a = self._cn.c:getpeername()
  if not a then return nil end
  return a.ip, a.port
end

-- ---- the server object ----------------------------------------------------

function M.listen(ctx, opts)
  if type(ctx) ~= "table" and type(ctx) ~= "userdata" then
    error("bad argument #1 to 'listen' (ctx expected, got " .. type(ctx) .. ")", 2)
  end
  local o = checkopts(opts)
  local srv = setmetatable({ ctx = ctx, opts = o, handler = o.handler, by_name = type(o.handler) == "string",
    conns = {}, nconn = 0,
    requests = 0, name = ctx.name, closedq = ctx:queue() }, Server)
  local tcp = uv.new_tcp()
  local ok, err, code = tcp:bind(o.host, o.port)
  if ok then ok, err, code = tcp:listen(o.backlog, function(e) on_connection(srv, e) end) end
  if not ok then
    tcp:close()
    return nil, format("http: cannot listen on %s:%d: %s", o.host, o.port, tostring(err)), code
  end
  srv.tcp = tcp
  local addr = tcp:getsockname()
  srv.host, srv.port = addr.ip, addr.port
  return srv
end

-- server:handle(handler): a function, or the name of a field of ctx.data.
function Server:handle(handler)
  if type(handler) ~= "function" and type(handler) ~= "string" then
    error("bad argument #1 to 'handle' (function or string expected, got " .. type(handler) .. ")", 2)
  end
  self.handler, self.by_name = handler, type(handler) == "string"
end

-- Stop accepting; the listening socket stays open, so connections wait in
-- the kernel's queue (none is refused) until server:resume().
function Server:pause() self.paused = true end

function Server:resume()
  self.paused = false
  if self.pending and not self.closing and self.nconn < self.opts.max_connections then
    accept_some(self)
  end
end

function Server:stats()
  return { connections = self.nconn, requests = self.requests, paused = self.paused == true,
    closing = self.closing == true }
end

-- Close the listener and every idle connection at once; let requests in
-- flight finish (reporting progress in a pending state), up to timeout_ms
-- (default 10000), then close what is left. Waits: call it from a task
-- (start, run, stop, a handler, a ctx:spawn task). -> true, or nil,
-- "timeout" when connections had to be cut.
function Server:close(timeout_ms)
  if timeout_ms ~= nil and (type(timeout_ms) ~= "number" or timeout_ms < 0) then
    error("bad argument #1 to 'close' (a number of ms >= 0 expected)", 2)
  end
  if self.closed then return true end
  self.closing = true
  if not self.tcp:is_closing() then self.tcp:close() end
  for cn in pairs(self.conns) do
    if not cn.busy then cn.conn:idle_close() end
  end
  local ctx = self.ctx
  local deadline = now() + (timeout_ms or 10000) / 1000
  local cut = false
  while self.nconn > 0 do
    local left = (deadline - now()) * 1000
    if left <= 0 then cut = true; break end
    ctx:progress(math.floor(math.min(left, 1000)) + 500,
      format("http: %d connection(s) finishing", self.nconn))
    self.closedq:get(math.min(left, 1000))
  end
  for cn in pairs(self.conns) do
    cn.conn:kill()
    if not cn.c:is_closing() then cn.c:close() end
  end
  self.closed = true
  if cut then return nil, "timeout" end
  return true
end

-- ==== the client ==============================================================

local function parse_url(url)
  local host, port, path = url:match("^http://([^/:%[]+):?(%d*)(.*)$")
  if not host then
    host, port, path = url:match("^http://%[([^%]]+)%]:?(%d*)(.*)$")
  end
  if not host then return nil end
  port = port == "" and 80 or tonumber(port)
  if path == "" then path = "/" end
  if path:sub(1, 1) ~= "/" or bad_text(path) or path:find(" ") then return nil end
  return host, port, path
end

-- http.request(ctx, {url, method, headers, body, timeout, max_body})
-- -> {status, reason, version, headers, body} | nil, message, code
function M.request(ctx, opts)
  if type(opts) ~= "table" then error("bad argument #2 to 'request' (table expected, got " .. type(opts) .. ")", 2) end
  local url = opts.url
  if type(url) ~= "string" then error("request: 'url' must be a string", 2) end
  local host, port, path = parse_url(url)
  if not host then error("request: bad url '" .. url .. "' (http://HOST[:PORT]/PATH expected)", 2) end
  local method = opts.method or (opts.body and "POST" or "GET")
  if type(method) ~= "string" or not method:match("^%u+$") then error("request: bad method", 2) end
  local body = opts.body
  if body ~= nil and type(body) ~= "string" then error("request: 'body' must be a string", 2) end
  local timeout = opts.timeout or 10000
  if type(timeout) ~= "number" or timeout <= 0 then error("request: 'timeout' must be a number of ms > 0", 2) end
  local headers = opts.headers
  if headers ~= nil and type(headers) ~= "table" then error("request: 'headers' must be a table", 2) end

  local t = { method, " ", path, " HTTP/1.1\r\nHost: ", host, (port ~= 80 and ":" .. port or ""),
    "\r\nConnection: close\r\n" }
  if headers then
    for k, v in pairs(headers) do
      v = tostring(v)
      if type(k) ~= "string" or bad_text(k) or bad_text(v) or k:find("[:%s]") then
        error("request: bad header " .. tostring(k), 2)
      end
      local lk = k:lower()
      if lk ~= "content-length" and lk ~= "host" and lk ~= "connection" and lk ~= "transfer-encoding" then
        t[#t + 1] = k .. ": " .. v .. "\r\n"
      end
    end
  end
  if body or method == "POST" or method == "PUT" then t[#t + 1] = "Content-Length: " .. #(body or "") .. "\r\n" end
  t[#t + 1] = "\r\n"

  local deadline = now() + timeout / 1000
  local q = ctx:queue()
  local function wait()
    local left = (deadline - now()) * 1000
    if left <= 0 then return nil, "timeout" end
    return q:get(left)
  end
  local tcp <close> = setmetatable({ h = uv.new_tcp() }, {
    __close = function(self) if not self.h:is_closing() then self.h:close() end end })
  local tcph = tcp.h
  local addr = host
  if not host:match("^%d+%.%d+%.%d+%.%d+$") and not host:find(":", 1, true) then
    local r, e, code = uv.getaddrinfo(host, tostring(port), { socktype = "stream" },
      function(err, res) q("dns", err, res) end)
    if not r then return nil, "request: " .. host .. ": " .. tostring(e), code end
    local got, _, err, res = wait()
    if not got then return nil, "request: " .. url .. ": " .. _, _ end
    if err or not res or not res[1] then return nil, "request: " .. host .. ": " .. tostring(err or "no address"), "dns" end
    addr = res[1].addr
  end
  local ok, e, code = tcph:connect(addr, port, function(err) q("connect", err) end)
  if not ok then return nil, "request: " .. url .. ": " .. tostring(e), code end
  local got, kind, err = wait()
  if not got then return nil, "request: " .. url .. ": " .. kind, kind end
  if err then return nil, "request: " .. url .. ": " .. tostring(err), tostring(err):match("^(%u+)") or "connect" end
  tcph:write(body and { concat(t), body } or concat(t))
  local p <close> = core.parser("response", { max_body = opts.max_body or 16777216,
    max_header = 65536, max_headers = 200 })
  if method == "HEAD" then p:skip_body() end
  tcph:read_start(function(err2, data) q("read", err2, data) end)
  while true do
    local res, status, text = p:next()
    if res then return res end
    if res == false then return nil, "request: " .. url .. ": " .. text .. " (" .. status .. ")", "bad_response" end
    local got2, _, rerr, data = wait()
    if not got2 then return nil, "request: " .. url .. ": " .. _, _ end
    if rerr then return nil, "request: " .. url .. ": " .. tostring(rerr), tostring(rerr):match("^(%u+)") or "read" end
    if not data then
      res, status, text = p:finish()
      if res then return res end
      return nil, "request: " .. url .. ": the connection closed before the answer was complete", "closed"
    end
    p:feed(data)
  end
end

function M.get(ctx, url, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.url, o.method = url, "GET"
  return M.request(ctx, o)
end

function M.post(ctx, url, body, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.url, o.method, o.body = url, "POST", body
  return M.request(ctx, o)
end

return M
