-- eval_unit_spec.lua - the console under a real systemd: luasvc eval and
-- luasvc attach reach a service that an installed, sandboxed unit runs
-- (its endpoint in the unit's RuntimeDirectory), a runaway chunk is
-- contained and the unit stays active. Runs inside scripts/systemd-harness
-- (ctest's systemd test); run alone it skips.
local in_harness = os.getenv("SYSTEMD_HARNESS_DIR") ~= nil

local SD = require "spec.support.systemd"
local lsvc, sctl, show = SD.lsvc, SD.sctl, SD.show

local unit_dir = (os.getenv("XDG_CONFIG_HOME") or "") .. "/systemd/user"
local installed = {}

-- Write a script, install it as a user unit, and add a test drop-in: the
-- service's stderr to a file (no journald in the harness), no core dumps,
-- extra [Service] lines. Returns the script path and the log path.
local function install(name, text, service_extra, install_args)
  local d = H.tmpdir()
  local path, log = d .. "/" .. name .. ".lua", d .. "/service.log"
  H.write(path, text)
  local args = { "install", path, "--systemd", "--user" }
  for _, a in ipairs(install_args or {}) do args[#args + 1] = a end
  local rc, out = lsvc(table.unpack(args))
  assert(rc == 0, "install failed: " .. out)
  installed[#installed + 1] = name
  H.sh("mkdir -p " .. H.q(unit_dir .. "/" .. name .. ".service.d"))
  H.write(unit_dir .. "/" .. name .. ".service.d/spec.conf",
    "[Service]\nStandardOutput=append:" .. log .. "\nStandardError=append:" .. log ..
    "\nLimitCORE=0\n" .. H.sanitizer_unit_lines() .. (service_extra or ""))
  rc, out = sctl("daemon-reload")
  assert(rc == 0, out)
  return path, log
end

local function uninstall(name)
  os.remove(unit_dir .. "/" .. name .. ".service.d/spec.conf")
  os.remove(unit_dir .. "/" .. name .. ".service.d")
  return lsvc("uninstall", name, "--systemd", "--user")
end

local function script(name, body, fields)
  return "local S = { name = '" .. name .. "', accepts = { 'stop', 'pause_continue', 'paramchange' },\n" ..
      "  stop_timeout = 3000, description = 'luasvc systemd spec: " .. name .. "'" ..
      (fields and (", " .. fields) or "") .. " }\n" .. body .. "\nreturn S\n"
end

local BODY = [[
counter = 0
function S.run(ctx)
  while ctx:sleep(20) do counter = counter + 1 end
end
S.controls = { [200] = function(ctx) ctx:log("info", "FLAG:%s", tostring(flag)) end }
]]

describe("the console under systemd", function()
  if not in_harness then
    pending("runs only inside scripts/systemd-harness (ctest's systemd test)")
    return
  end

  after_each(function()
    for _, name in ipairs(installed) do
      if H.read(unit_dir .. "/" .. name .. ".service") then uninstall(name) end
      sctl("reset-failed", H.q(name .. ".service"))
    end
    installed = {}
    H.cleanup()
  end)

  it("evals inside the unit's service, attaches from a pipe, contains a runaway chunk", function()
    local name = "lsvcspec-eval"
    local _, log = install(name, script(name, BODY, "handler_timeout = 1000"))
    local rc, out = lsvc("start", name)
    assert.are.equal(0, rc, out)
    local pid = show(name, "MainPID")
    rc, out = lsvc("eval", name, "return 6*7, ctx.name")
    assert.are.equal(0, rc, out)
    assert.are.equal("42\n" .. name .. "\n", out)
    rc, out = lsvc("eval", name, "flag = 'set by eval'")
    assert.are.equal(0, rc, out)
    rc, out = lsvc("control", name, "200")
    assert.are.equal(0, rc, out)
    H.wait_for(function() return (H.read(log) or ""):find("FLAG:set by eval", 1, true) end, 5,
      "the handler to see the global")
    rc, out = H.sh("printf 'return counter > 0\\n=flag\\n' | " .. H.q(H.bin) .. " attach " .. name)
    assert.are.equal(0, rc, out)
    assert.are.equal("true\nset by eval\n", out)
    rc, out = lsvc("eval", name, "while true do end")
    assert.are.equal(1, rc, out)
    assert.matches("handler_timeout (1000 ms)", out, 1, true)
    assert.are.equal("active", show(name, "ActiveState"))
    assert.are.equal(pid, show(name, "MainPID"))
    assert.matches("console: eval by uid %d+ %(pid %d+%): `return 6%*7, ctx.name`: ok", H.read(log))
    rc, out = lsvc("stop", name)
    assert.are.equal(0, rc, out)
    assert.are.equal("success", show(name, "Result"))
  end)
end)
