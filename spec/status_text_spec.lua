-- status_text_spec.lua - what the console's log and `status` say while a
-- service changes state (issue 23): checkpoints are logged at debug (a
-- long drain would flood info), state changes at info; the script's
-- status text stays across PAUSE, CONTINUE and the stop until the script
-- changes it.
local F = H.fixtures

describe("checkpoints in the log", function()
  after_each(H.cleanup)

  it("are debug lines; the state changes stay at info", function()
    local p = H.start { scripts = { F .. "slow_controls.lua" }, args = { "3" } }
    H.wait_state(p, "slow_controls", "RUNNING")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    local log = H.log(p)
    assert.is_nil(log:find("checkpoint", 1, true), log)
    assert.truthy(log:find(" info +slow_controls: STOP_PENDING\n"), log)
    assert.truthy(log:find(" info +slow_controls: STOPPED"), log)

    p = H.start { scripts = { F .. "slow_controls.lua" }, args = { "3" }, options = { "--log-level", "debug" } }
    H.wait_state(p, "slow_controls", "RUNNING")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    log = H.log(p)
    for i = 1, 3 do
      assert.truthy(log:find(" debug +slow_controls: STOP_PENDING checkpoint " .. i .. ", wait hint 500 ms\n"), log)
    end
  end)
end)

describe("the script's status text", function()
  after_each(H.cleanup)

  it("stays across PAUSE and CONTINUE until the script changes it", function()
    local p = H.start { scripts = { F .. "slow_controls.lua" }, args = { "1" } }
    H.wait_for(function()
      local st = H.status(p, "slow_controls")
      return st and st.status_text == "serving"
    end, 5, "the text 'serving'")
    assert.equal(0, (H.client(p, "pause", "slow_controls", "--wait")))
    local st = H.status(p, "slow_controls")
    assert.equal("PAUSED", st.state)
    assert.equal("serving", st.status_text)
    local _, line = H.client(p, "status", "slow_controls")
    assert.matches("PAUSED .*%(serving%)", line)
    assert.equal(0, (H.client(p, "continue", "slow_controls", "--wait")))
    st = H.status(p, "slow_controls")
    assert.equal("RUNNING", st.state)
    assert.equal("serving", st.status_text)
    -- the script clears it (ctx:status() with no text)
    assert.equal(0, (H.client(p, "control", "slow_controls", "201")))
    H.wait_for(function()
      local s = H.status(p, "slow_controls")
      return s and s.status_text == nil -- null
    end, 5, "the text cleared")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)
end)
