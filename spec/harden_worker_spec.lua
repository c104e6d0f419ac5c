-- harden_worker_spec.lua - what a script cannot do to its host or its
-- sibling services through the worker: a strict table, os.exit, a handler,
-- luv callback or task that never ends, memory without limit, a flood of
-- controls, an edit whose top level is slow, hangs, leaves traces or
-- leaves luv handles and children behind.

local script = H.script

-- A sibling that must keep running whatever its neighbour does.
local SIBLING = [[
local S = { name = "sibling", accepts = { "stop" } }
S.controls = { [130] = function(ctx) ctx:log("info", "SIBLING:130") end }
function S.run(ctx) while ctx:sleep(50) do end end
return S
]]

local function sibling_alive(p)
  local st = H.status(p, "sibling")
  assert.truthy(st and st.state == "RUNNING", "sibling is not RUNNING; log:\n" .. H.log(p))
  assert.equal(0, (H.client(p, "control", "sibling", "130")))
  H.wait_log(p, "SIBLING:130")
end

describe("a script cannot take its host down", function()
  after_each(H.cleanup)

  it("a strict script table (__index raises) stops that service with code 2", function()
    local victim = script([[
local S = { name = "strict", accepts = { "stop", "pause_continue" } }
function S.run(ctx)
  setmetatable(S, { __index = function(_, k) error("no field " .. k) end })
  ctx:log("info", "STRICT:on")
  while ctx:sleep(50) do end
end
return S
]], "strict.lua")
    local sib = script(SIBLING, "sibling.lua")
    local p = H.start({ scripts = { victim, sib } })
    H.wait_log(p, "STRICT:on")
    H.wait_state(p, "sibling", "RUNNING")
    H.client(p, "pause", "strict")
    local st = H.wait_state(p, "strict", "STOPPED", 5)
    assert.equal(1066, st.win32_exit_code)
    assert.equal(2, st.service_exit_code)
    assert.truthy(H.log(p):find("strict: reading S.pause raised an error: ", 1, true), H.log(p))
    assert.falsy(H.log(p):find("PANIC", 1, true), H.log(p))
    sibling_alive(p)
  end)

  it("os.exit ends that service with its code, not the process", function()
    local victim = script([[
local S = { name = "exiter" }
function S.run(ctx) ctx:sleep(100) os.exit(7) end
return S
]], "exiter.lua")
    local sib = script(SIBLING, "sibling.lua")
    local p = H.start({ scripts = { victim, sib } })
    local st = H.wait_state(p, "exiter", "STOPPED", 5)
    assert.equal(1066, st.win32_exit_code)
    assert.equal(7, st.service_exit_code)
    assert.truthy(H.alive(p), H.log(p))
    sibling_alive(p)
    assert.equal(0, (H.client(p, "stop", "sibling")))
    assert.equal(7, H.wait_exit(p, 5))
  end)
end)

-- After an overrun the service goes on: control 129 makes it log
-- "MARK:count", which passes `after` by more than 2; then it is still
-- RUNNING and stops cleanly.
local function goes_on(p, name, mark, after)
  H.wait_for(function()
    H.client(p, "control", name, "129")
    local t = -1
    for v in H.log(p):gmatch(mark .. ":(%d+)") do t = tonumber(v) end
    return t > after + 2
  end, 5, name .. " to go on")
  assert.equal("RUNNING", H.status(p, name).state)
  assert.equal(0, (H.client(p, "stop", name)))
  assert.equal(0, H.wait_exit(p, 5))
end

describe("handler_timeout", function()
  after_each(H.cleanup)

  it("interrupts a handler that spins or waits past it; the next control is delivered", function()
    local path = script([[
local S = { name = "slowh", handler_timeout = 300 }
S.controls = {
  [128] = function(ctx) while true do end end,
  [129] = function(ctx) while true do ctx:sleep(10) end end,
  [130] = function(ctx) ctx:log("info", "NEXT:130") end,
}
function S.run(ctx) while ctx:sleep(50) do end end
return S
]], "slowh.lua")
    local p = H.start({ scripts = { path } })
    H.wait_state(p, "slowh", "RUNNING")
    assert.equal(0, (H.client(p, "control", "slowh", "128")))
    assert.equal(0, (H.client(p, "control", "slowh", "129")))
    assert.equal(0, (H.client(p, "control", "slowh", "130")))
    H.wait_log(p, "NEXT:130", 5)
    local log = H.log(p)
    assert.truthy(log:find("controls[128] did not finish within handler_timeout (300 ms): interrupted", 1, true), log)
    assert.truthy(log:find("controls[129] did not finish within handler_timeout (300 ms): interrupted", 1, true), log)
    assert.equal("RUNNING", H.status(p, "slowh").state)
    assert.equal(0, (H.client(p, "stop", "slowh")))
    assert.equal(0, H.wait_exit(p, 5))
  end)

  it("interrupts a luv callback that spins past it, also under its own pcall; its handle stays", function()
    local path = script([[
local uv = require "luv"
local S = { name = "spincb", handler_timeout = 300 }
local calls, ticks = 0, 0
S.controls = { [128] = function(ctx) ctx:log("info", "NEXT:%d", ticks) end,
               [129] = function(ctx) ctx:log("info", "TICKS:%d", ticks) end }
function S.start(ctx)
  local spin = uv.new_timer()
  spin:start(50, 50, function()
    calls = calls + 1
    if calls == 1 then ctx:log("info", "SPIN:1") while true do end
    elseif calls == 2 then while true do pcall(function() while true do end end) end
    elseif calls == 3 then ctx:log("info", "CB:again:%d", #(function() local n = {} uv.walk(function(h) n[#n + 1] = h end) return n end)())
    end
  end)
  local other = uv.new_timer()
  other:start(20, 20, function() ticks = ticks + 1 end)
end
function S.run(ctx) while ctx:sleep(50) do end end
return S
]], "spincb.lua")
    local p = H.start({ scripts = { path } })
    H.wait_log(p, "SPIN:1", 5)
    -- sent while the callback spins: delivered once it is interrupted
    assert.equal(0, (H.client(p, "control", "spincb", "128")))
    H.wait_log(p, "NEXT:", 5)
    H.wait_log(p, "CB:again:2", 5)
    local log = H.log(p)
    local _, n = log:gsub("a luv callback ran past handler_timeout %(300 ms%): interrupted: interrupted by the luasvc watchdog", "")
    assert.equal(2, n, log)
    assert.truthy(log:find("stack traceback:", 1, true), log)
    -- the other callbacks go on
    goes_on(p, "spincb", "TICKS", tonumber(log:match("NEXT:(%d+)")))
  end)

  it("interrupts a spawned task that runs past it without yielding: it ends, the service goes on", function()
    local path = script([[
local S = { name = "spintask", handler_timeout = 300 }
local ticks = 0
S.controls = {
  [128] = function(ctx) ctx:spawn(function() ctx:log("info", "TASK:spin") while true do pcall(function() while true do end end) end end) end,
  [129] = function(ctx) ctx:log("info", "NEXT:%d", ticks) end,
}
function S.run(ctx) while ctx:sleep(20) do ticks = ticks + 1 end end
return S
]], "spintask.lua")
    local p = H.start({ scripts = { path } })
    H.wait_state(p, "spintask", "RUNNING")
    assert.equal(0, (H.client(p, "control", "spintask", "128")))
    H.wait_log(p, "TASK:spin", 5)
    assert.equal(0, (H.client(p, "control", "spintask", "129")))
    H.wait_log(p, "NEXT:", 5)
    local log = H.log(p)
    assert.truthy(log:find("task 1 ran past handler_timeout (300 ms) without yielding: interrupted; it ends: ", 1, true), log)
    assert.truthy(log:find("stack traceback:", 1, true), log)
    goes_on(p, "spintask", "NEXT", tonumber(log:match("NEXT:(%d+)")))
  end)

  it("is checked by the contract", function()
    local path = script('local S = { handler_timeout = -1 }\nfunction S.run() end\nreturn S\n')
    local rc, out = H.run_sync({ "check", path })
    assert.equal(2, rc, out)
    assert.truthy(out:find(path .. ":1: error: handler_timeout must be", 1, true), out)
  end)
end)

describe("memory_limit", function()
  after_each(H.cleanup)

  it("is a not-enough-memory error in that service only; stop still runs", function()
    local victim = script([[
local S = { name = "hog", memory_limit = 16 * 1024 * 1024 }
S.controls = { [128] = function(ctx)
  local t = {}
  local ok, err = pcall(function()
    for i = 1, 256 do t[i] = string.rep("x", 1024 * 1024 + i) end
  end)
  t = nil
  collectgarbage()
  ctx:log("info", "MEM:%s:%s", tostring(ok), tostring(err))
end }
HELD = {}
function S.run(ctx)
  while ctx:sleep(20) do end
  for i = 1, 256 do HELD[i] = string.rep("y", 1024 * 1024 + i) end -- fails
end
function S.stop(ctx) ctx:log("info", "STOPRAN:%d", #string.rep("z", 100000)) end
return S
]], "hog.lua")
    local sib = script(SIBLING, "sibling.lua")
    local p = H.start({ scripts = { victim, sib } })
    H.wait_state(p, "hog", "RUNNING")
    assert.equal(0, (H.client(p, "control", "hog", "128")))
    H.wait_log(p, "MEM:", 10)
    assert.truthy(H.log(p):find("MEM:false:not enough memory", 1, true), H.log(p))
    sibling_alive(p)
    assert.equal(0, (H.client(p, "stop", "hog")))
    H.wait_state(p, "hog", "STOPPED", 10)
    assert.truthy(H.log(p):find("STOPRAN:100000", 1, true), H.log(p))
    sibling_alive(p)
  end)
end)

describe("the control queue", function()
  after_each(H.cleanup)

  local function rss_kb(pid)
    local s = H.read("/proc/" .. pid .. "/status") or ""
    return tonumber(s:match("VmRSS:%s*(%d+)"))
  end

  it("is bounded: a flood is refused past the bound, RSS stays flat, STOP works", function()
    local d = H.tmpdir()
    local victim = d .. "/sink.lua"
    H.write(victim, [[
local S = { name = "sink" }
S.controls = { [128] = function(ctx) ctx:sleep(60000) end }
function S.run(ctx) while ctx:sleep(100) do end end
return S
]])
    local p = H.start({ scripts = { victim } })
    H.wait_state(p, "sink", "RUNNING")
    local before = rss_kb(p.pid)
    -- the flood: a service of another host, 8 clients at once on luv pipes
    local flooder = d .. "/flood.lua"
    H.write(flooder, string.format([[
local uv = require "luv"
local S = { name = "flood" }
local TOTAL, sock = %d, %q
function S.run(ctx)
  local sent, ok, refused, other, live = 0, 0, 0, 0, 0
  local function one()
    if sent >= TOTAL then return end
    sent = sent + 1
    live = live + 1
    local c = uv.new_pipe(false)
    c:connect(sock, function(err)
      if err then other = other + 1 live = live - 1 c:close() one() return end
      c:write("CONTROL 128 sink\n")
      local buf = ""
      c:read_start(function(e, data)
        if data then buf = buf .. data return end
        c:close()
        live = live - 1
        if buf:match("^OK") then ok = ok + 1
        elseif buf:find("1816", 1, true) then refused = refused + 1
        else other = other + 1; if other < 3 then ctx:log("info", "REPLY:%%s", buf) end end
        one()
      end)
    end)
  end
  for _ = 1, 8 do one() end
  while live > 0 and ctx:sleep(20) do end
  ctx:log("info", "FLOOD:ok=%%d refused=%%d other=%%d", ok, refused, other)
end
return S
]], 20000, p.rt .. "/sink.sock"))
    local f = H.start({ scripts = { flooder }, rt = p.rt })
    H.wait_exit(f, 150)
    local ok, refused, other = H.log(f):match("FLOOD:ok=(%d+) refused=(%d+) other=(%d+)")
    assert.truthy(ok, H.log(f))
    ok, refused = tonumber(ok), tonumber(refused)
    assert.truthy(ok <= 1025 and ok >= 1000, H.log(f))
    assert.equal(20000 - ok, refused, H.log(f))
    assert.equal("0", other, H.log(f))
    local rc, out = H.client(p, "control", "sink", "128")
    assert.is_not.equal(0, rc)
    assert.truthy(out:find("1816", 1, true), out)
    assert.truthy(rss_kb(p.pid) - before < 8192, "RSS grew from " .. before .. " to " .. rss_kb(p.pid))
    assert.equal(0, (H.client(p, "stop", "sink")))
    H.wait_exit(p, 10)
    local log = H.log(p)
    local n = log:match("(%d+) queued control%(s%) not delivered")
    assert.truthy(n == nil or tonumber(n) <= 1024, log)
  end)
end)

describe("a hot edit", function()
  after_each(H.cleanup)

  local V1 = [[
local S = { name = "edited", handler_timeout = 500 }
MARK = "v1"
S.controls = { [128] = function(ctx) ctx:log("info", "V:%s:%s:%s:%s", MARK, tostring(package.loaded.planted),
  tostring(os.getenv == REAL_GETENV), tostring(tostring(debug.gethook()) == HOOK0)) end }
REAL_GETENV = os.getenv
HOOK0 = tostring(debug.gethook())
function S.run(ctx) while ctx:sleep(20) do end end
return S
]]

  it("whose top level hangs is refused and leaves no trace", function()
    local path = script(V1, "edited.lua")
    local p = H.start({ scripts = { path }, options = { "--watch-interval", "20" } })
    H.wait_state(p, "edited", "RUNNING")
    -- the new version changes globals, package.loaded, os and the hook, then hangs
    H.write(path, [[
MARK = "v2"
package.loaded.planted = "yes"
os.getenv = function() return "forged" end
debug.sethook(function() end, "l")
while true do end
]])
    H.wait_log(p, "reload refused", 10)
    assert.truthy(H.log(p):find("interrupted", 1, true), H.log(p))
    assert.equal(0, (H.client(p, "control", "edited", "128")))
    H.wait_log(p, "V:")
    assert.truthy(H.log(p):find("V:v1:nil:true:true", 1, true), H.log(p))
    -- an edit that errors after the same changes: no trace either
    H.write(path, 'MARK = "v3"\npackage.loaded.planted = "yes"\nos.getenv = nil\nerror("bad edit")\n')
    H.wait_for(function() return H.count(p, "reload refused") >= 2 end, 10, "the second refusal; log:\n" .. H.log(p))
    assert.equal(0, (H.client(p, "control", "edited", "128")))
    H.wait_for(function() return H.count(p, "V:v1:nil:true:true") >= 2 end, 5, "v1 untouched; log:\n" .. H.log(p))
    assert.equal(0, (H.client(p, "stop", "edited")))
    assert.equal(0, H.wait_exit(p, 5))
  end)
end)

describe("while a new version's top level loads", function()
  after_each(H.cleanup)

  it("controls keep going to the running version; then it is adopted, or refused on timeout", function()
    local version = [[
local S = { name = "slowload", handler_timeout = %d }
MARK = %q
%s
S.controls = { [128] = function(ctx) ctx:log("info", "V:%%s", MARK) end }
function S.run(ctx) while ctx:sleep(20) do end end
return S
]]
    local path, d = script(string.format(version, 10000, "v1", ""), "slowload.lua")
    local p = H.start({ scripts = { path }, options = { "--watch-interval", "20" } })
    H.wait_state(p, "slowload", "RUNNING")
    -- v2: changes a global, then spins 1.5 s of CPU in its top level
    local spin = string.format([[
local f = io.open(%q, "w") f:close()
local t0 = os.clock()
while os.clock() - t0 < %s do end
]], d .. "/loading", "1.5")
    H.write(path, string.format(version, 1000, "v2", spin))
    H.wait_for(function() return H.read(d .. "/loading") end, 10, "the top level to run")
    assert.equal(0, (H.client(p, "control", "slowload", "128")))
    H.wait_log(p, "V:", 5)
    local log = H.log(p)
    assert.truthy(log:find("V:v1", 1, true), log) -- the old version, untouched by v2's MARK
    assert.falsy(log:find("reloaded", 1, true), "answered only after the load: " .. log)
    H.wait_log(p, "reloaded", 10)
    assert.equal(0, (H.client(p, "control", "slowload", "128")))
    H.wait_log(p, "V:v2", 5)
    -- v3 never ends: refused after 1000 ms of its own time, controls answered meanwhile
    os.remove(d .. "/loading")
    H.write(path, string.format(version, 1000, "v3", spin:gsub("< 1.5", "< 1e9")))
    H.wait_for(function() return H.read(d .. "/loading") end, 10, "the top level to run")
    local before = H.count(p, "V:v2")
    assert.equal(0, (H.client(p, "control", "slowload", "128")))
    H.wait_for(function() return H.count(p, "V:v2") > before end, 5, "v2 to answer; log:\n" .. H.log(p))
    assert.falsy(H.log(p):find("reload refused", 1, true), H.log(p))
    H.wait_log(p, "reload refused, the running version goes on: .*did not finish within handler_timeout %(1000 ms%)", 10)
    assert.equal(0, (H.client(p, "control", "slowload", "128")))
    H.wait_for(function() return H.count(p, "V:v2") > before + 1 end, 5, "v2 to answer; log:\n" .. H.log(p))
    assert.falsy(H.log(p):find("V:v3", 1, true), H.log(p))
    assert.equal(0, (H.client(p, "stop", "slowload")))
    assert.equal(0, H.wait_exit(p, 5))
  end)
end)

describe("while a new version's top level loads (2)", function()
  after_each(H.cleanup)

  it("a handler that waits holds the load; a stop drops it at once", function()
    local path, d = script([[
local S = { name = "slowload2", handler_timeout = 20000 }
S.controls = { [128] = function(ctx) ctx:sleep(200) ctx:log("info", "WAITED:%s", tostring(MARK)) end }
function S.run(ctx) while ctx:sleep(20) do end end
return S
]], "slowload2.lua")
    local p = H.start({ scripts = { path }, options = { "--watch-interval", "20" } })
    H.wait_state(p, "slowload2", "RUNNING")
    H.write(path, string.format('MARK = "v2"\nlocal f = io.open(%q, "w") f:close()\nwhile true do end\n', d .. "/loading"))
    H.wait_for(function() return H.read(d .. "/loading") end, 10, "the top level to run")
    assert.equal(0, (H.client(p, "control", "slowload2", "128")))
    H.wait_log(p, "WAITED:nil", 5)
    local t0 = require("system").monotime()
    assert.equal(0, (H.client(p, "stop", "slowload2")))
    assert.equal(0, H.wait_exit(p, 5))
    assert.truthy(require("system").monotime() - t0 < 3, "the stop waited for the load")
    assert.falsy(H.log(p):find("reloaded", 1, true), H.log(p))
  end)
end)

describe("a refused edit's luv handles", function()
  after_each(H.cleanup)

  it("are closed and its children ended, whichever way it is refused; the running version's stay", function()
    local path, d = script([[
local uv = require "luv"
local S = { name = "refusedh", handler_timeout = 500 }
S.controls = { [128] = function(ctx)
  local n = 0
  uv.walk(function() n = n + 1 end)
  ctx:log("info", "HANDLES:%d:%s", n, tostring(KEEP:is_active()))
end }
function S.start(ctx) KEEP = uv.new_timer() KEEP:start(60000, 60000, function() end) end
function S.run(ctx) while ctx:sleep(20) do end end
return S
]], "refusedh.lua")
    local p = H.start({ scripts = { path }, options = { "--watch-interval", "20" } })
    H.wait_state(p, "refusedh", "RUNNING")
    local function handles()
      local before = H.count(p, "HANDLES:")
      assert.equal(0, (H.client(p, "control", "refusedh", "128")))
      H.wait_for(function() return H.count(p, "HANDLES:") > before end, 5, "HANDLES; log:\n" .. H.log(p))
      local last
      for v in H.log(p):gmatch("HANDLES:(%d+:%a+)") do last = v end
      return last
    end
    assert.equal("1:true", handles())
    local opens = string.format([[
local uv = require "luv"
local D = %q
local function mark(name) local f = io.open(D .. "/" .. name, "a") f:write("x") f:close() end
local t = uv.new_timer()
t:start(0, 1, function() mark("fired") end)
local server = uv.new_pipe(false)
server:bind(D .. "/refused.sock")
server:listen(8, function() mark("accepted") end)
local child = uv.spawn("sleep", { args = { "30" } }, function() mark("exited") end)
local f = io.open(D .. "/pid", "w") f:write(tostring(child:get_pid())) f:close()
]], d)
    local failures = {
      'error("bad edit")\n',
      'return { name = "refusedh", handler_timeout = -1, run = function() end }\n',
      'while true do end\n',
      -- its reload() opens them (across a wait) and fails
      'REFUSE_IN_RELOAD',
    }
    local pids = {}
    finally(function() -- on failure, no child is left behind
      for _, pid in ipairs(pids) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    end)
    for i, failure in ipairs(failures) do
      os.remove(d .. "/pid")
      os.remove(d .. "/refused.sock")
      if failure == "REFUSE_IN_RELOAD" then
        H.write(path, "local function open_all()\n" .. opens .. "\nend\n" .. [[
return { name = "refusedh", run = function(ctx) while ctx:sleep(20) do end end,
  reload = function(ctx) open_all() ctx:sleep(30) open_all = nil error("bad reload") end }
]])
      else
        H.write(path, opens .. failure)
      end
      H.wait_for(function() return H.count(p, "reload refused") >= i end, 10, "refusal " .. i .. "; log:\n" .. H.log(p))
      local pid = H.wait_for(function() return tonumber(H.read(d .. "/pid")) end, 5, "the child's pid")
      pids[#pids + 1] = pid
      H.wait_for(function() return os.execute("kill -0 " .. pid .. " 2>/dev/null") ~= true end, 5,
        "the refused version's child (" .. pid .. ") to be ended and reaped; log:\n" .. H.log(p))
      assert.equal("1:true", handles())
      if failure == "REFUSE_IN_RELOAD" then
        -- its 1 ms timer fired while reload() waited; closed now, it fires no more
        os.remove(d .. "/fired")
        assert.equal("1:true", handles())
      end
    end
    assert.is_nil(H.read(d .. "/fired"), "a refused version's timer fired")
    assert.is_nil(H.read(d .. "/exited"), "a refused version's exit callback ran")
    assert.truthy(H.alive(p))
    assert.equal("RUNNING", H.status(p, "refusedh").state)
    assert.equal(0, (H.client(p, "stop", "refusedh")))
    assert.equal(0, H.wait_exit(p, 5))
  end)
end)

describe("the interrupt cannot be switched off", function()
  after_each(H.cleanup)

  it("not by the original debug.sethook, a looping xpcall handler, or ending the runtime's own tasks", function()
    local path = script([[
local S = { name = "evader", handler_timeout = 300 }
local orig = select(2, debug.getupvalue(debug.sethook, 1))
S.controls = {
  [128] = function(ctx) while true do if orig then orig() end end end,
  [129] = function(ctx) xpcall(function() while true do end end, function(e) while true do end end) end,
  [130] = function(ctx) ctx:log("info", "CLOSE:%s", tostring(select(2, pcall(coroutine.close, RUNCO)))) end,
  [131] = function(ctx) ctx:log("info", "RESUME:%s", tostring(select(2, coroutine.resume(RUNCO)))) end,
  [132] = function(ctx) ctx:log("info", "ALIVE:%s", coroutine.status(RUNCO)) end,
}
function S.run(ctx)
  RUNCO = coroutine.running()
  while ctx:sleep(20) do end
end
return S
]], "evader.lua")
    local p = H.start({ scripts = { path } })
    H.wait_state(p, "evader", "RUNNING")
    for _, c in ipairs({ "128", "129", "130", "131", "132" }) do
      assert.equal(0, (H.client(p, "control", "evader", c)))
    end
    H.wait_log(p, "ALIVE:", 10)
    local log = H.log(p)
    assert.truthy(log:find("controls[128] did not finish within handler_timeout", 1, true), log)
    assert.truthy(log:find("controls[129] did not finish within handler_timeout", 1, true), log)
    assert.truthy(log:find("CLOSE:coroutine.close: cannot close a task of the runtime's", 1, true), log)
    assert.truthy(log:find("RESUME:coroutine.resume: cannot resume a task of the runtime's", 1, true), log)
    assert.truthy(log:find("ALIVE:suspended", 1, true), log)
    assert.equal("RUNNING", H.status(p, "evader").state)
    assert.equal(0, (H.client(p, "stop", "evader")))
    assert.equal(0, H.wait_exit(p, 5))
  end)
end)

describe("closing a service's Lua state", function()
  after_each(H.cleanup)

  it("has a deadline: a __gc finalizer that never returns does not keep the process", function()
    local path = script([[
local S = { name = "gcloop" }
KEEP = setmetatable({}, { __gc = function() while true do end end })
function S.run(ctx) ctx:exit(5) end
return S
]], "gcloop.lua")
    local p = H.start({ scripts = { path } })
    assert.equal(5, H.wait_exit(p, 8))
    assert.truthy(H.log(p):find("closing its Lua state did not finish within", 1, true), H.log(p))
  end)
end)

describe("clearer errors", function()
  after_each(H.cleanup)

  it("logs a table error through __tostring, and a deleted script once", function()
    local path = script([[
local S = { name = "errs" }
S.controls = { [128] = function() error(setmetatable({}, { __tostring = function() return "TABLE-ERR" end })) end }
function S.run(ctx) while ctx:sleep(20) do end end
return S
]], "errs.lua")
    local p = H.start({ scripts = { path }, options = { "--watch-interval", "20" } })
    H.wait_state(p, "errs", "RUNNING")
    assert.equal(0, (H.client(p, "control", "errs", "128")))
    H.wait_log(p, "error in controls%[128%]: TABLE%-ERR")
    os.remove(path)
    H.wait_log(p, "errs.lua: deleted; the running version goes on")
    -- many polls later: still once
    local polls = H.wait_for(function()
      local st = H.status(p, "errs")
      return st and st.state == "RUNNING" and st
    end, 5)
    assert.truthy(polls)
    local t0 = require("system").monotime()
    H.wait_for(function() return require("system").monotime() - t0 > 0.3 end, 2)
    assert.equal(1, H.count(p, "deleted; the running version goes on"))
    H.write(path, [[
local S = { name = "errs" }
function S.run(ctx) ctx:log("info", "V2") while ctx:sleep(20) do end end
return S
]])
    H.wait_log(p, "V2", 10)
    assert.equal(0, (H.client(p, "stop", "errs")))
    assert.equal(0, H.wait_exit(p, 5))
  end)
end)

describe("a refused new version", function()
  after_each(H.cleanup)

  it("delivers no control while its handles close (it crashed the host)", function()
    local path, d = script([[
local S = { name = "closing", handler_timeout = 1000 }
S.controls = { [128] = function(ctx) ctx:log("info", "V1:128") end }
function S.run(ctx) while ctx:sleep(20) do end end
return S
]], "closing.lua")
    local p = H.start({ scripts = { path }, options = { "--watch-interval", "20" } })
    H.wait_state(p, "closing", "RUNNING")
    -- a handle, then a spin no pause can reach (a comparator is a C call's):
    -- refused at its deadline, its timer closed while control 128 waits
    H.write(path, string.format([[
local t = require("luv").new_timer()
local f = io.open(%q, "w") f:close()
table.sort({ 3, 2, 1 }, function() while true do end end)
]], d .. "/loading"))
    H.wait_for(function() return H.read(d .. "/loading") end, 10, "the top level to run")
    assert.equal(0, (H.client(p, "control", "closing", "128")))
    H.wait_log(p, "reload refused", 10)
    H.wait_log(p, "V1:128", 5)
    assert.truthy(H.alive(p), H.log(p))
    assert.equal(0, (H.client(p, "stop", "closing")))
    assert.equal(0, H.wait_exit(p, 5), H.log(p))
  end)

  it("never pauses inside the loader's own code: the running version's globals stay its own", function()
    -- a long snapshot (3000 keys in utf8): a pause inside it mixed the
    -- globals before and after the pause handler, and the refusal put
    -- back a STATE the running version had changed since
    local path = script([[
local S = { name = "snap", accepts = { "stop", "pause_continue", "paramchange" } }
STATE = "running"
for i = 1, 3000 do utf8["k" .. i] = i end
function S.pause(ctx) STATE = "paused" end
function S.continue(ctx) STATE = "running" end
S.controls = {
  [128] = function(ctx) ctx:log("info", "STATE:%s", STATE) end,
  [129] = function(ctx) local t0 = os.clock() while os.clock() - t0 < 0.3 do end end,
}
function S.run(ctx) while ctx:sleep(20) do end end
return S
]], "snap.lua")
    local p = H.start({ scripts = { path }, options = { "--no-watch" } })
    H.wait_state(p, "snap", "RUNNING")
    H.write(path, 'error("bad edit")\n')
    -- while 129 spins, the reload and then the pause queue behind it
    assert.equal(0, (H.client(p, "control", "snap", "129")))
    assert.equal(0, (H.client(p, "reload", "snap")))
    assert.equal(0, (H.client(p, "pause", "snap")))
    H.wait_log(p, "reload refused", 10)
    H.wait_state(p, "snap", "PAUSED")
    assert.equal(0, (H.client(p, "control", "snap", "128")))
    H.wait_log(p, "STATE:", 5)
    assert.truthy(H.log(p):find("STATE:paused", 1, true), H.log(p))
    assert.equal(0, (H.client(p, "stop", "snap")))
    assert.equal(0, H.wait_exit(p, 5), H.log(p))
  end)

  it("whose reload() fails leaves no debug hook of its own behind", function()
    local path = script([[
local S = { name = "hooked" }
S.controls = { [128] = function(ctx)
  for _ = 1, 1000 do end
  ctx:log("info", "HOOKED:%s", tostring(HOOKED))
end }
function S.run(ctx) while ctx:sleep(20) do end end
return S
]], "hooked.lua")
    local p = H.start({ scripts = { path }, options = { "--watch-interval", "20" } })
    H.wait_state(p, "hooked", "RUNNING")
    H.write(path, [[
debug.sethook(function() HOOKED = (HOOKED or 0) + 1 end, "", 100)
return { name = "hooked", run = function(ctx) while ctx:sleep(20) do end end,
  reload = function(ctx) error("bad reload") end }
]])
    H.wait_log(p, "reload refused", 10)
    assert.equal(0, (H.client(p, "control", "hooked", "128")))
    H.wait_log(p, "HOOKED:", 5)
    assert.truthy(H.log(p):find("HOOKED:nil", 1, true), H.log(p))
    assert.equal(0, (H.client(p, "stop", "hooked")))
    assert.equal(0, H.wait_exit(p, 5), H.log(p))
  end)
end)
