-- examples_spec.lua - the examples, end to end on the console host: real
-- processes, real sockets, polled with deadlines.
local uv = require "luv"
local json = require "dkjson"

local children = {}

local function cleanup()
  for _, pid in ipairs(children) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
  children = {}
  H.cleanup()
end

local function port_of(p)
  H.wait_log(p, "listening on http://[%d.]+:%d+/health")
  return tonumber(H.log(p):match("listening on http://[%d.]+:(%d+)/health"))
end

-- One GET with curl: status code, body (nil when no connection).
local function get(port, path)
  local rc, out = H.sh(string.format("curl -s -m 3 -w '\\n%%{http_code}' http://127.0.0.1:%d%s", port, path))
  if rc ~= 0 then return nil, out end
  local body, code = out:match("^(.*)\n(%d+)$")
  return tonumber(code), body
end

-- A keep-alive HTTP client on this process's luv loop.
local function client(port)
  local st = { buf = "", answers = {}, failed = 0 }
  local c = uv.new_tcp()
  st.c = c
  c:connect("127.0.0.1", port, function(err)
    st.err, st.connected = err, not err
    if err then return end
    c:read_start(function(e, d)
      if e or not d then st.closed = true; return end
      st.buf = st.buf .. d
      while true do
        local eoh = st.buf:find("\r\n\r\n", 1, true)
        if not eoh then break end
        local len = tonumber(st.buf:sub(1, eoh):match("Content%-Length: (%d+)"))
        if #st.buf < eoh + 3 + len then break end
        st.answers[#st.answers + 1] = { status = st.buf:match("^HTTP/1.1 (%d+)"), body = st.buf:sub(eoh + 4, eoh + 3 + len) }
        st.buf = st.buf:sub(eoh + 4 + len)
      end
    end)
  end)
  H.wait_for(function() uv.run("nowait"); return st.connected or st.err end, 5, "a connection")
  assert(st.connected, st.err)
  function st.request()
    local n = #st.answers
    c:write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    H.wait_for(function() uv.run("nowait"); return #st.answers > n or st.closed end, 5, "an answer")
    assert(not st.closed, "the server closed the connection")
    return st.answers[#st.answers]
  end
  return st
end

describe("examples/http_health.lua", function()
  after_each(cleanup)

  it("answers GET /health with its state and count, also PAUSED; control 200 logs; stop closes the listener", function()
    local p = H.start { scripts = { "examples/http_health.lua" }, args = { "0" } }
    H.wait_state(p, "http_health", "RUNNING")
    local port = port_of(p)
    local code, body = get(port, "/health")
    assert.equal(200, code)
    assert.same({ state = "RUNNING", requests = 1 }, json.decode(body))
    assert.equal(404, (get(port, "/nothing")))
    assert.equal(0, (H.client(p, "pause", "http_health")))
    H.wait_state(p, "http_health", "PAUSED")
    code, body = get(port, "/health")
    assert.equal(200, code)
    assert.same({ state = "PAUSED", requests = 3 }, json.decode(body))
    assert.equal(0, (H.client(p, "control", "http_health", "200")))
    H.wait_log(p, "requests: 3, state PAUSED")
    assert.equal(0, (H.client(p, "continue", "http_health")))
    H.wait_state(p, "http_health", "RUNNING")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    assert.truthy(H.log(p):find("listener closed after 3 requests", 1, true))
    assert.is_nil((get(port, "/health")))
  end)

  it("a hot edit keeps the server live: no request fails, the new code answers within the reload", function()
    local d = H.tmpdir()
    local path = d .. "/http_health.lua"
    local original = H.read("examples/http_health.lua")
    local function version(v)
      local text = original:gsub('return "200 OK", json { state = ctx:state%(%), requests = ctx.data.requests }',
        'return "200 OK", json { state = "v' .. v .. '", requests = ctx.data.requests }')
      assert(text ~= original)
      return text
    end
    H.write(path, original)
    local p = H.start { scripts = { path }, args = { "0" } }
    H.wait_state(p, "http_health", "RUNNING")
    local st = client(port_of(p))
    local seen = 0
    for v = 1, 3 do
      H.write(path .. ".tmp", version(v))
      assert(os.rename(path .. ".tmp", path))
      -- requests go on during the edit, on the connection opened before it
      H.wait_for(function()
        local a = st.request()
        seen = seen + 1
        assert.equal("200", a.status, a.body)
        return json.decode(a.body).state == "v" .. v
      end, 5, "version " .. v .. " to answer")
      local fresh = client(port_of(p)) -- and a new connection gets it too
      assert.equal("v" .. v, json.decode(fresh.request().body).state)
      fresh.c:close()
    end
    assert.equal(3, tonumber(H.status(p, "http_health").reloads))
    assert.is_true(seen >= 3)
    st.c:close()
    uv.run("nowait")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)
end)
