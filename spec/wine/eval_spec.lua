--[[
eval_spec.lua - the console under Wine's SCM: `luasvc.exe eval NAME ...`
against an installed service reaches its Lua state through the service's
console pipe (\\.\pipe\luasvc-NAME): values, a global a control's handler
then sees, print, an error and a runaway chunk contained (the service
stays RUNNING), attach from a pipe, a script with console = false refused. Run by
scripts/wine-test.
]]
local W = require "spec.wine.helper"
local TMP, luasvc, status, eventually, read = W.TMP, W.luasvc, W.status, W.eventually, W.read

local SCRIPT = [[
local S = { name = "%s", handler_timeout = 1500, console = %s }
counter = 0
function S.run(ctx) while ctx:sleep(20) do counter = counter + 1 end end
S.controls = { [200] = function(ctx) ctx:log("info", "FLAG:%%s", tostring(flag)) end }
return S
]]

local function install(name, console)
  local path = TMP .. "/" .. name .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(SCRIPT:format(name, console))
  f:close()
  local log = TMP .. "/" .. name .. ".log"
  local out, rc = luasvc("install", path, "--log-file", log)
  assert.are.equal(0, rc, out)
  out, rc = luasvc("start", name)
  assert.are.equal(0, rc, out)
  return log
end

local function remove(name)
  local out, rc = luasvc("stop", name)
  assert.are.equal(0, rc, out)
  out, rc = luasvc("uninstall", name)
  assert.are.equal(0, rc, out)
end

describe("luasvc.exe eval, under the SCM", function()
  it("runs Lua inside the installed service; errors and a runaway chunk are contained", function()
    local log = install("wineval", "true")
    local out, rc = luasvc("eval", "wineval", "return 6*7, {a = 1}")
    assert.are.equal(0, rc, out)
    assert.are.equal("42\n{\n  a = 1,\n}\n", out)
    out, rc = luasvc("eval", "wineval", "flag = 'from eval' print('printed')")
    assert.are.equal(0, rc, out)
    assert.are.equal("printed\n", out)
    out, rc = luasvc("control", "wineval", "200")
    assert.are.equal(0, rc, out)
    eventually(function() return read(log):find("FLAG:from eval", 1, true) end, 5000, "the handler")
    out, rc = luasvc("eval", "wineval", "error('boom')")
    assert.are.equal(1, rc, out)
    assert.truthy(out:find("console:1: boom", 1, true), out)
    out, rc = luasvc("eval", "wineval", "while true do end")
    assert.are.equal(1, rc, out)
    assert.truthy(out:find("handler_timeout (1500 ms)", 1, true), out)
    out, rc = luasvc("eval", "wineval", "return counter > 0")
    assert.are.equal(0, rc, out)
    assert.are.equal("true\n", out)
    -- attach from a pipe: chunks over lines, no prompts
    local f = io.popen("printf 'return 6*7\\nx = {\\n  1 }\\nreturn #x\\n' | LC_ALL=C.UTF-8 wine " ..
      W.q(W.EXE) .. " attach wineval 2>&1")
    out = f:read("a"):gsub("\r\n", "\n")
    assert.truthy(f:close(), out)
    assert.are.equal("42\n1\n", out)
    assert.are.equal("RUNNING", status("wineval").state)
    assert.truthy(read(log):find("console: eval by pid %d+: `return 6%*7, {a = 1}`: ok"), read(log))
    remove("wineval")
    out, rc = luasvc("eval", "wineval", "return 1")
    assert.are.equal(1, rc, out)
    assert.truthy(out:find("is not running", 1, true), out)
  end)

  it("is refused by a script with console = false", function()
    install("winevaloff", "false")
    local out, rc = luasvc("eval", "winevaloff", "return 1")
    assert.are.equal(1, rc, out)
    assert.truthy(out:find("console = false", 1, true), out)
    remove("winevaloff")
  end)
end)
