-- eval_unit_spec.lua - the console under a real systemd: luasvc eval and
-- luasvc attach reach a service that an installed, sandboxed unit runs
-- (its endpoint in the unit's RuntimeDirectory), a runaway chunk is
-- contained and the unit stays active. Runs inside scripts/systemd-harness
-- (ctest's systemd test); run alone it skips.
local in_harness = os.getenv("SYSTEMD_HARNESS_DIR") ~= nil

local SD = require "spec.support.systemd"
local lsvc, sctl, show = SD.lsvc, SD.sctl, SD.show

local unit_dir, install, uninstall, script = SD.unit_dir, SD.install, SD.uninstall, SD.script

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

  after_each(SD.cleanup)

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
