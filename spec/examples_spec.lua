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
      local text = original:gsub('return 200, cjson.encode { state = ctx:state%(%), requests = ctx.data.requests }, JSON',
        'return 200, cjson.encode { state = "v' .. v .. '", requests = ctx.data.requests }, JSON')
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

describe("examples/supervisor.lua", function()
  after_each(cleanup)

  local function child_pids(p)
    local pids = {}
    for pid in H.log(p):gmatch("sh: CHILD:(%d+)") do pids[#pids + 1] = pid end
    return pids
  end

  it("restarts its child when it dies, and ends and reaps its tree on stop", function()
    local p = H.start { scripts = { "examples/supervisor.lua" },
      args = { "sh", "-c", 'echo "CHILD:$$"; sleep 60 & echo "CHILD:$!"; setsid sleep 61 & wait' } }
    H.wait_state(p, "supervisor", "RUNNING")
    local first = H.wait_for(function() return child_pids(p)[1] end, 5, "the child")
    children[#children + 1] = first
    local grandchild = H.wait_for(function() return child_pids(p)[2] end, 5, "the grandchild")
    children[#children + 1] = grandchild
    os.execute("kill -KILL " .. first)
    local second = H.wait_for(function() return child_pids(p)[3] end, 5, "the restart")
    children[#children + 1] = second
    assert.truthy(H.log(p):find("pid " .. first .. " exited (code 0, signal 9)", 1, true), H.log(p))
    H.wait_for(function() return not os.execute("kill -0 " .. grandchild .. " 2>/dev/null") end, 3,
      "the first child's background sleep to end with it (and be reaped)")
    assert.truthy(H.log(p):find("restarting in 100 ms", 1, true))
    local _, ps = H.sh("ps -eo pid=,args=")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    assert.truthy(H.log(p):find("stopping pid " .. second .. " after 2 start(s)", 1, true), H.log(p))
    assert.is_false(os.execute("kill -0 " .. second .. " 2>/dev/null") == true)
    for pid in ps:gmatch("(%d+) setsid sleep 61") do
      assert.is_false(os.execute("kill -0 " .. pid .. " 2>/dev/null") == true, "a setsid sleep outlived the stop")
    end
  end)

  it("hands its running child over to an edited version, which waits for it", function()
    local d = H.tmpdir()
    local script = d .. "/supervisor.lua"
    H.write(script, assert(H.read("examples/supervisor.lua")))
    local p = H.start { scripts = { script }, args = { "sh", "-c", 'echo "CHILD:$$"; exec sleep 60' } }
    H.wait_state(p, "supervisor", "RUNNING")
    local first = H.wait_for(function() return child_pids(p)[1] end, 5, "the child")
    children[#children + 1] = first
    H.wait_log(p, "start 1)")
    -- a hot edit while run waits for the child
    H.write(script, H.read(script) .. "-- an edit\n")
    H.wait_log(p, "took over pid " .. first)
    assert.truthy(H.log(p):find("handing pid " .. first .. " over to the new version", 1, true), H.log(p))
    assert.truthy(H.log(p):find("reload 1", 1, true), H.log(p))
    assert.equal(0, H.count(p, "start 2)"), H.log(p)) -- no second child
    assert.equal(1, #child_pids(p))
    assert.is_true(os.execute("kill -0 " .. first .. " 2>/dev/null") == true)
    -- the new version sees the child's exit and restarts it
    os.execute("kill -KILL " .. first)
    local second = H.wait_for(function() return child_pids(p)[2] end, 5, "the restart")
    children[#children + 1] = second
    assert.truthy(H.log(p):find("pid " .. first .. " exited (code 0, signal 9)", 1, true), H.log(p))
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    assert.truthy(H.log(p):find("stopping pid " .. second .. " after 2 start(s)", 1, true), H.log(p))
  end)

  it("backs off, doubling, when the child keeps dying", function()
    local p = H.start { scripts = { "examples/supervisor.lua" }, args = { "sh", "-c", "exit 3" } }
    H.wait_log(p, "restarting in 400 ms")
    local log = H.log(p)
    local a, b, c = log:find("restarting in 100 ms", 1, true), log:find("restarting in 200 ms", 1, true),
      log:find("restarting in 400 ms", 1, true)
    assert.truthy(a and b and c and a < b and b < c, log)
    assert.truthy(log:find("exited (code 3, signal 0)", 1, true), log)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)
end)

describe("examples/tail.lua", function()
  after_each(cleanup)

  it("posts each new line to a slot, across a rotation by rename", function()
    local d = H.tmpdir()
    local file, rt = d .. "/app.log", d .. "/rt"
    H.write(file, "old line, before the start\n")
    local slot = "tail-spec-" .. tostring(os.time()) .. tostring(math.random(1e6))
    local l = { out = d .. "/listen.out", err = d .. "/listen.err", pidfile = d .. "/listen.pid" }
    os.execute(string.format("(LUASVC_RUNTIME_DIR=%s %s listen %s >%s 2>%s & echo $! >%s) >/dev/null 2>&1",
      H.q(rt), H.q(H.bin), H.q(slot), H.q(l.out), H.q(l.err), H.q(l.pidfile)))
    local lpid = H.wait_for(function() return (H.read(l.pidfile) or ""):match("%d+") end, 5, "listen")
    children[#children + 1] = lpid
    H.wait_for(function() return (H.read(l.err) or ""):find("listening on slot", 1, true) end, 5, "listen")
    local p = H.start { scripts = { "examples/tail.lua" }, args = { file, slot }, rt = rt }
    H.wait_log(p, "following ")
    local function append(path, text)
      local f = assert(io.open(path, "ab"))
      f:write(text)
      f:close()
    end
    local function got() return H.read(l.out) or "" end
    append(file, "one\ntwo\n")
    H.wait_for(function() return got():find("two", 1, true) end, 5, "two; got:\n" .. got())
    assert(os.rename(file, file .. ".1"))
    append(file .. ".1", "three, after the rename\n")
    H.wait_for(function() return got():find("three", 1, true) end, 5, "three; got:\n" .. got())
    append(file, "four, in the new file\n")
    H.wait_for(function() return got():find("four", 1, true) end, 5, "four; got:\n" .. got())
    local out = got()
    assert.is_nil(out:find("old line", 1, true))
    local i1, i2, i3, i4 = out:find("one", 1, true), out:find("two", 1, true), out:find("three", 1, true),
      out:find("four", 1, true)
    assert.truthy(i1 < i2 and i2 < i3 and i3 < i4, out)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    assert.truthy(H.log(p):find("posted 4 lines", 1, true), H.log(p))
    os.execute("kill -INT " .. lpid)
  end)
end)

describe("examples/webhook.lua", function()
  after_each(cleanup)

  local function post(port, body)
    local rc, out = H.sh(string.format("curl -s -m 3 -d %s -w '\\n%%{http_code}' http://127.0.0.1:%d/deploy",
      H.q(body), port))
    if rc ~= 0 then return nil, out end
    local text, code = out:match("^(.*)\n(%d+)$")
    return tonumber(code), text
  end

  it("runs one deploy at a time, queues the rest, and keeps each result", function()
    local d = H.tmpdir()
    local p = H.start { scripts = { "examples/webhook.lua" }, args = { "0", "sh", "-c",
      'read what; echo "begin $DEPLOY_ID $what"; sleep 0.2; echo "end $DEPLOY_ID"; ' ..
      '[ "$what" = fail ] && exit 4; [ "$what" = stray ] && { setsid sleep 63 & echo "STRAY:$!" >' .. d .. '/stray; }; true' } }
    H.wait_log(p, "listening on http://[%d.]+:%d+/deploy")
    local port = tonumber(H.log(p):match("listening on http://[%d.]+:(%d+)/deploy"))
    local code, body = post(port, "one\n")
    assert.equal(202, code, body)
    assert.same({ id = 1, ahead = 0 }, json.decode(body))
    assert.equal(202, (post(port, "fail\n")))
    code, body = post(port, "stray\n")
    assert.equal(202, code)
    assert.equal(3, json.decode(body).id)
    H.wait_log(p, "deploy 3: exit code 0", 10)
    local log = H.log(p)
    -- one at a time, in order
    local last = 0
    for _, mark in ipairs { "begin 1 one", "end 1", "begin 2 fail", "end 2", "begin 3 stray", "end 3" } do
      local at = log:find(mark, 1, true)
      assert.truthy(at and at > last, mark .. " out of order in:\n" .. log)
      last = at
    end
    assert.truthy(log:find("deploy 2: exit code 4", 1, true), log)
    local c2, j2 = get(port, "/jobs/2")
    assert.equal(200, c2)
    local job = json.decode(j2)
    assert.equal("done", job.state)
    assert.equal(4, job.code)
    assert.equal(404, (get(port, "/jobs/9")))
    -- what a deploy left behind (a setsid daemon) ends with the service
    local stray = tonumber(H.wait_for(function() return H.read(d .. "/stray") end, 5, "the stray's pid"):match("%d+"))
    children[#children + 1] = stray
    assert.is_true(os.execute("kill -0 " .. stray .. " 2>/dev/null") == true)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    assert.is_false(os.execute("kill -0 " .. stray .. " 2>/dev/null") == true, "a deploy's daemon outlived the service")
  end)
end)
