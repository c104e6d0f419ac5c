--[[
fence_spec.lua - what a service may reach of the process (runtime/engine/
fence.c), under Wine's SCM: the Windows counterparts of the host's signals
(SIGINT, SIGBREAK, SIGHUP) cannot be taken, threads are not offered, the
working directory, the environment, the title, the locale and the host's
priority are not a script's to change, the fences' originals are out of
debug.getupvalue's reach, and libuv's pool takes more
requests than a service's share by queueing them, all answered. (FIFOs,
SIGPIPE and the interrupt's signal are POSIX's: spec/fence_spec.lua.)
Run by scripts/wine-test.
]]
local W = require "spec.wine.helper"
local TMP, luasvc, status, eventually, read = W.TMP, W.luasvc, W.status, W.eventually, W.read

local SCRIPT = [[
local uv = require "luv"
local lfs = require "lfs"
local S = { name = "winfence" }
local function try(what, f, ...)
  local ok, err = pcall(f, ...)
  return what .. "=" .. (ok and "ok" or "refused")
end
function S.start(ctx)
  local r = {}
  for _, s in ipairs { "sigint", "sigbreak", "sighup", 2, 21 } do
    r[#r + 1] = try("sig" .. s, function() uv.new_signal():start(s, function() end) end)
  end
  r[#r + 1] = try("thread", uv.new_thread, function() end)
  r[#r + 1] = try("work", uv.new_work, function() end, function() end)
  r[#r + 1] = try("lfschdir", lfs.chdir, "C:\\")
  r[#r + 1] = try("uvchdir", uv.chdir, "C:\\")
  r[#r + 1] = try("setenv", uv.os_setenv, "LUASVC_FENCE", "x")
  r[#r + 1] = try("title", uv.set_process_title, "x")
  r[#r + 1] = try("setlocale", os.setlocale, "C")
  r[#r + 1] = try("setpriority", uv.os_setpriority, 0, 10)
  r[#r + 1] = "upvalue=" .. tostring(debug.getupvalue(uv.signal_start, 1))
  ctx:log("info", "FENCE %s", table.concat(r, " "))
  ctx.data.stats = 0
  for i = 1, 10 do
    uv.fs_stat(".", function(err, st) ctx.data.stats = ctx.data.stats + 1
      if ctx.data.stats == 10 then ctx:log("info", "POOL all 10 answered") end end)
  end
end
function S.run(ctx) while ctx:sleep(50) do end end
return S
]]

describe("under the SCM, a service's reach", function()
  it("ends at its service: signals, threads, chdir refused; the pool queues what passes its share", function()
    local path = TMP .. "/winfence.lua"
    local f = assert(io.open(path, "w"))
    f:write(SCRIPT)
    f:close()
    local log = TMP .. "/winfence.log"
    local out, rc = luasvc("install", path, "--log-file", log)
    assert.are.equal(0, rc, out)
    out, rc = luasvc("start", "winfence")
    assert.are.equal(0, rc, out)
    eventually(function() return (read(log) or ""):find("POOL all 10 answered", 1, true) end, 10000,
      "the pool's answers; log:\n" .. (read(log) or ""))
    local line = (read(log) or ""):match("FENCE ([^\r\n]*)")
    assert.are.equal("sigsigint=refused sigsigbreak=refused sigsighup=refused sig2=refused sig21=refused " ..
      "thread=refused work=refused lfschdir=refused uvchdir=refused setenv=refused title=refused " ..
      "setlocale=refused setpriority=refused upvalue=nil", line)
    out, rc = luasvc("stop", "winfence")
    assert.are.equal(0, rc, out)
    local st = status("winfence")
    assert.are.equal("STOPPED", st.state)
    assert.are.equal(0, st.win32_exit_code)
    out, rc = luasvc("uninstall", "winfence")
    assert.are.equal(0, rc, out)
  end)
end)
