-- wait_spec.lua - `luasvc stop|pause|continue NAME --wait [--timeout
-- SECONDS]` on the console host (issue 23): each returns once the service
-- reached the state its control leads to, or exits 1 with the state it is
-- in when the timeout passes; a service already on its way is only waited
-- for; bad arguments are named. (Under systemd: spec/systemd/; under Wine:
-- spec/wine/scm_spec.lua.)
local F = H.fixtures
local system = require "system"

local function timed(fn)
  local t0 = system.monotime()
  local rc, out = fn()
  return rc, out, system.monotime() - t0
end

describe("--wait", function()
  after_each(H.cleanup)

  it("returns once PAUSED, RUNNING and STOPPED are reached", function()
    local p = H.start { scripts = { F .. "slow_controls.lua" }, args = { "4" } }
    H.wait_state(p, "slow_controls", "RUNNING")
    local rc, out, took = timed(function() return H.client(p, "pause", "slow_controls", "--wait") end)
    assert.equal(0, rc, out)
    assert.matches("slow_controls: PAUSED\n", out, 1, true)
    assert.is_true(took >= 0.35, "pause returned after " .. took .. " s")
    assert.equal("PAUSED", H.status(p, "slow_controls").state) -- no poll: it is there now
    rc, out = H.client(p, "continue", "slow_controls", "--wait")
    assert.equal(0, rc, out)
    assert.equal("RUNNING", H.status(p, "slow_controls").state)
    rc, out, took = timed(function() return H.client(p, "stop", "slow_controls", "--wait") end)
    assert.equal(0, rc, out)
    assert.matches("slow_controls: STOPPED\n", out, 1, true)
    assert.is_true(took >= 0.35, "stop returned after " .. took .. " s")
    -- the host is gone (or going): its log has STOPPED already
    assert.truthy(H.log(p):find("slow_controls: STOPPED", 1, true), H.log(p))
    assert.equal(0, H.wait_exit(p))
  end)

  it("without --wait returns at once", function()
    local p = H.start { scripts = { F .. "slow_controls.lua" }, args = { "10" } }
    H.wait_state(p, "slow_controls", "RUNNING")
    local rc, out = H.client(p, "pause", "slow_controls")
    assert.equal(0, rc, out)
    assert.equal("PAUSE_PENDING", H.status(p, "slow_controls").state)
  end)

  it("exits 1 with the state the service is in when --timeout passes, and waits again", function()
    local p = H.start { scripts = { F .. "slow_controls.lua" }, args = { "20" } }
    H.wait_state(p, "slow_controls", "RUNNING")
    local rc, out, took = timed(function()
      return H.client(p, "stop", "slow_controls", "--wait", "--timeout", "0.3")
    end)
    assert.equal(1, rc, out)
    assert.matches("'slow_controls' is still STOP_PENDING after 0%.3 s %(checkpoint %d+, wait hint 500 ms%)", out)
    assert.is_true(took < 1.5, "gave up after " .. took .. " s")
    -- --timeout alone implies --wait; a stop already under way is waited for, not refused
    rc, out = H.client(p, "stop", "slow_controls", "--timeout", "10")
    assert.equal(0, rc, out)
    assert.matches("slow_controls: STOPPED", out, 1, true)
    assert.equal(0, H.wait_exit(p))
  end)

  it("says so when the service settles elsewhere (a pause handler that fails)", function()
    local p = H.start { scripts = { F .. "slow_controls.lua" }, args = { "2" } }
    H.wait_state(p, "slow_controls", "RUNNING")
    assert.equal(0, (H.client(p, "control", "slow_controls", "200")))
    local rc, out = H.client(p, "pause", "slow_controls", "--wait", "--timeout", "5")
    assert.equal(1, rc, out)
    assert.matches("'slow_controls' is RUNNING, not PAUSED", out, 1, true)
  end)

  it("refuses bad arguments, naming them", function()
    local p = H.start { scripts = { F .. "slow_controls.lua" } }
    H.wait_state(p, "slow_controls", "RUNNING")
    for _, bad in ipairs({ "0", "-1", "x", "1e9", "" }) do
      local rc, out = H.client(p, "stop", "slow_controls", "--wait", "--timeout", bad)
      assert.equal(2, rc, out)
      assert.matches("luasvc stop: --timeout '" .. bad .. "': a number of seconds", out, 1, true)
    end
    local rc, out = H.client(p, "pause", "slow_controls", "--timeout")
    assert.equal(2, rc, out)
    assert.matches("--timeout needs a value", out, 1, true)
    rc, out = H.client(p, "continue", "slow_controls", "--later")
    assert.equal(2, rc, out)
    assert.matches("unexpected argument '--later'", out, 1, true)
    rc, out = H.client(p, "pause", "--wait")
    assert.equal(2, rc, out)
    assert.matches("no NAME given", out, 1, true)
    assert.equal("RUNNING", H.status(p, "slow_controls").state)
    -- a service that is not running: the control's own error
    rc, out = H.client(p, "stop", "nobody_here", "--wait")
    assert.equal(1, rc, out)
    assert.matches("error 1062", out, 1, true)
  end)
end)
