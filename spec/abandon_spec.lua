-- abandon_spec.lua - a service stuck in a C call past its start deadline
-- is given up (DESIGN §2: reported STOPPED with error 1067, its thread
-- abandoned): its process tree is ended (SIGTERM, then SIGKILL), and the
-- host goes on without it: it exits once no other service runs, and a
-- sibling starts, runs, and stops at SIGTERM. A top level stuck in C is
-- the case that hung `luasvc run`: the host's start barrier waited for a
-- load the given-up worker never ended. The first load's deadline is the
-- start's (30 s), so the top-level cases take half a minute each.
local system = require "system"

local START_DEADLINE = 30 -- s: the first load's deadline (LSVC_START_WAIT_HINT_MS)
local GIVEN_UP = 4 -- s after a deadline, at most: the watchdog's second, the tree's 0.5 s grace, a busy machine
local PT = require("spec.support.ptree")(800)
local alive, with_token, token, cgroup_dirs, cleanup = PT.alive, PT.with_token, PT.token, PT.cgroup_dirs, PT.cleanup
-- The host's exit after its last STOPPED.
local EXIT_WITHIN = PT.exit_within(2)

local function start(opts)
  local p = H.start(opts)
  PT.host(p.pid)
  return p
end

-- A top level stuck in os.execute: a shell that ignores SIGTERM (as its
-- sleep does, by inheritance), so that only the SIGKILL after the grace
-- ends them.
local function stuck_top(t)
  return (H.script(string.format([[
os.execute("trap '' TERM; sleep %s; true")
return { run = function(ctx) while ctx:sleep(100) do end end }
]], t), "stuck_top.lua"))
end

local SIBLING = [[
return {
  name = "sib",
  run = function(ctx) while ctx:sleep(50) do end end,
  stop = function(ctx) ctx:log("info", "STOP:sib") end,
}
]]

local function wait_children(t, n)
  return H.wait_for(function()
    local l = with_token(t)
    return #l >= n and l
  end, 5, n .. " processes of sleep " .. t)
end

local function assert_gone(pids, what)
  H.wait_for(function()
    for _, pid in ipairs(pids) do if alive(pid) then return false end end
    return true
  end, 3, what .. " to be ended (pids " .. table.concat(pids, " ") .. ")")
end

describe("a service stuck in a C call", function()
  after_each(cleanup)

  it("at its top level: STOPPED 1067 after the start deadline, its tree ended, the host exits 1", function()
    local t = token()
    local p = start { scripts = { stuck_top(t) } }
    local pids = wait_children(t, 2) -- the shell, its sleep
    H.wait_log(p, "stuck_top: STOPPED with error 1067", START_DEADLINE + GIVEN_UP + 10)
    local t0 = system.monotime()
    assert.equal(1, H.wait_exit(p, EXIT_WITHIN + 3))
    assert.is_true(system.monotime() - t0 < EXIT_WITHIN, "the host exited " .. EXIT_WITHIN .. " s or more after STOPPED")
    local log = H.log(p)
    assert.truthy(log:find("stuck_top: stuck in a C call past its start deadline", 1, true), log)
    local took = H.log_interval(p, "stuck_top", "START_PENDING", "STOPPED with error 1067")
    assert.is_true(took >= START_DEADLINE and took < START_DEADLINE + GIVEN_UP, "STOPPED after " .. took .. " s")
    assert.truthy(log:find("stuck_top: its thread given up: 2 processes of its tree ended (2 killed", 1, true), log)
    assert_gone(pids, "the shell and its sleep")
    assert.same({}, cgroup_dirs(p.pid))
  end)

  it("at its top level, beside a sibling: the sibling runs; SIGTERM stops it and the host exits", function()
    local t = token()
    local p = start { scripts = { stuck_top(t), (H.script(SIBLING, "sib.lua")) } }
    local pids = wait_children(t, 2)
    -- its gate opens once the stuck load is given up, not before
    H.wait_state(p, "sib", "RUNNING", START_DEADLINE + GIVEN_UP + 10)
    local st = H.status(p, "stuck_top")
    assert.equal("STOPPED", st.state)
    assert.equal(1067, st.win32_exit_code)
    assert_gone(pids, "the stuck service's shell and sleep")
    assert.is_true(H.alive(p))
    assert.equal("RUNNING", H.status(p, "sib").state)
    H.kill(p, "TERM")
    assert.equal(1, H.wait_exit(p, 10))
    local log = H.log(p)
    assert.truthy(log:find("STOP:sib", 1, true), log)
    assert.truthy(log:find("sib: STOPPED\n", 1, true), log)
    assert.falsy(log:find("sib: stuck", 1, true), log)
    assert.same({}, cgroup_dirs(p.pid))
  end)

  for _, mode in ipairs { "default", "subreaper" } do
    it("in start (" .. mode .. " process tree): STOPPED 1067, its child ended, the host exits 1", function()
      local t = token()
      local script = H.script(string.format([[
return {
  start = function(ctx) ctx:progress(300) os.execute("sleep %s") end,
  run = function(ctx) while ctx:sleep(100) do end end,
}
]], t), "stuck_start.lua")
      local p = start { scripts = { script }, env = mode == "subreaper" and "LUASVC_PTREE=subreaper" or "" }
      local pids = wait_children(t, 1)
      H.wait_log(p, "stuck_start: STOPPED with error 1067", 10)
      local t0 = system.monotime()
      assert.equal(1, H.wait_exit(p, EXIT_WITHIN + 3))
      assert.is_true(system.monotime() - t0 < EXIT_WITHIN, "the host exited " .. EXIT_WITHIN .. " s or more after STOPPED")
      local log = H.log(p)
      assert.truthy(log:find("stuck_start: stuck in a C call past its start deadline", 1, true), log)
      assert.falsy(log:find("error 1460", 1, true), log) -- the worker's own end, once its call returned
      assert_gone(pids, "the sleep")
      assert.same({}, cgroup_dirs(p.pid))
    end)
  end
end)
