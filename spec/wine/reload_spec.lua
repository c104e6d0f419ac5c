--[[
reload_spec.lua - hot reload (issue 5) under Wine's service control
manager: a service installed and started through the SCM takes an edit of
its script without leaving RUNNING in QueryServiceStatusEx, in the same
process; with --no-watch, `luasvc reload NAME` (PARAMCHANGE through the
SCM) makes it take the edit. Run by scripts/wine-test.
]]
local system = require "system"
local W = require "spec.wine.helper"
local TMP = W.TMP
local q, read, luasvc, status = W.q, W.read, W.luasvc, W.status

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A service whose user control 200 logs "VERSION:<version>"; paramchange
-- is left to the default (reload the script).
local function script(name, version)
  return ([[
local S = { name = %q, accepts = { "stop", "paramchange" }, stop_timeout = 3000 }
function S.run(ctx) while ctx:sleep(50) do end end
S.controls = { [200] = function(ctx) ctx:log("info", "VERSION:%s") end }
function S.reload(ctx) ctx:log("info", "RELOADED:%s") end
return S
]]):format(name, version, version)
end

local installed = {}
after_each(function()
  for i = #installed, 1, -1 do
    local out, rc = luasvc("uninstall", installed[i])
    assert.are.equal(0, rc, out)
    installed[i] = nil
  end
end)

-- Send control 200 until the log shows VERSION:want, checking at each
-- round that the service is RUNNING in the same process. Fails after ms.
local function until_version(name, log, want, pid, ms)
  local deadline = system.monotime() + ms / 1000
  while system.monotime() < deadline do
    local st = status(name)
    assert.are.equal("RUNNING", st.state)
    assert.are.equal(pid, st.pid)
    local out, rc = luasvc("control", name, "200")
    assert.are.equal(0, rc, out)
    if read(log):find("VERSION:" .. want, 1, true) then return end
    system.sleep(0.1)
  end
  error("no VERSION:" .. want .. " within " .. ms .. " ms; log:\n" .. read(log))
end

local function setup(name, ...)
  local path, log = TMP .. "/" .. name .. ".lua", TMP .. "/" .. name .. ".log"
  write(path, script(name, "A"))
  local out, rc = luasvc("install", path, "--log-file", log, ...)
  assert.are.equal(0, rc, out)
  installed[#installed + 1] = name
  out, rc = luasvc("start", name)
  assert.are.equal(0, rc, out)
  local pid = status(name).pid
  assert.is_true(pid > 0)
  until_version(name, log, "A", pid, 5000)
  return path, log, pid
end

describe("hot reload under the SCM", function()
  it("an edited script takes over while the service stays RUNNING in the same process", function()
    local path, log, pid = setup("hot")
    write(path, script("hot", "B"))
    until_version("hot", log, "B", pid, 10000)
    assert.matches("RELOADED:B", read(log))
    local st = status("hot")
    assert.are.equal("RUNNING", st.state)
    assert.are.equal(pid, st.pid)
  end)

  it("with --no-watch, `luasvc reload` (PARAMCHANGE through the SCM) takes the edit", function()
    local path, log, pid = setup("cold", "--no-watch")
    assert.matches("[/\\]cold%.lua$", status("cold").script) -- past the service's options
    write(path, script("cold", "B"))
    -- not watched: a few rounds later it still runs version A
    for _ = 1, 5 do
      local out, rc = luasvc("control", "cold", "200")
      assert.are.equal(0, rc, out)
    end
    assert.is_nil(read(log):find("VERSION:B", 1, true))
    local out, rc = luasvc("reload", "cold")
    assert.are.equal(0, rc, out)
    until_version("cold", log, "B", pid, 10000)
    assert.matches("RELOADED:B", read(log))
  end)
end)

describe("the security check on Windows (owner and DACL)", function()
  it("refuses a script others may write, unless --allow-insecure-script", function()
    -- Wine maps a file's Unix mode to its DACL: o+w is Everyone's write access.
    local dir = TMP .. "/acl"
    assert(os.execute("mkdir -m 700 " .. q(dir)))
    local path = dir .. "/open.lua"
    write(path, 'return { name = "open", run = function(ctx) ctx:log("info", "RAN") end }\n')
    assert(os.execute("chmod 666 " .. q(path)))
    local out, rc = luasvc("run", "--no-watch", path)
    assert.are.equal(2, rc, out)
    assert.matches("script [^\n]*open%.lua is writable by [^\n]*Everyone", out)
    assert.matches("%-%-allow%-insecure%-script overrides this", out)
    out, rc = luasvc("run", "--no-watch", "--allow-insecure-script", path)
    assert.are.equal(0, rc, out)
    assert.matches("RAN", out)
    assert(os.execute("chmod 644 " .. q(path) .. " && chmod 777 " .. q(dir)))
    out, rc = luasvc("run", "--no-watch", path)
    assert.are.equal(2, rc, out)
    assert.matches("the directory of [^\n]* is writable by [^\n]*Everyone", out)
    assert(os.execute("chmod 700 " .. q(dir)))
    out, rc = luasvc("run", "--no-watch", path)
    assert.are.equal(0, rc, out)
  end)
end)
