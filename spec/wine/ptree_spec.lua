--[[
ptree_spec.lua - a service's process tree under Wine's SCM (DESIGN §9,
runtime/primitives/win32_job.c): every process a service starts (uv.spawn
with a grandchild, io.popen, os.execute's `start /b` that outlives its
cmd, a uv.spawn child whose handle the script closed) ends at its stop;
a sibling service's child lives on until its own stop. Wine's processes
are Linux processes here: they are looked for by their command lines,
each with its own ping count. Run by scripts/wine-test.
]]
local W = require "spec.wine.helper"
local TMP, luasvc, status, eventually, read = W.TMP, W.luasvc, W.status, W.eventually, W.read

-- Is a process with "ping -n N " or "ping.exe -n N " in its command line
-- alive (Linux side)?
-- (the pattern's last digit in brackets: the shell running pgrep, whose
-- own command line holds the pattern, does not match it)
local function alive(n)
  local s = tostring(n)
  return os.execute("pgrep -f 'ping(\\.exe)? -n " .. s:sub(1, -2) .. "[" .. s:sub(-1) .. "] ' > /dev/null")
end

local function script(name, body)
  local path = TMP .. "/" .. name .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(body)
  f:close()
  return path
end

local TREE = [[
local uv = require "luv"
local S = { name = "wtree", stop_timeout = 5000 }
local function ping(n) return "ping -n " .. n .. " 127.0.0.1" end
function S.start(ctx)
  -- cmd with a grandchild
  ctx.data.a = uv.spawn("cmd.exe", { args = { "/c", ping(311) } }, function() end)
  -- io.popen left open
  ctx.data.p = io.popen(ping(312))
  -- a background process that outlives the cmd os.execute ran
  os.execute("start /b ping.exe -n 313 127.0.0.1")
  -- a child whose handle the script closed
  local h = uv.spawn("ping.exe", { args = { "-n", "314", "127.0.0.1" } }, function() end)
  h:close()
  ctx:log("info", "TREE-STARTED")
end
function S.run(ctx) while ctx:sleep(3600000) do end end
return S
]]

local SIB = [[
local uv = require "luv"
local S = { name = "wsib", stop_timeout = 5000 }
function S.start(ctx)
  ctx.data.c = uv.spawn("ping.exe", { args = { "-n", "321", "127.0.0.1" } }, function() end)
end
function S.run(ctx) while ctx:sleep(3600000) do end end
return S
]]

describe("a service's processes under the SCM", function()
  it("all end at its stop, however started; a sibling's child lives on until its own", function()
    local log = TMP .. "/wtree.log"
    local out, rc = luasvc("install", script("wtree", TREE), "--log-file", log)
    assert.are.equal(0, rc, out)
    out, rc = luasvc("install", script("wsib", SIB), "--log-file", TMP .. "/wsib.log")
    assert.are.equal(0, rc, out)
    out, rc = luasvc("start", "wsib")
    assert.are.equal(0, rc, out)
    out, rc = luasvc("start", "wtree")
    assert.are.equal(0, rc, out)
    for _, n in ipairs({ 311, 312, 313, 314, 321 }) do
      eventually(function() return alive(n) end, 15000, "ping -n " .. n .. "; log:\n" .. read(log))
    end
    -- status counts the tree (at the worker's turn after start): at least
    -- the spawned cmd, popen's process, the background ping, the closed
    -- handle's ping
    local st = status("wtree")
    assert.truthy(st.children and st.children >= 4, tostring(st.children))
    out, rc = luasvc("stop", "wtree")
    assert.are.equal(0, rc, out)
    assert.are.equal("STOPPED", status("wtree").state)
    local left
    local function gone()
      left = {}
      for _, n in ipairs({ 311, 312, 313, 314 }) do
        if alive(n) then left[#left + 1] = n end
      end
      return #left == 0
    end
    assert(gone(), "still running at STOPPED: ping -n " .. table.concat(left, ", ") .. "; log:\n" .. read(log))
    -- ended by the stop, before STOPPED (the service's process closing its
    -- job at exit would end them too, a moment later)
    local n = tonumber(read(log):match("ending the (%d+) process[es]* left in the service's Job object"))
    assert.truthy(n and n >= 4, read(log))
    assert.truthy(alive(321), "the sibling's child was ended with the other service")
    assert.truthy(status("wsib").children >= 1)
    out, rc = luasvc("stop", "wsib")
    assert.are.equal(0, rc, out)
    eventually(function() return not alive(321) end, 5000, "the sibling's child to end at its stop")
    assert.are.equal(0, select(2, luasvc("uninstall", "wtree")))
    assert.are.equal(0, select(2, luasvc("uninstall", "wsib")))
  end)
end)
