-- container_spec.lua - `luasvc run` as a container's entrypoint: PID 1 of
-- its own PID namespace (unshare --pid --fork --mount-proc). It reaps the
-- orphans the namespace hands it, SIGTERM sent to it from outside is a
-- stop, and its exit status is the service's.
local H = require "spec.helper"

-- Every process below pid (host-side pids, from /proc/*/stat), with its
-- command name and state.
local function descendants(pid)
  local procs = {}
  local _, ls = H.sh("ls /proc")
  for d in ls:gmatch("%d+") do
    local stat = H.read("/proc/" .. d .. "/stat")
    -- "pid (comm) state ppid ...": comm may hold spaces and parentheses
    local comm, state, ppid
    if stat then comm, state, ppid = stat:match("^%d+ %((.*)%) (%a) (%d+)") end
    if ppid then procs[#procs + 1] = { pid = tonumber(d), comm = comm, state = state, ppid = tonumber(ppid) } end
  end
  local out, set = {}, { [pid] = true }
  local grew = true
  while grew do
    grew = false
    for _, p in ipairs(procs) do
      if set[p.ppid] and not set[p.pid] then
        set[p.pid], grew = true, true
        out[#out + 1] = p
      end
    end
  end
  return out
end

local function children(pid)
  local out = {}
  for _, p in ipairs(descendants(pid)) do
    if p.ppid == pid then out[#out + 1] = p end
  end
  return out
end

local usable = H.sh("unshare --pid --fork --mount-proc true") == 0

local function start(args)
  return H.start({ prefix = "unshare --pid --fork --kill-child --mount-proc", scripts = { H.fixtures .. "orphans.lua" },
    args = args })
end

-- PID 1 of the namespace: the unshare process's only child.
local function pid1(p)
  return H.wait_for(function()
    local c = children(p.pid)
    return #c == 1 and c[1].pid
  end, 5, "PID 1 of the namespace")
end

describe("as a container's PID 1", function()
  after_each(H.cleanup)

  local it_ns = usable and it or pending

  it_ns("reaps the orphans it is handed, and SIGTERM from outside is a stop", function()
    local p = start()
    H.wait_log(p, "orphan made")
    local init = pid1(p)
    -- the orphan (a sleep of 0.3 s) is handed to PID 1 and, once it has
    -- exited, reaped: no sleep, alive or a zombie, is left in the namespace
    H.wait_for(function()
      for _, d in ipairs(descendants(p.pid)) do
        if d.comm == "sleep" or d.state == "Z" then return false end
      end
      return true
    end, 5, "the orphan to be reaped")
    os.execute("kill -TERM " .. init)
    assert.equal(0, H.wait_exit(p, 10))
    assert.truthy(H.log(p):find("orphans: STOPPED", 1, true))
  end)

  it_ns("exits with the service's exit status", function()
    local p = start({ "exit", "3" })
    assert.equal(3, H.wait_exit(p, 10))
    assert.truthy(H.log(p):find("orphan made", 1, true))
  end)
end)
