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

  -- examples/container: the manifest's probes get what the image's
  -- entrypoint serves (its --metrics port, GET /healthz), and that answers
  -- 200 once the service runs
  it("the manifest's probes get the path and port the image's entrypoint serves", function()
    local json = require "dkjson"
    local docker = H.read("examples/container/Dockerfile")
    local yaml = H.read("examples/container/heartbeat.yaml")
    local entry = json.decode(docker:match("\nENTRYPOINT (%b[])"))
    assert.equal("luasvc", entry[1])
    assert.equal("run", entry[2])
    local addr
    for i, a in ipairs(entry) do if a == "--metrics" then addr = entry[i + 1] end end
    assert.truthy(addr, "no --metrics in the ENTRYPOINT")
    local port = addr:match("^0%.0%.0%.0:(%d+)$")
    assert.truthy(port, "--metrics " .. addr .. " must listen on every interface for the kubelet")
    assert.truthy(docker:find("\nEXPOSE " .. port .. "\n", 1, true), "EXPOSE " .. port)
    assert.truthy(yaml:find("containerPort: " .. port .. "\n", 1, true), "containerPort " .. port)
    assert.truthy(yaml:find("name: metrics\n +containerPort: " .. port .. "\n"), "the port named metrics")
    local probes = 0
    for kind in yaml:gmatch("\n      (%a+Probe):") do
      local body = yaml:match("\n      " .. kind .. ":\n(.-)\n      %a") or yaml:match("\n      " .. kind .. ":\n(.*)$")
      assert.truthy(body:find("httpGet:\n +path: /healthz\n +port: metrics\n"), kind .. ":\n" .. body)
      probes = probes + 1
    end
    assert.is_true(probes >= 3, "startup, liveness and readiness probes")
    -- the entrypoint's command, on a free loopback port, with the example
    -- the image copies to /srv/service.lua
    assert.truthy(docker:find("COPY examples/heartbeat.lua /srv/service.lua", 1, true))
    local options = {}
    for i = 3, #entry - 1 do options[#options + 1] = entry[i] == addr and "127.0.0.1:0" or entry[i] end
    assert.equal("/srv/service.lua", entry[#entry])
    local p = H.start { options = options, scripts = { "examples/heartbeat.lua" } }
    H.wait_log(p, "metrics: listening on 127%.0%.0%.1:%d+")
    local got = tonumber(H.log(p):match("metrics: listening on 127%.0%.0%.1:(%d+)"))
    H.wait_state(p, "heartbeat", "RUNNING")
    local rc, out = H.sh(string.format("curl -s -m 5 -w '\\n%%{http_code}' http://127.0.0.1:%d/healthz", got))
    assert.equal(0, rc, out)
    assert.truthy(out:find("\nheartbeat: RUNNING\n\n200$"), out)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p, 10))
  end)
end)
