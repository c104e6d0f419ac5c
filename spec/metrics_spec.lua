-- metrics_spec.lua - `luasvc run --metrics ADDR:PORT`, the host's own
-- health and metrics endpoint (runtime/front/metrics.c): the Prometheus
-- exposition parsed and checked, /healthz's rule, and a server that no
-- client can hold: slow, silent, garbage, oversized, many at once.
local uv = require "luv"
local system = require "system"

-- A write to a connection the endpoint has closed (it evicts the oldest
-- silent client) fails with EPIPE instead of killing busted: SIGPIPE caught.
local sigpipe = uv.new_signal()
sigpipe:start("sigpipe", function() end)

-- alpha: pause, paramchange, a user control; its file is edited by the
-- tests (a hot reload, then a refused one).
local ALPHA = [[
local S = { name = "alpha", accepts = { "stop", "pause_continue", "paramchange" }, stop_timeout = 3000 }
function S.run(ctx) while ctx:sleep(20) do end end
S.controls = { [200] = function(ctx) ctx:log("info", "CTL:200") end }
S.controls[202] = function(ctx) -- busy for 1.5 s (wall clock) without a wait
  local uv = require "luv"
  ctx:log("info", "SPIN:begin")
  local t = uv.hrtime()
  while uv.hrtime() - t < 1.5e9 do end
  ctx:log("info", "SPIN:end")
end
return S
]]

-- beta: its start waits for the file args[1] (START_PENDING for as long
-- as a test wants); control 201 stops it with service-specific exit code 3.
local BETA = [[
local S = { name = "beta", accepts = { "stop" }, stop_timeout = 3000 }
function S.start(ctx, args)
  while true do
    local f = io.open(args[1], "r")
    if f then f:close() return end
    ctx:progress(5000)
    if not ctx:sleep(20) then return end
  end
end
function S.run(ctx) while ctx:sleep(20) do end end
S.controls = { [201] = function(ctx) ctx:exit(3) end }
return S
]]

-- A host of alpha and beta with the endpoint on a free port; beta starts
-- once go() is called. Returns the proc, the port, alpha's path, go.
local function host(opts)
  opts = opts or {}
  local alpha = H.script(ALPHA, "alpha.lua")
  local beta, d = H.script(BETA, "beta.lua")
  local gofile = d .. "/go"
  if not opts.hold then H.write(gofile, "") end
  local p = H.start { options = { "--metrics", "127.0.0.1:0" }, scripts = { alpha, beta }, args = { gofile } }
  H.wait_log(p, "metrics: listening on 127%.0%.0%.1:%d+")
  local port = tonumber(H.log(p):match("metrics: listening on 127%.0%.0%.1:(%d+)"))
  return p, port, alpha, function() H.write(gofile, "") end
end

-- Send bytes (a string, or a list written in turn) on a new connection and
-- read until the server closes: the whole answer (nil, err when none came
-- within timeout). opts.keep: leave the connection open, return it.
local function exchange(port, bytes, timeout)
  local st = { buf = "" }
  local c = uv.new_tcp()
  c:connect("127.0.0.1", port, function(err)
    if err then st.err, st.closed = err, true return end
    c:read_start(function(e, d)
      if e or not d then st.closed, st.err = true, e return end
      st.buf = st.buf .. d
    end)
    if bytes then c:write(bytes) end
  end)
  local deadline = system.monotime() + (timeout or 5)
  while not st.closed and system.monotime() < deadline do
    uv.run("nowait")
    system.sleep(0.002)
  end
  if not c:is_closing() then c:close() end
  uv.run("nowait")
  if not st.closed then return nil, "no close within " .. (timeout or 5) .. " s; got: " .. st.buf:sub(1, 200) end
  if st.buf == "" then return nil, st.err or "closed without an answer" end
  return st.buf
end

-- A request's answer: status, headers (lower-case names), body.
local function request(port, method, path, extra)
  local raw, err = exchange(port, method .. " " .. path .. " HTTP/1.1\r\nHost: x\r\n" .. (extra or "") .. "\r\n")
  assert(raw, err)
  local head, body = raw:match("^(.-)\r\n\r\n(.*)$")
  assert(head, "no head in: " .. raw:sub(1, 200))
  local status = tonumber(head:match("^HTTP/1%.1 (%d%d%d) "))
  local headers = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+): ([^\r\n]*)") do headers[k:lower()] = v end
  if method ~= "HEAD" then
    assert.equal(tonumber(headers["content-length"]), #body, "Content-Length")
  end
  return status, headers, body
end

-- The Prometheus text format 0.0.4, parsed and checked line by line:
-- every sample after its family's # HELP and # TYPE, a family's samples
-- together, label values escaped. Returns value(name, labels) -> number.
local function parse_exposition(text)
  local families, samples, current = {}, {}, nil
  assert.equal("\n", text:sub(-1), "the text ends with a line feed")
  for line in text:gmatch("([^\n]*)\n") do
    local kind, name, rest = line:match("^# (%u+) ([%a_:][%w_:]*) (.*)$")
    if kind == "HELP" then
      assert.is_nil(families[name], "a second family " .. name)
      families[name] = { help = rest }
      current = name
    elseif kind == "TYPE" then
      assert.equal(current, name, "# TYPE after its # HELP: " .. line)
      assert.truthy(({ counter = 1, gauge = 1, histogram = 1 })[rest], line)
      families[name].type = rest
    else
      local sname, labels, value = line:match("^([%a_:][%w_:]*){(.*)} (%S+)$")
      assert(sname, "not a sample line: " .. line)
      local base = sname
      if families[current].type == "histogram" then
        base = sname:match("^(.*)_bucket$") or sname:match("^(.*)_sum$") or sname:match("^(.*)_count$")
      end
      assert.equal(current, base, "a sample of another family inside " .. current .. ": " .. line)
      local l, pos = {}, 1
      while pos <= #labels do
        local k = labels:match('^([%a_][%w_]*)="', pos)
        assert(k, "bad label in " .. line)
        -- the value: up to the first double quote not escaped
        local i, out = pos + #k + 2, {}
        while true do
          local ch = labels:sub(i, i)
          assert(ch ~= "" and ch ~= "\n", "unterminated label value in " .. line)
          if ch == "\\" then
            local nx = labels:sub(i + 1, i + 1)
            assert(nx == "\\" or nx == '"' or nx == "n", "bad escape in " .. line)
            out[#out + 1] = nx == "n" and "\n" or nx
            i = i + 2
          elseif ch == '"' then
            break
          else
            out[#out + 1] = ch
            i = i + 1
          end
        end
        l[k] = table.concat(out)
        pos = i + 1
        if pos <= #labels then
          assert.equal(",", labels:sub(pos, pos), "labels separated by commas: " .. line)
          pos = pos + 1
        end
      end
      local num = value == "+Inf" and math.huge or tonumber(value)
      assert(num, "not a number: " .. line)
      samples[#samples + 1] = { name = sname, labels = l, value = num }
    end
  end
  for name, f in pairs(families) do assert.truthy(f.type, "no # TYPE for " .. name) end
  local function value(name, labels)
    for _, s in ipairs(samples) do
      local ok = s.name == name
      for k, v in pairs(labels) do ok = ok and s.labels[k] == v end
      if ok then return s.value end
    end
  end
  return value, families, samples
end

local function metrics(port)
  local status, headers, body = request(port, "GET", "/metrics")
  assert.equal(200, status, body)
  assert.equal("text/plain; version=0.0.4; charset=utf-8", headers["content-type"])
  return parse_exposition(body)
end

local function health(port)
  local status, _, body = request(port, "GET", "/healthz")
  return status, body
end

-- Checks one service's histogram: cumulative, +Inf = _count.
local function histogram(value, samples, svc)
  local prev, n = -1, 0
  for _, s in ipairs(samples) do
    if s.name == "luasvc_control_latency_seconds_bucket" and s.labels.service == svc then
      assert.is_true(s.value >= prev, "buckets are cumulative")
      prev, n = s.value, n + 1
    end
  end
  assert.equal(10, n)
  local count = value("luasvc_control_latency_seconds_count", { service = svc })
  assert.equal(count, value("luasvc_control_latency_seconds_bucket", { service = svc, le = "+Inf" }))
  return count, value("luasvc_control_latency_seconds_sum", { service = svc })
end

local function stop(p)
  H.kill(p, "TERM")
  assert.equal(0, H.wait_exit(p))
end

describe("luasvc run --metrics", function()
  after_each(H.cleanup)

  it("serves the services' numbers in the Prometheus text format", function()
    local p, port, alpha = host()
    H.wait_state(p, "alpha", "RUNNING")
    H.wait_state(p, "beta", "RUNNING")
    local value, families, samples = metrics(port)
    for _, f in ipairs { "luasvc_service_state", "luasvc_controls_total", "luasvc_control_latency_seconds",
      "luasvc_reloads_total", "luasvc_reload_errors_total", "luasvc_lua_memory_bytes", "luasvc_tasks",
      "luasvc_children" } do
      assert.truthy(families[f], "family " .. f)
    end
    assert.equal("counter", families.luasvc_controls_total.type)
    assert.equal("histogram", families.luasvc_control_latency_seconds.type)
    for _, svc in ipairs { "alpha", "beta" } do
      assert.equal(4, value("luasvc_service_state", { service = svc }))
      assert.equal(0, value("luasvc_controls_total", { service = svc }))
      assert.equal(0, (histogram(value, samples, svc)))
      assert.is_true(value("luasvc_lua_memory_bytes", { service = svc }) > 10000)
      assert.is_true(value("luasvc_tasks", { service = svc }) >= 1)
      assert.equal(0, value("luasvc_children", { service = svc }))
    end
    -- a control: counted, its latency bucketed
    assert.equal(0, (H.client(p, "control", "alpha", "200")))
    H.wait_log(p, "CTL:200")
    value, _, samples = metrics(port)
    assert.equal(1, value("luasvc_controls_total", { service = "alpha" }))
    local count, sum = histogram(value, samples, "alpha")
    assert.equal(1, count)
    assert.is_true(sum > 0 and sum < 1, "latency sum " .. sum)
    assert.equal(0, value("luasvc_controls_total", { service = "beta" }))
    -- a hot edit taken up, then one refused
    H.write(alpha .. ".tmp", ALPHA:gsub("ctx:sleep%(20%)", "ctx:sleep(25)"))
    assert(os.rename(alpha .. ".tmp", alpha))
    H.wait_for(function() return metrics(port)("luasvc_reloads_total", { service = "alpha" }) == 1 end, 10,
      "the reload to be counted; log:\n" .. H.log(p))
    H.write(alpha .. ".tmp", "return {") -- a syntax error
    assert(os.rename(alpha .. ".tmp", alpha))
    H.wait_for(function() return metrics(port)("luasvc_reload_errors_total", { service = "alpha" }) == 1 end, 10,
      "the refused reload to be counted; log:\n" .. H.log(p))
    value = metrics(port)
    assert.equal(1, value("luasvc_reloads_total", { service = "alpha" }))
    assert.equal(4, value("luasvc_service_state", { service = "alpha" }))
    assert.equal(0, value("luasvc_reload_errors_total", { service = "beta" }))
    -- HEAD: the head alone
    local status, headers, body = request(port, "HEAD", "/metrics")
    assert.equal(200, status)
    assert.equal("", body)
    assert.is_true(tonumber(headers["content-length"]) > 1000)
    stop(p)
  end)

  it("/healthz: 503 while starting, 200 while running or paused, 503 with the reason once one stopped with an error", function()
    local p, port, _, go = host { hold = true }
    H.wait_state(p, "alpha", "RUNNING")
    local status, body = health(port)
    assert.equal(503, status, body)
    assert.truthy(body:find("beta: START_PENDING for %d+ ms"), body)
    assert.truthy(body:find("alpha: RUNNING", 1, true), body)
    assert.equal(2, metrics(port)("luasvc_service_state", { service = "beta" }))
    go()
    H.wait_state(p, "beta", "RUNNING")
    status, body = health(port)
    assert.equal(200, status, body)
    assert.truthy(body:find("^ok: every service is where it was asked to be\n"), body)
    -- paused by request: where it was asked to be
    assert.equal(0, (H.client(p, "pause", "alpha")))
    H.wait_state(p, "alpha", "PAUSED")
    status, body = health(port)
    assert.equal(200, status, body)
    assert.truthy(body:find("alpha: PAUSED", 1, true), body)
    assert.equal(7, metrics(port)("luasvc_service_state", { service = "alpha" }))
    -- beta ends with an error; the host goes on with alpha
    assert.equal(0, (H.client(p, "control", "beta", "201")))
    H.wait_log(p, "beta: STOPPED with service%-specific exit code 3")
    status, body = health(port)
    assert.equal(503, status, body)
    assert.truthy(body:find("^unhealthy: 1 of 2 services is not where it was asked to be\n"), body)
    assert.truthy(body:find("beta: STOPPED with service-specific exit code 3", 1, true), body)
    assert.truthy(body:find("alpha: PAUSED", 1, true), body)
    assert.equal(1, metrics(port)("luasvc_service_state", { service = "beta" }))
    H.kill(p, "TERM")
    assert.equal(3, H.wait_exit(p))
  end)

  it("answers 404, 405, 400 at the first wrong byte, 413, 431, 505; and goes on serving", function()
    local p, port = host()
    H.wait_state(p, "beta", "RUNNING")
    assert.equal(404, (request(port, "GET", "/nothing")))
    local status, headers = request(port, "POST", "/metrics")
    assert.equal(405, status)
    assert.equal("GET, HEAD", headers.allow)
    assert.equal(200, (request(port, "GET", "/metrics?name[]=x")))
    local function answer_of(bytes, within)
      local t0 = system.monotime()
      local raw, err = exchange(port, bytes, within)
      assert(raw, err)
      return tonumber(raw:match("^HTTP/1%.1 (%d%d%d) ")), system.monotime() - t0, raw
    end
    -- garbage is answered at once, not after the 5 s read timeout
    for _, g in ipairs { "\0\1\2\3", "GET\1/ HTTP/1.1\r\n", "\255\254garbage", "GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
      "GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTX/1.1\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nA: b\rc\r\n\r\n" } do
      local code, took, raw = answer_of(g, 3)
      assert.equal(400, code, ("%q -> %s"):format(g, raw))
      assert.is_true(took < 2, "answered after " .. took .. " s")
    end
    assert.equal(505, (answer_of("GET /metrics HTTP/2.0\r\n\r\n")))
    -- a 100 kB request: its head is too long (431), its request line too (413),
    -- and the answer reaches the client still sending
    local big = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " .. string.rep("a", 100000) .. "\r\n\r\n"
    assert.equal(431, (answer_of(big)))
    assert.equal(413, (answer_of("GET /" .. string.rep("a", 100000) .. " HTTP/1.1\r\n\r\n")))
    -- a body it does not read is no harm
    assert.equal(405, (answer_of("POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" .. string.rep("b", 100000))))
    assert.equal(200, (health(port)))
    assert.equal("RUNNING", H.status(p, "alpha").state)
    stop(p)
  end)

  it("slow, silent and many clients hold neither a prompt client nor the services", function()
    local p, port = host()
    H.wait_state(p, "beta", "RUNNING")
    -- 100 clients: a slow one sending its request a byte at a time, the
    -- others silent (more than the endpoint's 32 connections)
    local conns, connected = {}, 0
    for i = 1, 100 do
      local c = uv.new_tcp()
      conns[i] = c
      c:connect("127.0.0.1", port, function(err)
        if not err then
          connected = connected + 1
          if i == 1 then c:write("GET /hea") end
          c:read_start(function() end)
        end
      end)
    end
    H.wait_for(function() uv.run("nowait"); return connected == 100 end, 10, "100 connections")
    for _ = 1, 5 do
      local t0 = system.monotime()
      local status, body = health(port)
      local took = system.monotime() - t0
      assert.equal(200, status, body)
      assert.is_true(took < 1, "a prompt client waited " .. took .. " s")
      conns[1]:write("l")
      uv.run("nowait")
    end
    -- the services go on meanwhile: a control is delivered
    assert.equal(0, (H.client(p, "control", "alpha", "200")))
    H.wait_log(p, "CTL:200")
    for _, c in ipairs(conns) do c:close() end
    uv.run("nowait")
    assert.equal(200, (health(port)))
    stop(p)
  end)

  it("answers while a service's Lua is busy: it never waits on a worker", function()
    local p, port = host()
    H.wait_state(p, "beta", "RUNNING")
    assert.equal(0, (H.client(p, "control", "alpha", "202")))
    H.wait_log(p, "SPIN:begin")
    local t0 = system.monotime()
    local value = metrics(port)
    local status = health(port)
    local took = system.monotime() - t0
    -- both answered while the handler still ran
    assert.is_falsy(H.log(p):find("SPIN:end", 1, true), "answered only after the spin, in " .. took .. " s")
    assert.equal(200, status)
    assert.equal(4, value("luasvc_service_state", { service = "alpha" }))
    H.wait_log(p, "SPIN:end", 15)
    stop(p)
  end)

  it("a client that never sends its request is answered 408 after the read timeout", function()
    local p, port = host()
    H.wait_state(p, "beta", "RUNNING")
    local t0 = system.monotime()
    local raw, err = exchange(port, "GET /metr", 15)
    assert(raw, err)
    local took = system.monotime() - t0
    assert.truthy(raw:find("^HTTP/1%.1 408 "), raw)
    assert.is_true(took > 4 and took < 10, "closed after " .. took .. " s")
    stop(p)
  end)

  it("bad values of --metrics are refused, naming the argument; a port in use too", function()
    local s = H.script(ALPHA, "alpha.lua")
    for _, bad in ipairs { { "nonsense", "'nonsense' is not ADDR:PORT" }, { "127.0.0.1:99999", "bad port '99999'" },
      { "127.0.0.1:", "bad port ''" }, { "127.0.0.1:-5", "bad port '-5'" }, { "example:80", "bad address 'example'" },
      { "[::1]", "'[::1]' is not ADDR:PORT" }, { "[127.0.0.1]:80", "bad address '127.0.0.1'" }, { "::1:80", "bad address '::1'" }, { "1.2.3:80", "bad address '1.2.3'" } } do
      local rc, out = H.run_sync { "run", "--metrics", bad[1], s }
      assert.equal(2, rc, out)
      assert.truthy(out:find("luasvc run: --metrics needs ADDR:PORT: " .. bad[2], 1, true), out)
    end
    local rc, out = H.run_sync { "run", s, "--metrics" }
    assert.equal(2, rc, out)
    assert.truthy(out:find("luasvc run: --metrics needs ADDR:PORT: none given", 1, true), out)
    -- a port another socket holds: said before any service starts
    local server = uv.new_tcp()
    assert(server:bind("127.0.0.1", 0))
    assert(server:listen(1, function() end))
    local port = server:getsockname().port
    rc, out = H.run_sync { "run", "--metrics", "127.0.0.1:" .. port, s }
    server:close()
    uv.run("nowait")
    assert.equal(1, rc, out)
    assert.truthy(out:find("luasvc run: --metrics cannot listen on 127.0.0.1:" .. port .. ": Address already in use", 1, true), out)
    assert.falsy(out:find("START_PENDING", 1, true), out)
    -- `luasvc help run` shows it
    rc, out = H.run_sync { "help", "run" }
    assert.equal(0, rc)
    assert.truthy(out:find("--metrics ADDR:PORT", 1, true), out)
  end)

  it("is off by default", function()
    local p = H.start { scripts = { (H.script(ALPHA, "alpha.lua")) } }
    H.wait_state(p, "alpha", "RUNNING")
    assert.falsy(H.log(p):find("metrics:", 1, true))
    stop(p)
  end)
end)
