--[[
engine_spec.lua - the scheduler's rules (runtime/engine: task kinds,
slices, PAUSED) seen from outside, on the console host: a slow new version
loads in slices while the running version serves HTTP, ticks and answers
controls; the load's handler_timeout is its own running time, also when a
PAUSE lands during the load; PAUSED holds run at every wait and hands over
what the wait got at CONTINUE. Real processes and sockets, polled with
deadlines.
]]
require "spec.helper"

local function script(text, name) return H.script(text, name) end

-- A luv HTTP/1.1 server (keep-alive; "Connection: close" closes) made once
-- by the first version and kept in ctx.data; each request is answered by
-- ctx.data.answer, which each version sets. run logs a TICK every 20 ms.
local SERVER = [[
local uv = require "luv"
local S = { name = "busy", handler_timeout = %d, stop_timeout = %d,
  accepts = { "stop", "pause_continue" } }
MARK = %q
local function answer() return "ok " .. MARK end
local function serve(ctx)
  local srv = uv.new_tcp()
  assert(srv:bind("127.0.0.1", 0))
  assert(srv:listen(128, function()
    local c = uv.new_tcp()
    srv:accept(c)
    local buf = ""
    c:read_start(function(err, data)
      if not data then c:close() return end
      buf = buf .. data
      while true do
        local e = buf:find("\r\n\r\n", 1, true)
        if not e then break end
        local head = buf:sub(1, e)
        buf = buf:sub(e + 4)
        local body = ctx.data.answer()
        local close = head:lower():find("connection: close", 1, true)
        c:write("HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\n" ..
          (close and "Connection: close\r\n" or "") .. "\r\n" .. body)
        if close then c:shutdown(function() c:close() end) return end
      end
    end)
  end))
  ctx:log("info", "PORT:%%d", srv:getsockname().port)
  ctx.data.srv = srv
end
function S.start(ctx) ctx.data.answer = answer serve(ctx) ctx.data.ticks = 0 end
function S.reload(ctx) ctx.data.answer = answer end
function S.run(ctx)
  while ctx:sleep(20) do ctx.data.ticks = ctx.data.ticks + 1 ctx:log("info", "TICK:%%d", ctx.data.ticks) end
end
function S.stop(ctx) ctx.data.srv:close() end
S.pause = function(ctx) ctx:log("info", "PAUSED-BY:%%s", MARK) end
S.controls = { [128] = function(ctx) ctx:log("info", "V:%%s", MARK) end }
%s
return S
]]

-- The new version's top level: a marker on stderr, then CPU for secs.
local function spin(secs)
  return string.format([[
io.stderr:write("LOAD-BEGIN\n") io.stderr:flush()
local t0 = os.clock()
while os.clock() - t0 < %s do end
]], secs)
end

-- The same, counting its own running time only: the wall clock's steps
-- of under 0.2 ms (a step over that is a slice given to the running
-- version, or the OS's); then its wall time on stderr.
local function spin_own(secs)
  return string.format([[
io.stderr:write("LOAD-BEGIN\n") io.stderr:flush()
local now = require("luasvc").now
local own, t0 = 0, now()
local last = t0
while own < %s do
  local t = now()
  if t - last < 0.0002 then own = own + (t - last) end
  last = t
end
io.stderr:write(string.format("LOAD-WALL:%%.2f\n", now() - t0)) io.stderr:flush()
]], secs)
end

-- Requests at a steady rate for about secs, on one keep-alive connection
-- or a fresh one each (Connection: close); curl's time per request.
local function probe(port, secs, fresh)
  local n = math.floor(secs * 40)
  local urls = {}
  for _ = 1, n do urls[#urls + 1] = "http://127.0.0.1:" .. port .. "/" end
  local cmd = string.format("curl -s -m 10 --rate 40/s %s -w '\\n%%{http_code} %%{time_total}\\n' %s",
    fresh and "-H 'Connection: close'" or "", table.concat(urls, " "))
  local _, out = H.sh(cmd)
  local worst, ok = 0, 0
  for code, t in out:gmatch("\n(%d%d%d) ([%d%.]+)\n") do
    if code == "200" then ok = ok + 1 end
    worst = math.max(worst, tonumber(t))
  end
  return ok, n, worst
end

-- The worst request the acceptance allows (a sanitizer's build runs Lua
-- several times slower, beside another spec: its bound is wider, and still
-- far below the seconds an unsliced load would freeze the server for).
local WORST = (os.getenv("ASAN_OPTIONS") or os.getenv("TSAN_OPTIONS")) and 0.5 or 0.05

describe("while a slow new version loads", function()
  after_each(H.cleanup)

  it("the running version serves HTTP, ticks and answers controls; then the new one takes over", function()
    local path = script(string.format(SERVER, 10000, 5000, "v1", ""), "busy.lua")
    local p = H.start({ scripts = { path }, options = { "--watch-interval", "20" } })
    H.wait_state(p, "busy", "RUNNING")
    local port = tonumber(H.wait_log(p, "PORT:%d+") and H.log(p):match("PORT:(%d+)"))
    -- v2's top level takes 3 s of CPU
    H.write(path, string.format(SERVER, 10000, 5000, "v2", spin(3)))
    H.wait_log(p, "LOAD%-BEGIN", 30)
    local ok, n, worst = probe(port, 1.2, false)
    assert.equal(n, ok, "keep-alive requests answered")
    assert.truthy(worst <= WORST, "worst keep-alive request " .. worst .. " s")
    ok, n, worst = probe(port, 0.8, true)
    assert.equal(n, ok, "fresh-connection requests answered")
    assert.truthy(worst <= WORST, "worst fresh-connection request " .. worst .. " s")
    assert.equal(0, (H.client(p, "control", "busy", "128")))
    H.wait_log(p, "V:", 5)
    local log = H.log(p)
    assert.falsy(log:find("reloaded", 1, true), "the load was over before the probes: " .. log)
    assert.truthy(log:find("V:v1", 1, true), log)
    -- run kept ticking during the load
    local during = log:sub((log:find("LOAD-BEGIN", 1, true)))
    local ticks = select(2, during:gsub("TICK:", ""))
    assert.truthy(ticks >= 20, "run ticked " .. ticks .. " times during 2 s of loading")
    H.wait_log(p, "reloaded", 60)
    local _, body = H.sh(string.format("curl -s -m 3 http://127.0.0.1:%d/", port))
    assert.equal("ok v2", body)
    assert.equal(0, (H.client(p, "stop", "busy")))
    assert.equal(0, H.wait_exit(p, 10))
  end)

  it("the running version ticks while the new version's modules load (a module's top level is sliced too)", function()
    local path, d = script(string.format(SERVER, 10000, 5000, "v1", ""), "busy.lua")
    local p = H.start({ scripts = { path }, options = { "--watch-interval", "20" } })
    H.wait_state(p, "busy", "RUNNING")
    H.write(d .. "/slowmod.lua", spin(2) .. "\nreturn {}\n")
    H.write(path, string.format(SERVER, 10000, 5000, "v2", 'require "slowmod"'))
    H.wait_log(p, "reloaded", 60)
    local log = H.log(p)
    local during = log:sub(log:find("LOAD-BEGIN", 1, true), log:find("reloaded", 1, true))
    local ticks = select(2, during:gsub("TICK:", ""))
    assert.truthy(ticks >= 30, "run ticked " .. ticks .. " times while a module took 2 s to load")
    assert.equal(0, (H.client(p, "stop", "busy")))
    assert.equal(0, H.wait_exit(p, 10))
  end)

  it("counts only its own running time against handler_timeout, also when a PAUSE lands during it", function()
    -- stop_timeout 500: a PAUSE's pending deadline; the load's budget is 3000 ms of its own
    -- time, and it takes 1 s of it; a timer of the running version's takes 4 ms of
    -- every turn meanwhile, so the load takes longer than 3 s on the wall clock
    local hog = [[
local start0 = S.start
function S.start(ctx) start0(ctx)
  local t = require("luv").new_timer()
  t:start(2, 2, function() local t0 = os.clock() while os.clock() - t0 < 0.004 do end end)
  ctx.data.hog = t
end]]
    local path = script(string.format(SERVER, 3000, 500, "v1", hog), "busy.lua")
    local p = H.start({ scripts = { path }, options = { "--watch-interval", "20" } })
    H.wait_state(p, "busy", "RUNNING")
    H.write(path, string.format(SERVER, 3000, 500, "v2", spin_own(1.0) .. "\n-- v2"))
    H.wait_log(p, "LOAD%-BEGIN", 30)
    assert.equal(0, (H.client(p, "pause", "busy")))
    H.wait_state(p, "busy", "PAUSED", 5)
    assert.truthy(H.log(p):find("PAUSED-BY:v1", 1, true), H.log(p))
    H.wait_log(p, "reloaded", 60)
    assert.falsy(H.log(p):find("reload refused", 1, true), H.log(p))
    -- the load took longer than its budget on the wall clock: a budget
    -- counted on it would have refused v2
    local wall = tonumber(H.log(p):match("LOAD%-WALL:([%d.]+)"))
    assert.truthy(wall and wall > 3.2, "the load's wall time " .. tostring(wall) .. " s is within its 3 s budget: the hog took too little to tell")
    assert.equal("PAUSED", H.status(p, "busy").state)
    assert.equal(0, (H.client(p, "continue", "busy")))
    H.wait_state(p, "busy", "RUNNING", 5)
    assert.equal(0, (H.client(p, "stop", "busy")))
    assert.equal(0, H.wait_exit(p, 10))
  end)
end)

describe("PAUSED", function()
  after_each(H.cleanup)

  local RUNNER = [[
local S = { name = "held", accepts = { "stop", "pause_continue" } }
function S.start(ctx)
  ctx.data.q = ctx:queue()
  ctx.data.turns = 0
  ctx:spawn(function() while ctx:sleep(10) do ctx.data.beats = (ctx.data.beats or 0) + 1 end end)
end
function S.run(ctx)
  local seen
  while not ctx:stopping() do
    local how = ctx.data.mode
    if how ~= seen then seen = how ctx:log("info", "MODE:%s", tostring(how)) end
    if how == "sleep0" then
      ctx:sleep(0)
      ctx.data.turns = ctx.data.turns + 1
    elseif how == "queue" then
      local ok, v = ctx.data.q:get(30)
      if ok then ctx:log("info", "GOT:%s", v) end
    elseif how == "await" then
      local ok, v = ctx:await(function(cb) ctx.data.cb = cb end)
      if ok then ctx:log("info", "AWAITED:%s", tostring(v)) end
    else
      ctx:sleep(10)
    end
  end
end
S.controls = {
  [128] = function(ctx) ctx.data.mode = "sleep0" end,
  [129] = function(ctx) ctx.data.mode = "queue" end,
  [130] = function(ctx) ctx.data.mode = "await" end,
  [131] = function(ctx) ctx:log("info", "TURNS:%d:%d", ctx.data.turns, ctx.data.beats or 0) end,
  [132] = function(ctx) ctx.data.q("item") end,
  [133] = function(ctx) if ctx.data.cb then ctx.data.cb("x") ctx.data.cb = nil end end,
}
return S
]]

  -- Wait for the spawned beater (not held by PAUSED) to beat n more times.
  local function beats(p, n)
    local function now()
      local before = H.count(p, "TURNS:")
      assert.equal(0, (H.client(p, "control", "held", "131")))
      H.wait_for(function() return H.count(p, "TURNS:") > before end, 5, "TURNS")
      local t = H.tagged(p, "TURNS")
      local turns, b = t[#t]:match("(%d+):(%d+)")
      return tonumber(turns), tonumber(b)
    end
    local turns0, b0 = now()
    local turns, b
    H.wait_for(function() turns, b = now() return b >= b0 + n end, 5, "the beater")
    return turns0, turns
  end

  it("holds run at ctx:sleep(0) (while other tasks go on)", function()
    local p = H.start({ scripts = { (script(RUNNER, "held.lua")) } })
    H.wait_state(p, "held", "RUNNING")
    assert.equal(0, (H.client(p, "control", "held", "128")))
    H.wait_log(p, "MODE:sleep0", 5) -- run is in that wait before the pause comes
    assert.equal(0, (H.client(p, "pause", "held")))
    H.wait_state(p, "held", "PAUSED")
    local t0, t1 = beats(p, 5)
    assert.equal(t0, t1, "run turned while PAUSED")
    assert.equal(0, (H.client(p, "continue", "held")))
    H.wait_state(p, "held", "RUNNING")
    local t2, t3 = beats(p, 3)
    assert.truthy(t3 > t2, "run turns again after CONTINUE")
    assert.equal(0, (H.client(p, "stop", "held")))
    assert.equal(0, H.wait_exit(p, 10))
  end)

  it("holds run at q:get(ms) and hands the item over at CONTINUE", function()
    local p = H.start({ scripts = { (script(RUNNER, "held.lua")) } })
    H.wait_state(p, "held", "RUNNING")
    assert.equal(0, (H.client(p, "control", "held", "129")))
    H.wait_log(p, "MODE:queue", 5) -- run is in that wait before the pause comes
    assert.equal(0, (H.client(p, "pause", "held")))
    H.wait_state(p, "held", "PAUSED")
    assert.equal(0, (H.client(p, "control", "held", "132")))
    beats(p, 5)
    assert.falsy(H.log(p):find("GOT:", 1, true), "run took the item while PAUSED:\n" .. H.log(p))
    assert.equal(0, (H.client(p, "continue", "held")))
    H.wait_log(p, "GOT:item", 5)
    assert.equal(0, (H.client(p, "stop", "held")))
    assert.equal(0, H.wait_exit(p, 10))
  end)

  it("holds run at ctx:await and hands the result over at CONTINUE; a stop ends the hold", function()
    local p = H.start({ scripts = { (script(RUNNER, "held.lua")) } })
    H.wait_state(p, "held", "RUNNING")
    assert.equal(0, (H.client(p, "control", "held", "130")))
    H.wait_log(p, "MODE:await", 5) -- run is in that wait before the pause comes
    assert.equal(0, (H.client(p, "pause", "held")))
    H.wait_state(p, "held", "PAUSED")
    assert.equal(0, (H.client(p, "control", "held", "133")))
    beats(p, 5)
    assert.falsy(H.log(p):find("AWAITED:", 1, true), "run went on while PAUSED:\n" .. H.log(p))
    assert.equal(0, (H.client(p, "continue", "held")))
    H.wait_log(p, "AWAITED:x", 5)
    -- held again, then stopped while held: the stop is not held up
    assert.equal(0, (H.client(p, "pause", "held")))
    H.wait_state(p, "held", "PAUSED")
    assert.equal(0, (H.client(p, "control", "held", "133")))
    beats(p, 2)
    assert.equal(0, (H.client(p, "stop", "held")))
    assert.equal(0, H.wait_exit(p, 10))
  end)
end)
