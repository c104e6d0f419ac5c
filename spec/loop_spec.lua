-- loop_spec.lua - each service's event loop: luv in scripts (sockets,
-- children, timers) beside controls, the coroutine style (tasks, queues,
-- await), what STOPPED closes and ends, and the interrupt in every place
-- Lua can run.
local uv = require "luv"
local F = H.fixtures

local children = {}

local function pid_alive(pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

local function cleanup()
  for _, pid in ipairs(children) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
  children = {}
  H.cleanup()
end

-- A TCP client on this process's own luv loop, polled with deadlines.
local function connect(port)
  local st = { data = "", eof = false }
  local c = uv.new_tcp()
  st.c = c
  c:connect("127.0.0.1", port, function(err)
    st.err, st.connected = err, not err
    if not err then
      c:read_start(function(e, d)
        if d then st.data = st.data .. d else st.eof = true end
        if e then st.eof = true end
      end)
    end
  end)
  H.wait_for(function() uv.run("nowait"); return st.connected or st.err end, 5, "a connection")
  assert(st.connected, st.err)
  return st
end

local function ask(st, line)
  st.data = ""
  st.c:write(line .. "\n")
  return H.wait_for(function()
    uv.run("nowait")
    return st.data:find("\n") and st.data
  end, 5, "an answer to " .. line)
end

local function close(st)
  if not st.c:is_closing() then st.c:close() end
  uv.run("nowait")
end

local function port_of(p)
  return tonumber(H.wait_log(p, "PORT:%d+") and H.log(p):match("PORT:(%d+)"))
end

-- Each thread's context switches, from /proc, and the threads asleep in
-- nanosleep or clock_nanosleep (x86-64: 35, 230): the runtime never sleeps
-- so, ThreadSanitizer's background thread does (the TSan build).
local function switches_of(pid)
  local counts, asleep = {}, {}
  local _, tids = H.sh("ls /proc/" .. pid .. "/task")
  for tid in tids:gmatch("%d+") do
    local dir = "/proc/" .. pid .. "/task/" .. tid
    local sc = tonumber(((H.read(dir .. "/syscall") or ""):match("^(%d+)")))
    local n = 0
    for v in (H.read(dir .. "/status") or ""):gmatch("ctxt_switches:%s*(%d+)") do n = n + tonumber(v) end
    counts[tid] = n
    if sc == 35 or sc == 230 then asleep[tid] = true end
  end
  return { counts = counts, asleep = asleep }
end

-- The switches between two samples, over the threads that were not asleep
-- in either (a sleeper seen awake in one sample only must not count its
-- whole life as new switches).
local function switches_between(a, b)
  local n = 0
  for tid, c in pairs(b.counts) do
    if not a.asleep[tid] and not b.asleep[tid] then n = n + c - (a.counts[tid] or 0) end
  end
  return n
end

local function switches(pid) return switches_of(pid) end

describe("the event loop", function()
  after_each(cleanup)

  it("serves a luv socket while running and while PAUSED", function()
    local p = H.start { scripts = { F .. "loop_tcp.lua" } }
    H.wait_state(p, "loop_tcp", "RUNNING")
    local st = connect(port_of(p))
    assert.equal("RUNNING ping\n", ask(st, "ping"))
    assert.equal(0, (H.client(p, "pause", "loop_tcp")))
    H.wait_state(p, "loop_tcp", "PAUSED")
    assert.equal("PAUSED ping\n", ask(st, "ping"))
    assert.equal(0, (H.client(p, "continue", "loop_tcp")))
    H.wait_state(p, "loop_tcp", "RUNNING")
    assert.equal("RUNNING again\n", ask(st, "again"))
    close(st)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("an idle service with a listener and a connection open never wakes up", function()
    local p = H.start { scripts = { F .. "loop_tcp.lua" }, options = { "--no-watch" } }
    H.wait_state(p, "loop_tcp", "RUNNING")
    local st = connect(port_of(p))
    ask(st, "warm")
    local before = switches(p.pid)
    local t0 = os.time()
    H.wait_for(function() return os.time() >= t0 + 2 end, 5, "two seconds")
    local after = switches(p.pid)
    assert.equal(0, switches_between(before, after), "context switches of an idle host")
    close(st)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("a mailslot read waits on the loop: no wakeup while idle, the message at once, the stop at once", function()
    local p = H.start { scripts = { F .. "slot_wait.lua" }, options = { "--no-watch" } }
    H.wait_log(p, "READING")
    local before = switches(p.pid)
    local t0 = os.time()
    H.wait_for(function() return os.time() >= t0 + 2 end, 5, "two seconds")
    assert.equal(0, switches_between(before, switches(p.pid)), "context switches of a host waiting in a read")
    local d = H.tmpdir()
    H.write(d .. "/w.lua", [[
      local w = assert(require("luasvc").mailslot.open("loop-slot-wait"))
      return { name = "slot_writer", run = function(ctx) assert(w:write("hello")) end }
    ]])
    H.sh("chmod 600 " .. H.q(d .. "/w.lua"))
    local rc, out = H.sh(string.format("LUASVC_RUNTIME_DIR=%s timeout 20 %s run %s", H.q(p.rt), H.q(H.bin),
      H.q(d .. "/w.lua")))
    assert.equal(0, rc, out)
    H.wait_log(p, "GOT:hello")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    assert.truthy(H.log(p):find("READ:stopping", 1, true))
    assert.is_true(H.log_interval(p, "slot_wait", "STOP_PENDING", "STOPPED") < 0.05)
  end)

  it("a stop closes the service's sockets: a connected client sees EOF at once, not at exit", function()
    local p = H.start { scripts = { F .. "loop_tcp.lua", F .. "sibling.lua" } }
    H.wait_state(p, "loop_tcp", "RUNNING")
    H.wait_state(p, "sibling", "RUNNING")
    local st = connect(port_of(p))
    ask(st, "hello")
    assert.equal(0, (H.client(p, "stop", "loop_tcp")))
    H.wait_for(function() uv.run("nowait"); return st.eof end, 3, "EOF")
    H.wait_state(p, "loop_tcp", "STOPPED")
    assert.is_true(H.alive(p)) -- the host runs on for its sibling
    assert.equal("RUNNING", H.status(p, "sibling").state)
    close(st)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("stop can wait for a child; STOPPED comes once every child is ended and reaped", function()
    local p = H.start { scripts = { F .. "loop_child.lua", F .. "sibling.lua" } }
    H.wait_state(p, "loop_child", "RUNNING")
    H.wait_log(p, "CHILD:left=%d+")
    local log = H.log(p)
    local awaited = log:match("CHILD:awaited=(%d+)")
    local stubborn = log:match("CHILD:stubborn=(%d+)")
    local left = log:match("CHILD:left=(%d+)")
    children = { awaited, stubborn, left }
    -- children start clean: SIGHUP, SIGINT, SIGPIPE, SIGTERM neither blocked nor ignored
    local status = H.read("/proc/" .. left .. "/status")
    for _, field in ipairs { "SigBlk", "SigIgn" } do
      local mask = tonumber(status:match(field .. ":%s*(%x+)"), 16)
      assert.equal(0, mask & 0x5003, field .. " of a uv.spawn child")
    end
    assert.equal(0, (H.client(p, "stop", "loop_child")))
    local st = H.wait_state(p, "loop_child", "STOPPED", 5)
    assert.equal(0, st.win32_exit_code)
    log = H.log(p)
    assert.truthy(log:find("STOP:child exited code=0 signal=15 progress=true", 1, true), log)
    assert.truthy(log:find("did not exit within %d+ ms of SIGTERM: killed"), log)
    -- reaped before STOPPED was reported: no such process, not even a zombie
    for i, pid in ipairs(children) do
      local stat = H.read("/proc/" .. pid .. "/stat") or "gone"
      assert.is_false(pid_alive(pid), ({ "awaited", "stubborn", "left" })[i] .. " child " .. pid ..
        " (/proc stat: " .. stat .. ") after STOPPED; log:\n" .. H.log(p))
    end
    assert.is_true(H.alive(p))
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("a task its timer makes ready as the loop is about to poll runs at once", function()
    local p = H.start { scripts = { F .. "loop_wake.lua" } }
    assert.equal(0, H.wait_exit(p, 10))
    assert.truthy(H.log(p):find("WAKE:done", 1, true), H.log(p))
  end)

  it("tasks, queues and await work from start, run, stop and a script's own coroutine", function()
    local p = H.start { scripts = { F .. "loop_tasks.lua" } }
    H.wait_log(p, "T:running=true")
    H.wait_for(function() return H.log(p):find("error in task %d+: [^\n]*task boom") end, 5,
      "the task's error; log:\n" .. H.log(p))
    assert.equal(0, (H.client(p, "pause", "loop_tasks")))
    H.wait_state(p, "loop_tasks", "PAUSED")
    H.wait_for(function() return os.execute("sleep 0.1") end, 1)
    assert.equal(0, (H.client(p, "continue", "loop_tasks")))
    H.wait_log(p, "T:ticked_while_paused=")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    local v = {}
    for k, val in H.log(p):gmatch("T:([%w_]+)=([^\n]*)") do v[k] = val end
    assert.equal("directory", v.await_stat)
    assert.equal("echo hello", v.line_echo)
    assert.equal("true,fired,42", v.queue_get)
    assert.equal("true", v.await_fails)
    assert.equal("timeout", v.queue_timeout)
    assert.equal("6", v.own_coroutine)
    assert.equal("true", v.sleep_in_callback)
    assert.equal("true", v.ticked_while_paused)
    assert.equal("true", v.task_told_of_stop)
    assert.equal("helper", v.stop_waited)
    assert.equal("true", v.stop_sleep)
  end)
end)

describe("a stop that waits", function()
  after_each(cleanup)

  it("preshutdown's sleep holds; a stop waiting past stop_timeout is ended with error 1460", function()
    local p = H.start { scripts = { F .. "stop_waits.lua" } }
    H.wait_state(p, "stop_waits", "RUNNING")
    assert.equal(0, (H.client(p, "control", "stop_waits", "preshutdown")))
    assert.is_true(H.wait_exit(p, 10) ~= 0)
    local log = H.log(p)
    assert.truthy(log:find("PRE:slept=true", 1, true), log)
    assert.truthy(log:find("STOP:waiting", 1, true), log)
    assert.is_nil(log:find("STOP:got", 1, true), log)
    assert.truthy(log:find("did not complete within stop_timeout (400 ms)", 1, true), log)
    assert.truthy(log:find("STOPPED with error 1460"), log)
    local took = H.log_interval(p, "stop_waits", "STOP_PENDING", "STOPPED")
    assert.is_true(took < 0.4 + 1, string.format("stopped in %.3f s", took))
  end)
end)

describe("children of io.popen and os.execute", function()
  after_each(cleanup)

  it("start with SIGHUP, SIGINT, SIGPIPE and SIGTERM neither blocked nor ignored", function()
    local d = H.tmpdir()
    local p = H.start { scripts = { F .. "child_signals.lua" }, args = { d } }
    assert.equal(0, H.wait_exit(p))
    local log = H.log(p)
    for _, how in ipairs { "popen", "execute" } do
      for _, field in ipairs { "SigBlk", "SigIgn" } do
        local mask = log:match("SIG:" .. how .. ":" .. field .. ":=(%x+)")
        assert.truthy(mask, how .. " " .. field .. " in:\n" .. log)
        assert.equal(0, tonumber(mask, 16) & 0x5003, how .. " " .. field .. " " .. mask)
      end
    end
    assert.truthy(log:find("SIG:popen_close=true", 1, true), log)
    assert.truthy(log:find("SIG:execute_result=true,exit,0", 1, true), log)
    assert.truthy(log:find("SIG:exit_status=3", 1, true), log)
    assert.truthy(log:find("SIG:write_close=true", 1, true), log)
    assert.equal("through a pipe\n", H.read(d .. "/written.txt"))
  end)
end)

describe("the interrupt", function()
  after_each(cleanup)

  for _, kind in ipairs { "callback", "task", "coroutine", "gsub", "sort", "sethook", "stop" } do
    it("ends Lua that ignores a stop in a " .. kind .. ", whatever it pcalls", function()
      local p = H.start { scripts = { F .. "runaway.lua" }, args = { kind } }
      H.wait_state(p, "runaway", "RUNNING")
      H.wait_log(p, "RUN:spinning")
      H.kill(p, "TERM")
      local rc = H.wait_exit(p, 10)
      assert.is_true(rc ~= 0)
      local took = H.log_interval(p, "runaway", "STOP_PENDING", "STOPPED")
      assert.is_true(took < 1.5, string.format("stopped in %.3f s", took))
      local log = H.log(p)
      assert.truthy(log:find("interrupted by the luasvc watchdog", 1, true), log)
      assert.truthy(log:find("STOP:called", 1, true), log)
      assert.truthy(log:find("STOPPED with error 1460"), log)
    end)
  end
end)
