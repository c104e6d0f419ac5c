-- http_spec.lua - luasvc.http end to end: examples/hello_http.lua and
-- spec/fixtures/http_knobs.lua on the real binary, driven by raw sockets on
-- this process's luv loop (every wait a poll with a deadline), by curl and
-- by ab for the load during a hot edit.
local uv = require "luv"

local KNOBS = "spec/fixtures/http_knobs.lua"
-- A sanitizer's build runs Lua several times slower: the byte-at-a-time
-- clients dribble slower there and the normal client's bound is looser
-- (the acceptance's 100 ms holds for the plain build).
local SANITIZED = (os.getenv("ASAN_OPTIONS") or os.getenv("TSAN_OPTIONS")) ~= nil
local DRIBBLE_MS, WORST_MS = 20, 100
if SANITIZED then DRIBBLE_MS, WORST_MS = 100, 400 end
local HELLO = "examples/hello_http.lua"
local conns = {}

local function cleanup()
  for _, c in ipairs(conns) do
    if not c.tcp:is_closing() then c.tcp:close() end
  end
  conns = {}
  uv.run("nowait")
  H.cleanup()
end

-- Turn this process's loop until pred() is true, at most timeout seconds
-- (a 5 ms timer bounds each turn). Raises with what on a timeout.
local function run_until(pred, timeout, what)
  local guard = uv.new_timer()
  guard:start(5, 5, function() end)
  uv.update_time()
  local deadline = uv.now() + (timeout or 5) * 1000
  local ok = pred()
  while not ok do
    uv.run("once")
    uv.update_time()
    ok = pred()
    if not ok and uv.now() > deadline then break end
  end
  guard:close()
  uv.run("nowait")
  if not ok and what then error("timed out waiting for " .. what, 2) end
  return ok
end

local function start(script, args)
  local p = H.start { scripts = { script }, args = args or { "0" } }
  H.wait_log(p, "listening on http://127.0.0.1:%d+/")
  return p, tonumber(H.log(p):match("listening on http://127.0.0.1:(%d+)/"))
end

local function knobs(...)
  local args = { "port=0" }
  for _, a in ipairs({ ... }) do args[#args + 1] = a end
  return start(KNOBS, args)
end

-- A raw client connection: c.buf gathers what arrives, c.eof is set at the
-- end (c.reset when it was a reset).
local function connect(port, rcvbuf)
  local c = { tcp = uv.new_tcp("inet"), buf = "" }
  conns[#conns + 1] = c
  -- a small receive window: the server's socket takes its writes in part
  if rcvbuf then -- and what arrives is kept in parts (c.got bytes), joined by the test
    assert(c.tcp:recv_buffer_size(rcvbuf))
    c.parts, c.got = {}, 0
  end
  c.tcp:connect("127.0.0.1", port, function(err)
    c.err, c.connected = err, not err
    if err then return end
    c.tcp:read_start(function(e, d)
      if e or not d then c.eof, c.reset = true, e
      elseif c.parts then c.parts[#c.parts + 1] = d; c.got = c.got + #d
      else c.buf = c.buf .. d end
    end)
  end)
  run_until(function() return c.connected or c.err end, 5, "a connection")
  assert(c.connected, c.err)
  return c
end

local function send(c, s) c.tcp:write(s) end

-- One answer at the start of buf: the answer and where the next begins.
local function parse(buf)
  local eoh = buf:find("\r\n\r\n", 1, true)
  if not eoh then return nil end
  local head = buf:sub(1, eoh - 1)
  local r = { status = tonumber(head:match("^HTTP/1%.[01] (%d+)")), headers = {}, head = head }
  for k, v in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do r.headers[k:lower()] = v end
  local at = eoh + 4
  if r.status < 200 then return r, at end
  local len = tonumber(r.headers["content-length"])
  if len then
    if #buf < at + len - 1 then return nil end
    r.body = buf:sub(at, at + len - 1)
    return r, at + len
  end
  if r.headers["transfer-encoding"] == "chunked" then
    local parts = {}
    while true do
      local line_end = buf:find("\r\n", at, true)
      if not line_end then return nil end
      local n = tonumber(buf:sub(at, line_end - 1), 16)
      if n == 0 then
        if #buf < line_end + 3 then return nil end
        r.body = table.concat(parts)
        return r, line_end + 4
      end
      if #buf < line_end + 2 + n + 1 then return nil end
      parts[#parts + 1] = buf:sub(line_end + 2, line_end + 1 + n)
      at = line_end + 2 + n + 2
    end
  end
  return nil -- delimited by the close: not used here
end

-- The next answer on c (nil when the connection ended first).
local function answer(c, timeout)
  local r
  run_until(function()
    local a, nxt = parse(c.buf)
    if a then
      r = a
      c.buf = c.buf:sub(nxt)
      return true
    end
    return c.eof
  end, timeout or 5, "an answer")
  return r
end

local function request(c, method, path, body, extra)
  send(c, string.format("%s %s HTTP/1.1\r\nHost: spec\r\n%s%s\r\n%s", method, path, extra or "",
    body and ("Content-Length: " .. #body .. "\r\n") or "", body or ""))
  return answer(c)
end

local function wait_eof(c, timeout) return run_until(function() return c.eof end, timeout or 5, "the server's close") end

local function ms_since(t0)
  uv.update_time()
  return uv.now() - t0
end

describe("luasvc.http", function()
  after_each(cleanup)

  it("serves examples/hello_http.lua: /hello, /echo, /slow, /boom (500, logged, the connection goes on), 404", function()
    local p, port = start(HELLO)
    local c = connect(port)
    local r = request(c, "GET", "/hello")
    assert.equal(200, r.status)
    assert.equal("hello\n", r.body)
    r = request(c, "POST", "/echo", "some text")
    assert.same({ 200, "some text" }, { r.status, r.body })
    uv.update_time()
    local t0 = uv.now()
    r = request(c, "GET", "/slow")
    assert.same({ 200, "slow\n" }, { r.status, r.body })
    assert.is_true(ms_since(t0) >= 190, "slow answered after " .. ms_since(t0) .. " ms")
    r = request(c, "GET", "/boom")
    assert.equal(500, r.status)
    H.wait_log(p, "boom: this handler fails on purpose")
    assert.truthy(H.log(p):find("stack traceback", 1, true))
    r = request(c, "GET", "/hello") -- the same connection goes on
    assert.same({ 200, "hello\n" }, { r.status, r.body })
    assert.equal(404, request(c, "GET", "/nothing").status)
    assert.equal("RUNNING", H.status(p, "hello_http").state)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("a waiting handler holds only its own request: /slow and /hang beside /hello", function()
    local p, port = knobs()
    local hang, slow, fast = connect(port), connect(port), connect(port)
    send(hang, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
    H.wait_log(p, "hang: begun")
    send(slow, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    H.wait_log(p, "slow: begun")
    uv.update_time()
    local t0 = uv.now()
    local r = request(fast, "GET", "/hello")
    assert.equal(200, r.status)
    assert.is_true(ms_since(t0) < 150, "hello took " .. ms_since(t0) .. " ms beside /slow")
    assert.same({ 200, "slow\n" }, { answer(slow).status, "slow\n" })
    assert.equal("", hang.buf)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("answers three pipelined requests in order, chunked in and out, request headers and query", function()
    local _, port = knobs()
    local c = connect(port)
    send(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n" ..
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nthird")
    assert.equal("slow\n", answer(c).body)
    assert.equal("hello\n", answer(c).body)
    assert.equal("third", answer(c).body)
    send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" ..
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert.equal("hello world", answer(c).body)
    local r = request(c, "GET", "/stream")
    assert.equal("chunked", r.headers["transfer-encoding"])
    assert.equal("chunk1chunk2chunk3", r.body)
    r = request(c, "GET", "/headers?a=1&b=2", nil, "X-One: first\r\nx-one: second\r\n")
    assert.equal("first, second|a=1&b=2", r.body)
  end)

  it("takes and gives a 1 MiB body; one byte more is refused with 413", function()
    local _, port = start(HELLO)
    local big = ("0123456789abcdef"):rep(65536)
    assert.equal(1048576, #big)
    local c = connect(port)
    local r = request(c, "POST", "/echo", big)
    assert.equal(200, r.status)
    assert.is_true(r.body == big, "the echoed body differs")
    local c2 = connect(port)
    r = request(c2, "POST", "/echo", big .. "x")
    assert.equal(413, r.status)
    wait_eof(c2)
  end)

  it("two pipelined 8 MiB answers arrive whole and in order (writes the socket takes in part)", function()
    local p, port = knobs()
    local c = connect(port, 4096)
    -- (under a sanitizer every copy of it costs several times more, within
    -- the fixture's 1 s handler_timeout: 2 MiB there, still whole and in order)
    local n = (SANITIZED and 2 or 8) * 1048576
    send(c, "GET /big?" .. n .. "&A HTTP/1.1\r\nHost: x\r\n\r\nGET /big?" .. n .. "&B HTTP/1.1\r\nHost: x\r\n\r\n" ..
      "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    local want = 2 * n + 6 -- the bodies and "hello\n", besides the heads
    local r1, r2, r3
    run_until(function()
      if c.got < want then return c.eof end
      local buf = table.concat(c.parts)
      c.parts = { buf }
      local i, j
      r1, i = parse(buf)
      if r1 then r2, j = parse(buf:sub(i)) end
      if r2 then r3 = parse(buf:sub(i + j - 1)) end
      return r3 ~= nil or c.eof
    end, 30, "the answers")
    assert(r3, "the connection ended before three answers; log:\n" .. H.log(p))
    assert.is_true(r1.body == ("A"):rep(n), "the first body differs")
    assert.is_true(r2.body == ("B"):rep(n), "the second body differs")
    assert.equal("hello\n", r3.body)
  end)

  it("answers each request with its own header values; a framing header is the server's; a bad one is a 500", function()
    local _, port = knobs()
    local c = connect(port)
    for _, v in ipairs({ "one", "two", "one", "5", "two" }) do
      local r = request(c, "GET", "/hdr?" .. v)
      assert.equal(200, r.status)
      assert.equal(v, r.headers["x-v"])
      assert.equal(tostring(math.tointeger(tonumber(v)) or 0), r.headers["x-n"])
      assert.equal("4", r.headers["content-length"])
      assert.equal("hdr\n", r.body)
      local _, n = r.head:lower():gsub("content%-length", "")
      assert.equal(1, n, r.head)
    end
    local r = request(c, "GET", "/badhdr?x")
    assert.equal(500, r.status)
    assert.falsy(r.head:find("Injected", 1, true), r.head)
    r = request(c, "GET", "/hdr?three")
    assert.equal("three", r.headers["x-v"])
  end)

  it("refuses a 200 kB header (431), a long target (414), garbage (400), each closing the connection", function()
    local p, port = start(HELLO)
    local c = connect(port)
    local r = request(c, "GET", "/hello", nil, "X-Big: " .. ("a"):rep(200000) .. "\r\n")
    assert.equal(431, r.status)
    wait_eof(c)
    c = connect(port)
    assert.equal(414, request(c, "GET", "/" .. ("a"):rep(9000)).status)
    wait_eof(c)
    c = connect(port)
    send(c, "\0\1\2 garbage \255\r\n\r\n")
    assert.equal(400, answer(c).status)
    wait_eof(c)
    c = connect(port)
    send(c, "GET /hello HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
    assert.equal(400, answer(c).status)
    wait_eof(c)
    assert.equal("RUNNING", H.status(p, "hello_http").state)
    assert.equal(200, request(connect(port), "GET", "/hello").status)
  end)

  it("HTTP/1.0 closes unless kept alive; Connection: close closes; 100-continue is answered", function()
    local _, port = start(HELLO)
    local c = connect(port)
    send(c, "GET /hello HTTP/1.0\r\n\r\n")
    assert.equal("hello\n", answer(c).body)
    wait_eof(c)
    c = connect(port)
    send(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    local r = answer(c)
    assert.equal("keep-alive", r.headers.connection:lower())
    assert.equal(200, request(c, "GET", "/hello").status)
    r = request(c, "GET", "/hello", nil, "Connection: close\r\n")
    assert.equal("close", r.headers.connection)
    wait_eof(c)
    c = connect(port)
    send(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert.equal(100, answer(c).status)
    send(c, "body")
    assert.equal("body", answer(c).body)
  end)

  it("200 clients sending a header a byte at a time do not slow a normal client (each request < 100 ms; sanitized: 400)", function()
    local _, port = start(HELLO)
    local slow = {}
    for i = 1, 200 do slow[i] = connect(port) end
    for _, c in ipairs(slow) do send(c, "GET /hello HTTP/1.1\r\nX-Slow: ") end
    local ticker = uv.new_timer()
    ticker:start(DRIBBLE_MS, DRIBBLE_MS, function()
      for _, c in ipairs(slow) do if not c.eof then send(c, "a") end end
    end)
    local c = connect(port)
    local worst = 0
    for _ = 1, 30 do
      uv.update_time()
      local t0 = uv.now()
      local r = request(c, "GET", "/hello")
      assert.equal(200, r.status)
      worst = math.max(worst, ms_since(t0))
      local fresh = connect(port) -- new connections too
      uv.update_time()
      t0 = uv.now()
      assert.equal(200, request(fresh, "GET", "/hello").status)
      worst = math.max(worst, ms_since(t0))
      fresh.tcp:close()
    end
    ticker:close()
    for _, s in ipairs(slow) do assert.is_nil(s.eof) end -- still held open, within header_timeout
    assert.is_true(worst < WORST_MS, "the slowest request took " .. worst .. " ms")
  end)

  it("header_timeout answers 408 and closes; idle_timeout closes a quiet keep-alive connection", function()
    local _, port = knobs("header_timeout=300", "idle_timeout=400")
    local c = connect(port)
    send(c, "GET /hello HTTP/1.1\r\nX-Slow: a")
    uv.update_time()
    local t0 = uv.now()
    assert.equal(408, answer(c, 3).status)
    wait_eof(c)
    assert.is_true(ms_since(t0) >= 250, "408 after " .. ms_since(t0) .. " ms")
    c = connect(port)
    assert.equal(200, request(c, "GET", "/hello").status)
    uv.update_time()
    t0 = uv.now()
    wait_eof(c, 3)
    assert.is_true(ms_since(t0) >= 350, "closed after " .. ms_since(t0) .. " ms")
    assert.equal("", c.buf)
  end)

  it("max_connections leaves more waiting in the kernel's queue, served as one closes", function()
    local _, port = knobs("max_connections=2")
    local a, b = connect(port), connect(port)
    assert.equal(200, request(a, "GET", "/hello").status)
    assert.equal(200, request(b, "GET", "/hello").status)
    local c = connect(port) -- the kernel accepts it; the server does not yet
    send(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    -- absence can only be shown over a while: 300 ms without an answer
    assert.is_falsy(run_until(function() return c.buf ~= "" or c.eof == true end, 0.3))
    a.tcp:close()
    local r = answer(c)
    assert.same({ 200, "hello\n" }, { r.status, r.body })
  end)

  it("PAUSE stops accepting without refusing anyone; open connections go on; CONTINUE serves the waiting", function()
    local p, port = start(HELLO)
    local old = connect(port)
    assert.equal(200, request(old, "GET", "/hello").status)
    assert.equal(0, (H.client(p, "pause", "hello_http")))
    H.wait_state(p, "hello_http", "PAUSED")
    local c = connect(port)
    send(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.equal(200, request(old, "GET", "/hello").status) -- the open one is served
    assert.is_falsy(run_until(function() return c.buf ~= "" or c.eof == true end, 0.3))
    assert.equal(0, (H.client(p, "continue", "hello_http")))
    local r = answer(c)
    assert.same({ 200, "hello\n" }, { r.status, r.body })
  end)

  it("a stop lets the request in flight finish and closes an idle keep-alive connection at once", function()
    local p, port = knobs()
    local idle, busy = connect(port), connect(port)
    assert.equal(200, request(idle, "GET", "/hello").status)
    send(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    H.wait_log(p, "slow: begun")
    uv.update_time()
    local t0 = uv.now()
    H.kill(p, "TERM")
    wait_eof(idle)
    assert.is_true(ms_since(t0) < 200, "the idle connection closed after " .. ms_since(t0) .. " ms")
    assert.equal("", idle.buf)
    local r = answer(busy)
    assert.equal(200, r.status) -- its wait ended with the stop: the handler answered
    assert.equal("cut short\n", r.body)
    wait_eof(busy)
    assert.equal(0, H.wait_exit(p))
    assert.truthy(H.log(p):find("stop: closed true", 1, true), H.log(p))
  end)

  it("a handler that spins past handler_timeout loses its connection only; the service goes on", function()
    local p, port = knobs()
    local c = connect(port)
    send(c, "GET /spin HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_eof(c, 5)
    H.wait_log(p, "ran past handler_timeout")
    assert.equal(200, request(connect(port), "GET", "/hello").status)
    assert.equal("RUNNING", H.status(p, "http_knobs").state)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("the client: GET and POST with a timeout, from a handler to its own server", function()
    local _, port = knobs()
    local c = connect(port)
    local base = "http://127.0.0.1:" .. port
    local r = request(c, "GET", "/fetch?url=" .. base .. "/hello&timeout=2000")
    assert.equal("200 hello\n", r.body)
    r = request(c, "POST", "/fetch?url=" .. base .. "/echo&timeout=2000", "posted")
    assert.equal("200 posted", r.body)
    r = request(c, "GET", "/fetch?url=" .. base .. "/hang&timeout=300")
    local code, ms = r.body:match("^error (%S+) (%d+)$")
    assert.equal("timeout", code, r.body)
    assert.is_true(tonumber(ms) >= 290 and tonumber(ms) < 1500, r.body)
    r = request(c, "GET", "/fetch?url=http://127.0.0.1:1/&timeout=2000")
    assert.truthy(r.body:find("^error ECONNREFUSED"), r.body)
  end)

  it("a hot edit under ab -k load: no request fails, the next requests get the new text", function()
    if os.execute("command -v ab >/dev/null") ~= true then
      pending("ab (apache2-utils) is not installed")
      return
    end
    local original = H.read(HELLO)
    local path, d = H.script(original, "hello_http.lua")
    local p, port = start(path)
    local out = d .. "/ab.out"
    os.execute(string.format("timeout 30 ab -k -q -c 4 -t 3 -n 10000000 http://127.0.0.1:%d/hello > %s 2>&1 &",
      port, H.q(out)))
    local texts = { "HELLO\n", "Hello\n", "hello\n" } -- same length: ab counts a change of length as a failure
    for v, text in ipairs(texts) do
      local edited = original:gsub('return 200, "hello\\n"', 'return 200, "' .. text:gsub("\n", "\\n") .. '"')
      assert(v == 3 or edited ~= original)
      H.write(path .. ".tmp", edited)
      assert(os.rename(path .. ".tmp", path))
      H.wait_for(function() return tonumber(H.status(p, "hello_http").reloads) == v end, 5, "reload " .. v)
      local c = connect(port)
      assert.equal(text, request(c, "GET", "/hello").body)
      c.tcp:close()
    end
    H.wait_for(function() return (H.read(out) or ""):find("Requests per second") end, 20, "ab to finish")
    local report = H.read(out)
    local complete = tonumber(report:match("Complete requests:%s+(%d+)"))
    assert.is_true(complete > 1000, report)
    assert.equal("0", report:match("Failed requests:%s+(%d+)"), report)
    assert.is_nil(report:find("Non%-2xx"), report)
    assert.truthy(report:find("Keep%-Alive requests:%s+" .. complete), report)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)
end)
