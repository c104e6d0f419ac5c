-- ptree_spec.lua - nothing outlives the service: every process a service
-- starts, however deep or detached, ends with its stop, and only that
-- service's (a sibling's child lives on). Each way out of a service of
-- issue 19, under a cgroup per service (root, a cgroup v1 freezer or pids
-- hierarchy: pending elsewhere) and under the fallback (process groups,
-- the host as child subreaper: LUASVC_PTREE=subreaper).
local system = require "system"

local F = H.fixtures

local PT = require("spec.support.ptree")(900)
local alive, with_token, token, cgroup_dirs, cleanup = PT.alive, PT.with_token, PT.token, PT.cgroup_dirs, PT.cleanup
-- The host's exit after its last STOPPED: within 0.5 s.
local EXIT_WITHIN = PT.exit_within(0.5)

-- zombies whose parent is pid
local function zombies_of(pid)
  local _, out = H.sh("ps -eo ppid=,stat=,pid=")
  local n = 0
  for ppid, stat in out:gmatch("%s*(%d+)%s+(%S+)%s+%d+") do
    if tonumber(ppid) == pid and stat:sub(1, 1) == "Z" then n = n + 1 end
  end
  return n
end

local function can_cgroup()
  local _, id = H.sh("id -u")
  if tonumber(id) ~= 0 then return false end
  for _, h in ipairs { "freezer", "pids" } do
    if os.execute("test -w /sys/fs/cgroup/" .. h .. "/tasks") then return true end
  end
  return false
end

-- what each case leaves running: how many processes carry its token
local cases = {
  { "spawn_bg", 3, "uv.spawn of sh with two sleeps in the background" },
  { "popen", 2, "io.popen left open" },
  { "execute_bg", 1, "os.execute of a sleep in the background" },
  { "setsid", 2, "a daemon's setsid and double fork" },
  { "term_ignored", 2, "sh with SIGTERM ignored (inherited by its sleep)" },
  { "closed_handle", 1, "a uv.spawn child whose handle the script closed" },
}

local function start(mode, case)
  local d = H.tmpdir()
  local t, sib, pidfile = token(), token(), d .. "/sibling.pid"
  local p = H.start {
    scripts = { F .. "ptree_case.lua", F .. "ptree_sibling.lua" },
    args = { case, t, sib, pidfile },
    env = mode == "subreaper" and "LUASVC_PTREE=subreaper" or "",
  }
  PT.host(p.pid)
  H.wait_state(p, "ptree_case", "RUNNING")
  local spid = tonumber(H.wait_for(function() return H.read(pidfile) end, 5, "the sibling's child"))
  PT.track(spid)
  return p, t, spid
end

for _, mode in ipairs { "cgroup", "subreaper" } do
  describe("a service's process tree (" .. mode .. ")", function()
    after_each(cleanup)

    local function check_mode(p)
      if mode ~= "cgroup" then return true end
      if not can_cgroup() then
        pending("needs root and a writable cgroup v1 freezer or pids hierarchy")
        return false
      end
      assert.is_true(#cgroup_dirs(p.pid) > 0, "no cgroup made for host " .. p.pid)
      return true
    end

    for _, c in ipairs(cases) do
      local case, count, what = c[1], c[2], c[3]
      it("ends " .. what .. " at its stop; the sibling's child lives on", function()
        if mode == "cgroup" and not can_cgroup() then
          return pending("needs root and a writable cgroup v1 freezer or pids hierarchy")
        end
        local p, t, spid = start(mode, case)
        assert.is_true(check_mode(p))
        local pids = H.wait_for(function()
          local l = with_token(t)
          return #l >= count and l
        end, 5, count .. " processes of " .. case)
        H.wait_for(function()
          local st = H.status(p, "ptree_case")
          return st and st.children >= count
        end, 5, "the children gauge to count " .. count .. "; log:\n" .. H.log(p))
        H.client(p, "stop", "ptree_case")
        H.wait_state(p, "ptree_case", "STOPPED", 5)
        for _, pid in ipairs(pids) do
          assert.is_false(alive(pid), case .. ": pid " .. pid .. " outlived its service (or was not reaped)")
        end
        assert.equal(0, #with_token(t))
        assert.equal(0, H.status(p, "ptree_case").children)
        assert.is_true(H.log_interval(p, "ptree_case", "STOP_PENDING", "STOPPED") < 1.5)
        assert.is_true(alive(spid), "the sibling's child was ended with ptree_case")
        H.kill(p, "TERM")
        H.wait_log(p, "ptree_sibling: STOPPED")
        local t0 = system.monotime()
        assert.equal(0, H.wait_exit(p))
        assert.is_true(system.monotime() - t0 < EXIT_WITHIN, "the host exited " .. EXIT_WITHIN .. " s or more after STOPPED")
        assert.is_false(alive(spid), "the sibling's child outlived the host")
        assert.same({}, cgroup_dirs(p.pid))
      end)
    end

    for _, case in ipairs { "popen", "term_ignored", "setsid" } do
      it("ends " .. case .. " at the host's stop, and the host exits within 0.5 s", function()
        if mode == "cgroup" and not can_cgroup() then
          return pending("needs root and a writable cgroup v1 freezer or pids hierarchy")
        end
        local p, t, spid = start(mode, case)
        local pids = H.wait_for(function()
          local l = with_token(t)
          return #l >= 1 and l
        end, 5, "the processes of " .. case)
        H.kill(p, "TERM")
        H.wait_for(function()
          local log = H.log(p)
          return log:find("ptree_case: STOPPED", 1, true) and log:find("ptree_sibling: STOPPED", 1, true)
        end, 5, "both STOPPED")
        local t0 = system.monotime()
        assert.equal(0, H.wait_exit(p))
        assert.is_true(system.monotime() - t0 < EXIT_WITHIN, "the host exited " .. EXIT_WITHIN .. " s or more after STOPPED")
        assert.is_true(H.log_interval(p, "ptree_case", "STOP_PENDING", "STOPPED") < 1.5)
        assert.falsy(H.log(p):find("abandoned", 1, true), H.log(p))
        for _, pid in ipairs(pids) do assert.is_false(alive(pid)) end
        assert.is_false(alive(spid))
        assert.same({}, cgroup_dirs(p.pid))
      end)
    end

    it("refuses a script's uv.kill of a sibling's child", function()
      if mode == "cgroup" and not can_cgroup() then
        return pending("needs root and a writable cgroup v1 freezer or pids hierarchy")
      end
      local p, t, spid = start(mode, "kill_sibling")
      H.wait_log(p, "KILL:")
      assert.truthy(H.log(p):find("KILL:false:[^\n]*another service's"), H.log(p))
      assert.is_true(alive(spid))
      local pids = with_token(t)
      assert.equal(1, #pids)
      H.kill(p, "TERM")
      assert.equal(0, H.wait_exit(p))
      assert.is_false(alive(pids[1]))
      assert.is_false(alive(spid))
    end)

    it("reaps 1,000 short children: no zombie, no descriptor left", function()
      if mode == "cgroup" and not can_cgroup() then
        return pending("needs root and a writable cgroup v1 freezer or pids hierarchy")
      end
      local p = H.start {
        scripts = { F .. "ptree_many.lua" },
        env = mode == "subreaper" and "LUASVC_PTREE=subreaper" or "",
      }
      PT.host(p.pid)
      H.wait_log(p, "CHILDREN:", 120)
      local before, after = H.log(p):match("FDS:(%d+):(%d+)")
      -- none left behind (one the runtime had open at the first count, as a
      -- file being read, may be gone by the second)
      assert.is_true(tonumber(after) <= tonumber(before), "descriptors before " .. before .. ", after " .. after ..
        "\n" .. H.log(p))
      assert.equal(0, zombies_of(p.pid))
      H.wait_for(function()
        local st = H.status(p, "ptree_many")
        return st and st.children == 0
      end, 3, "the children gauge to come back to 0")
      H.kill(p, "TERM")
      assert.equal(0, H.wait_exit(p))
    end)
  end)
end

describe("ctx:exec", function()
  after_each(cleanup)

  it("runs a command and waits: lines, exit code and signal, a timeout that ends the tree, bad input", function()
    local t, t2 = token(), token()
    local p = H.start { scripts = { F .. "ptree_exec.lua" }, args = { t, t2 } }
    PT.host(p.pid)
    H.wait_log(p, "EXEC:done", 20)
    local log = H.log(p)
    assert.truthy(log:find("sh: out1\n", 1, true), log)
    assert.truthy(log:find("warning +ptree_exec: sh: err1\n"), log)
    assert.truthy(log:find("sh: tail\n", 1, true), log)
    assert.truthy(log:find("EXIT3:code=3:signal=0:timed_out=false:stopped=false", 1, true), log)
    assert.truthy(log:find("GOT:stderr=b,stdout=a", 1, true), log)
    assert.truthy(log:find("CAPTURE:in|:e|", 1, true), log)
    assert.truthy(log:find("TIMEOUT:code=nil:signal=9:timed_out=true", 1, true), log)
    local took = tonumber(log:match("TOOK:([%d.]+)"))
    assert.is_true(took >= 0.2 and took < 2, "the timeout took " .. took)
    assert.equal(0, #with_token(t), "the timed-out command's tree outlived it")
    assert.truthy(log:find("SIGNAL:code=nil:signal=10", 1, true), log)
    assert.truthy(log:find("MISSING:nil:ctx:exec: cannot start /nonexistent/program: ENOENT", 1, true), log)
    -- opts.cwd and opts.env; the service's own LUASVC_SERVICE wins
    assert.truthy(log:find("ENV:/:bar:ptree_exec\n", 1, true), log)
    assert.truthy(log:find("NOCWD:nil:ctx:exec: cannot start true: ENOENT", 1, true), log)
    local bad = H.tagged(p, "BAD")
    assert.equal(7, #bad)
    for _, b in ipairs(bad) do assert.truthy(b:find("^false:ctx:exec: "), b) end
    assert.truthy(bad[3]:find("argv[2] is a number", 1, true), bad[3])
    assert.truthy(bad[5]:find("unknown option 'bogus'", 1, true), bad[5])
    assert.truthy(bad[7]:find("opts.env[2] is a number, not a string", 1, true), bad[7])
    -- a stop ends a command waited for in a task, with its tree
    local pids = H.wait_for(function()
      local l = with_token(t2)
      return #l > 0 and l
    end, 5, "the task's command")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    for _, pid in ipairs(pids) do assert.is_false(alive(pid)) end
  end)
end)
