--[[
ptree.lua - what the process-tree specs (ptree_spec, abandon_spec) share:
tokens a test's processes carry (`sleep TOKEN`) and finding them, the hosts'
cgroups, and a cleanup that ends whatever a failed test left. A
constructor: require("spec.support.ptree")(base) gives one spec its own
state and its own tokens (base keeps two specs that run at once apart).
]]
return function(base)
  local P = { tracked = {}, hosts = {}, issued = {} }
  local seq = 0

  -- The host's exit within secs after its last STOPPED; ThreadSanitizer
  -- sleeps atexit_sleep_ms (1000 by default) in every process's exit.
  function P.exit_within(secs)
    local tsan = os.getenv("TSAN_OPTIONS")
    if tsan then secs = secs + (tonumber(tsan:match("atexit_sleep_ms=(%d+)")) or 1000) / 1000 end
    return secs
  end

  function P.alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end

  function P.track(pid) P.tracked[#P.tracked + 1] = pid end
  function P.host(pid) P.hosts[#P.hosts + 1] = pid end

  function P.token()
    seq = seq + 1
    P.issued[#P.issued + 1] = string.format("%d.%d%03d", base + seq, math.random(100, 999), seq)
    return P.issued[#P.issued]
  end

  -- pids of the processes whose command line holds `sleep TOKEN`
  function P.with_token(token)
    local _, out = H.sh("ps -eo pid=,args=")
    local list = {}
    for pid, args in out:gmatch("%s*(%d+) ([^\n]*)") do
      if args:find("sleep " .. token, 1, true) then
        list[#list + 1] = tonumber(pid)
        P.track(tonumber(pid))
      end
    end
    return list
  end

  function P.cgroup_dirs(hostpid)
    local list = {}
    for _, h in ipairs { "freezer", "pids", "systemd" } do
      local _, out = H.sh("find /sys/fs/cgroup/" .. h .. " -maxdepth 3 -type d -name luasvc-" .. hostpid ..
        " 2>/dev/null")
      for d in out:gmatch("[^\n]+") do list[#list + 1] = d end
    end
    return list
  end

  -- Whatever a failed test left: its hosts (H.cleanup: SIGKILL, so no stop
  -- ended their trees), every process that carries one of its tokens, and
  -- its hosts' cgroups with what is still in them.
  function P.cleanup()
    H.cleanup()
    for _, t in ipairs(P.issued) do P.with_token(t) end
    P.issued = {}
    for _, pid in ipairs(P.tracked) do
      if P.alive(pid) then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    end
    P.tracked = {}
    for _, hp in ipairs(P.hosts) do
      for _, d in ipairs(P.cgroup_dirs(hp)) do
        os.execute("for f in " .. H.q(d) .. "/*/cgroup.procs; do [ -f \"$f\" ] && xargs -r kill -KILL < \"$f\"; done 2>/dev/null")
        H.wait_for(function()
          os.execute("rmdir " .. H.q(d) .. "/* " .. H.q(d) .. " 2>/dev/null")
          return #P.cgroup_dirs(hp) == 0
        end, 5, "the cgroups of host " .. hp .. " to be removed")
      end
    end
    P.hosts = {}
  end

  return P
end
