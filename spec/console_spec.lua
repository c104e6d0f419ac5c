-- console_spec.lua - the foreground host (`luasvc run`) end to end: the real
-- binary on fixture scripts, driven by signals and the control endpoint.
local F = H.fixtures

describe("luasvc run", function()
  after_each(H.cleanup)

  it("starts, takes every kind of control and stops cleanly on SIGTERM", function()
    local p = H.start { scripts = { F .. "basic.lua" }, args = { "one", "two words" } }
    local st = H.wait_state(p, "basic", "RUNNING")
    assert.equal(4, st.state_code)
    assert.equal(p.pid, st.pid)
    assert.same({ "stop", "pause_continue", "shutdown", "paramchange" }, st.controls_accepted)
    assert.equal(0, st.win32_exit_code)
    assert.equal(0, st.service_exit_code)
    assert.equal(0, st.checkpoint)
    assert.equal(0, st.wait_hint)
    assert.truthy(H.log(p):find("ARGS:one|two words", 1, true))

    assert.equal(0, (H.client(p, "control", "basic", "200")))
    H.wait_log(p, "CTL:200")
    assert.equal(0, (H.client(p, "pause", "basic")))
    H.wait_state(p, "basic", "PAUSED")
    H.wait_log(p, "CTL:pause")
    assert.equal(0, (H.client(p, "continue", "basic")))
    H.wait_state(p, "basic", "RUNNING")
    H.wait_log(p, "CTL:continue")
    assert.equal(0, (H.client(p, "reload", "basic")))
    H.wait_log(p, "CTL:paramchange")
    H.kill(p, "HUP")
    H.wait_for(function() return H.count(p, "CTL:paramchange") == 2 end, 5, "SIGHUP paramchange")

    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    local log = H.log(p)
    assert.truthy(log:find("RUN:returned stopping=true", 1, true))
    assert.truthy(log:find("STOP:called state=STOP_PENDING", 1, true))
    -- time, level, service, message
    assert.truthy(log:find("\n%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%d info +basic: STOPPED"))
    -- the endpoint is gone with the host
    assert.is_nil(io.open(p.rt .. "/basic.sock"))
  end)

  it("stops on SIGINT and on `luasvc stop`", function()
    local p = H.start { scripts = { F .. "basic.lua" } }
    H.wait_state(p, "basic", "RUNNING")
    H.kill(p, "INT")
    assert.equal(0, H.wait_exit(p))
    local q = H.start { scripts = { F .. "basic.lua" } }
    H.wait_state(q, "basic", "RUNNING")
    local rc, out = H.client(q, "stop", "basic")
    assert.equal(0, rc, out)
    assert.equal(0, H.wait_exit(q))
    assert.truthy(H.log(q):find("STOP:called"))
  end)

  it("refuses what the SCM refuses, naming the Win32 error", function()
    local p = H.start { scripts = { F .. "basic.lua", F .. "no_accepts.lua" } }
    H.wait_state(p, "basic", "RUNNING")
    H.wait_state(p, "no_accepts", "RUNNING")
    local rc, out = H.client(p, "control", "basic", "199") -- no handler for 199
    assert.equal(1, rc)
    assert.truthy(out:find("1052"), out)
    rc, out = H.client(p, "pause", "no_accepts")
    assert.equal(1, rc)
    assert.truthy(out:find("error 1052: The requested control is not valid for this service", 1, true), out)
    rc, out = H.client(p, "control", "basic", "20") -- no such control
    assert.equal(1, rc)
    assert.truthy(out:find("87"), out)
    rc, out = H.client(p, "control", "nobody", "stop")
    assert.equal(1, rc)
    assert.truthy(out:find("1062"), out)
    rc, out = H.client(p, "control", "basic", "bogus")
    assert.equal(2, rc)
    assert.truthy(out:find("bad control 'bogus'", 1, true), out)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("refuses controls while START_PENDING with 1061, and checkpoints move only on progress", function()
    local p = H.start { scripts = { F .. "slow_start.lua" }, args = { "12", "150" } }
    H.wait_log(p, "STEP:1")
    local rc, out = H.client(p, "stop", "slow_start")
    assert.equal(1, rc)
    assert.truthy(out:find("error 1061: The service cannot accept control messages at this time", 1, true), out)
    rc, out = H.client(p, "control", "slow_start", "interrogate")
    assert.equal(0, rc, out)
    local seen = {}
    H.wait_for(function()
      local st = H.status(p, "slow_start")
      if st and st.state == "START_PENDING" then
        seen[#seen + 1] = st.checkpoint
        assert.equal(1500, st.wait_hint)
        assert.same({}, st.controls_accepted)
      end
      return st and st.state == "RUNNING"
    end, 10, "slow start to finish")
    -- checkpoints never went backwards and did move
    for i = 2, #seen do assert.is_true(seen[i] >= seen[i - 1]) end
    assert.is_true(seen[#seen] > seen[1], "checkpoints moved: " .. table.concat(seen, ","))
    assert.equal(12, #H.tagged(p, "STEP"))
    local st = H.status(p, "slow_start")
    assert.equal(0, st.checkpoint)
    assert.equal(0, st.wait_hint)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("a start that stops showing progress is interrupted and reported", function()
    local p = H.start { scripts = { F .. "hung_start.lua" } }
    local rc = H.wait_exit(p, 5)
    assert.is_true(rc ~= 0)
    local log = H.log(p)
    assert.truthy(log:find("start made no progress within its wait hint"), log)
    assert.truthy(log:find("STOPPED with error 1460"), log)
    assert.falsy(log:find("RUNNING"))
  end)

  it("SIGINT during a slow start stops the service once start returns", function()
    local p = H.start { scripts = { F .. "slow_start.lua" }, args = { "50", "100" } }
    H.wait_log(p, "STEP:1")
    H.kill(p, "INT")
    assert.equal(0, H.wait_exit(p, 5))
    assert.is_true(#H.tagged(p, "STEP") < 50)
    assert.falsy(H.log(p):find(" RUNNING\n"))
  end)

  it("an error in start stops the service with exit code 1 and a traceback", function()
    local p = H.start { scripts = { F .. "start_error.lua" } }
    assert.equal(1, H.wait_exit(p))
    local log = H.log(p)
    assert.truthy(log:find("error in start: spec/fixtures/start_error.lua:6: attempt to index a nil value", 1, true), log)
    assert.truthy(log:find("stack traceback:", 1, true))
    assert.truthy(log:find("STOPPED with service%-specific exit code 1"))
    assert.falsy(log:find("RUNNING"))
  end)

  it("ctx:exit(code) before an error in start sets the exit code", function()
    local p = H.start { scripts = { F .. "start_error.lua" }, args = { "7" } }
    assert.equal(7, H.wait_exit(p))
    assert.truthy(H.log(p):find("STOPPED with service%-specific exit code 7"))
  end)

  it("an error in run stops the service with exit code 1, after running stop", function()
    local p = H.start { scripts = { F .. "run_error.lua" } }
    assert.equal(1, H.wait_exit(p))
    local log = H.log(p)
    assert.truthy(log:find("error in run: spec/fixtures/run_error.lua:5: run gave up", 1, true), log)
    assert.truthy(log:find("STOP:called", 1, true))
  end)

  it("ctx:exit(n) in run stops with n; sleep returns false after it", function()
    local p = H.start { scripts = { F .. "exit_code.lua" }, args = { "42" } }
    assert.equal(42, H.wait_exit(p))
    local log = H.log(p)
    assert.truthy(log:find("RUN:sleep after exit returns false", 1, true))
    assert.truthy(log:find("STOP:called", 1, true))
    local q = H.start { scripts = { F .. "run_returns.lua" } }
    assert.equal(0, H.wait_exit(q))
  end)

  it("an error in a control handler is logged and the service keeps its state", function()
    local p = H.start { scripts = { F .. "basic.lua" } }
    H.wait_state(p, "basic", "RUNNING")
    assert.equal(0, (H.client(p, "control", "basic", "150")))
    H.wait_log(p, "error in controls%[150%]: spec/fixtures/basic.lua:%d+: boom in a control handler")
    assert.equal(0, (H.client(p, "control", "basic", "201")))
    H.wait_log(p, "CTL:201")
    assert.equal("RUNNING", H.status(p, "basic").state)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("a handler that sleeps yields: run goes on meanwhile", function()
    local p = H.start { scripts = { F .. "basic.lua" } }
    H.wait_state(p, "basic", "RUNNING")
    assert.equal(0, (H.client(p, "control", "basic", "151")))
    H.wait_log(p, "CTL:151 ticks_advanced=true")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("delivers a storm of controls once each, in arrival order", function()
    local p = H.start { scripts = { F .. "storm.lua" } }
    H.wait_state(p, "storm", "RUNNING")
    local sent = {}
    local cmds = {}
    for i = 1, 300 do
      local code = 128 + (i * 37) % 128
      sent[#sent + 1] = code
      cmds[#cmds + 1] = string.format("%s control storm %d || echo FAILED", H.q(H.bin), code)
    end
    -- one shell sends them back to back, in order
    local rc, out = H.sh("LUASVC_RUNTIME_DIR=" .. H.q(p.rt) .. " sh -c " .. H.q(table.concat(cmds, "; ")))
    assert.falsy(out:find("FAILED"), out)
    H.wait_for(function() return #H.tagged(p, "SEQ") >= #sent end, 20, "all controls delivered")
    local got = {}
    for _, v in ipairs(H.tagged(p, "SEQ")) do got[#got + 1] = tonumber(v) end
    assert.same(sent, got)
    assert.equal(300, H.status(p, "storm").controls_delivered)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("logs the states in the order they happened, through pause/continue storms", function()
    local p = H.start { scripts = { F .. "basic.lua" } }
    H.wait_state(p, "basic", "RUNNING")
    local cmds = {}
    for _ = 1, 40 do
      cmds[#cmds + 1] = string.format("%s pause basic; %s continue basic", H.q(H.bin), H.q(H.bin))
    end
    H.sh("LUASVC_RUNTIME_DIR=" .. H.q(p.rt) .. " sh -c " .. H.q(table.concat(cmds, "; ")) .. " >/dev/null 2>&1")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    local states = {}
    for st in H.log(p):gmatch("info +basic: (%u[%u_]+)\n") do states[#states + 1] = st end
    -- a pending state never comes after the state it leads to
    for i = 2, #states do
      local pair = states[i - 1] .. ">" .. states[i]
      assert.is_true(pair ~= "PAUSED>PAUSE_PENDING" and pair ~= "RUNNING>CONTINUE_PENDING",
        "states out of order at " .. i .. ": " .. table.concat(states, " "))
    end
    assert.is_true(#states >= 40, table.concat(states, " "))
  end)

  it("a run that yields 100,000 times runs to its end", function()
    local p = H.start { scripts = { F .. "many_yields.lua" } }
    assert.equal(0, H.wait_exit(p, 60))
    assert.truthy(H.log(p):find("RUN:yielded 100000 times", 1, true))
  end)

  it("SIGTERM stops a service that accepts no STOP from a manager", function()
    local p = H.start { scripts = { F .. "no_accepts.lua" } }
    H.wait_state(p, "no_accepts", "RUNNING")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)
end)

describe("the watchdog", function()
  after_each(H.cleanup)

  -- STOP_PENDING to STOPPED, as the host reported them, within budget.
  local function stop_within(fixture, name, budget)
    local p = H.start { scripts = { F .. fixture } }
    H.wait_state(p, name, "RUNNING")
    H.wait_log(p, "RUN:")
    H.kill(p, "TERM")
    local rc = H.wait_exit(p, 10)
    local took = H.log_interval(p, name, "STOP_PENDING", "STOPPED")
    assert.is_true(took < budget, string.format("stopped in %.3f s, budget %.3f s", took, budget))
    return p, rc
  end

  it("interrupts a run that never yields past stop_timeout; pcall cannot swallow it", function()
    local p, rc = stop_within("ignore_stop.lua", "ignore_stop", 0.5 + 1)
    assert.is_true(rc ~= 0)
    local log = H.log(p)
    assert.truthy(log:find("did not complete within stop_timeout %(500 ms%)"), log)
    assert.truthy(log:find("STOP:called", 1, true), log)
    assert.truthy(log:find("STOPPED with error 1460"), log)
  end)

  it("interrupts a run that keeps sleeping after ctx:sleep returned false", function()
    local p, rc = stop_within("ignore_stop_sleep.lua", "ignore_stop_sleep", 0.5 + 1)
    assert.is_true(rc ~= 0)
    assert.truthy(H.log(p):find("STOP:called", 1, true))
  end)

  it("interrupts a control handler that ignores a stop", function()
    local p = H.start { scripts = { F .. "hog_handler.lua" } }
    H.wait_state(p, "hog_handler", "RUNNING")
    assert.equal(0, (H.client(p, "control", "hog_handler", "200")))
    H.wait_log(p, "CTL:200 spinning")
    H.kill(p, "TERM")
    assert.is_true(H.wait_exit(p, 10) ~= 0)
    assert.is_true(H.log_interval(p, "hog_handler", "STOP_PENDING", "STOPPED") < 1.5)
    assert.truthy(H.log(p):find("STOP:called", 1, true))
  end)

  it("a pause handler past its deadline is interrupted and the service goes back to RUNNING", function()
    local p = H.start { scripts = { F .. "pause_hog.lua" } }
    H.wait_state(p, "pause_hog", "RUNNING")
    assert.equal(0, (H.client(p, "pause", "pause_hog")))
    assert.equal("PAUSE_PENDING", H.status(p, "pause_hog").state)
    H.wait_log(p, "pause did not finish within 400 ms: interrupted")
    H.wait_state(p, "pause_hog", "RUNNING")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("a C call that never returns ends in STOPPED with an error; the host exits once the others stop", function()
    local d = H.tmpdir()
    local fifo = d .. "/fifo"
    assert.equal(0, (H.sh("mkfifo " .. H.q(fifo))))
    local p = H.start { scripts = { F .. "stuck_c.lua", F .. "sibling.lua" }, args = { fifo } }
    H.wait_log(p, "RUN:opening fifo")
    H.wait_state(p, "sibling", "RUNNING")
    assert.equal(0, (H.client(p, "stop", "stuck_c")))
    local st = H.wait_state(p, "stuck_c", "STOPPED", 5)
    assert.equal(1067, st.win32_exit_code)
    assert.truthy(H.log(p):find("stuck in a C call past its stop deadline"))
    -- the sibling runs on; the host waits for it
    assert.equal("RUNNING", H.status(p, "sibling").state)
    assert.is_true(H.alive(p))
    local rc, out = H.client(p, "stop", "stuck_c")
    assert.equal(1, rc)
    assert.truthy(out:find("1062"), out)
    assert.equal(0, (H.client(p, "stop", "sibling")))
    assert.equal(1, H.wait_exit(p))
    assert.truthy(H.log(p):find("STOP:sibling", 1, true))
  end)
end)

describe("several services in one host", function()
  after_each(H.cleanup)

  it("each runs on its own; one failing does not stop the other; exit status reports it", function()
    local p = H.start { scripts = { F .. "run_error.lua", F .. "basic.lua" } }
    H.wait_state(p, "basic", "RUNNING")
    local st = H.wait_state(p, "run_error", "STOPPED")
    assert.equal(1066, st.win32_exit_code)
    assert.equal(1, st.service_exit_code)
    assert.equal(0, (H.client(p, "control", "basic", "202")))
    H.wait_log(p, "CTL:202")
    local all = H.status_all(p)
    assert.equal(2, #all)
    H.kill(p, "TERM")
    assert.equal(1, H.wait_exit(p))
  end)

  it("all stop on one SIGTERM and the host exits 0", function()
    local p = H.start { scripts = { F .. "basic.lua", F .. "sibling.lua" } }
    H.wait_state(p, "basic", "RUNNING")
    H.wait_state(p, "sibling", "RUNNING")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    assert.truthy(H.log(p):find("STOP:sibling"))
    assert.truthy(H.log(p):find("STOP:called"))
  end)
end)
