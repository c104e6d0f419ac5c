-- systemd_spec.lua - luasvc under a real systemd (Type=notify), end to end:
-- install, start, status text, user controls, pause/continue, reload,
-- hot reload, slow and hung starts, the watchdog, a script that leaks
-- every descriptor, the service's process tree ended by luasvc itself
-- (KillMode=process), exit codes, stop and uninstall. Runs inside
-- scripts/systemd-harness (a throw-away user manager in private
-- namespaces), which ctest starts; run alone it skips.
local system = require "system"

local in_harness = os.getenv("SYSTEMD_HARNESS_DIR") ~= nil

local SD = require "spec.support.systemd"
local lsvc, sctl, show = SD.lsvc, SD.sctl, SD.show

local function wait_prop(unit, prop, want, timeout, log)
  return H.wait_for(function() return show(unit, prop) == want end, timeout or 5,
    unit .. " " .. prop .. "=" .. want .. " (it is " .. show(unit, prop) .. ")" ..
    (log and ("; service log:\n" .. (H.read(log) or "")) or ""))
end

-- The unit stays active with the same main process for SECONDS (a
-- watchdog that missed its pings would have ended it): it checks that
-- nothing happens, so it watches the whole time.
local function stays_active(unit, pid, seconds)
  local t_end = system.monotime() + seconds
  while system.monotime() < t_end do
    assert.are.equal("active", show(unit, "ActiveState"))
    system.sleep(0.1)
  end
  assert.are.equal(pid, show(unit, "MainPID"))
end

local unit_dir, install, uninstall, script = SD.unit_dir, SD.install, SD.uninstall, SD.script

local MAIN = [[
function S.start(ctx) ctx:log("info", "START") end
function S.run(ctx)
  ctx:status("serving")
  while ctx:sleep(20) do end
  ctx:log("info", "RUN:returned")
end
function S.pause(ctx) ctx:log("info", "CTL:pause") end
function S.continue(ctx) ctx:log("info", "CTL:continue") end
function S.paramchange(ctx)
  ctx:log("info", "CTL:paramchange")
  ctx:sleep(600)   -- long enough to see the unit in "reloading"
  ctx:log("info", "CTL:paramchange done")
end
S.controls = { [200] = function(ctx, code) ctx:log("info", "CTL:%d", code) end }
function S.stop(ctx) ctx:log("info", "STOP:called") end
]]

describe("under systemd", function()
  if not in_harness then
    pending("runs only inside scripts/systemd-harness (ctest's systemd test)")
    return
  end

  after_each(SD.cleanup)

  it("installs, starts, takes controls, reloads, stops and uninstalls", function()
    local name = "lsvcspec-main"
    local path, log = install(name, script(name, MAIN))
    local unit = H.read(unit_dir .. "/" .. name .. ".service")
    assert.matches("Type=notify", unit, 1, true)
    assert.matches("NotifyAccess=main", unit, 1, true)
    assert.matches('ExecStart="' .. H.bin .. '" "run" "' .. path .. '"', unit, 1, true)
    assert.matches("ExecReload=/bin/kill -HUP $MAINPID", unit, 1, true)
    assert.matches("TimeoutStopSec=6000ms", unit, 1, true)
    assert.matches("RuntimeDirectory=luasvc", unit, 1, true)
    assert.matches("Description=luasvc systemd spec: " .. name, unit, 1, true)
    assert.is_nil(unit:find("WatchdogSec", 1, true))
    assert.is_nil(unit:find("Restart=", 1, true))

    local rc, out = lsvc("start", name)
    assert.are.equal(0, rc, out)
    -- Type=notify: start returns once READY=1 came
    assert.are.equal("active", show(name, "ActiveState"))
    assert.are.equal("running", show(name, "SubState"))
    wait_prop(name, "StatusText", "RUNNING: serving", 5, log)
    local pid = show(name, "MainPID")
    assert.is_truthy(tonumber(pid) and tonumber(pid) > 0)

    -- a user control reaches Lua, through the endpoint in the unit's
    -- RuntimeDirectory, found by the default lookup
    rc, out = lsvc("status", name)
    assert.are.equal(0, rc, out)
    assert.matches("RUNNING .*%(serving%)", out)
    rc, out = lsvc("control", name, "200")
    assert.are.equal(0, rc, out)
    H.wait_for(function() return (H.read(log) or ""):find("CTL:200", 1, true) end, 5, "CTL:200")

    rc, out = lsvc("pause", name)
    assert.are.equal(0, rc, out)
    wait_prop(name, "StatusText", "PAUSED: serving", 5, log) -- the script's text stays
    rc, out = lsvc("status", name)
    assert.are.equal(0, rc, out)
    assert.matches("PAUSED .*%(serving%)", out)
    assert.matches("pid " .. pid, out, 1, true)
    rc, out = lsvc("continue", name)
    assert.are.equal(0, rc, out)
    wait_prop(name, "StatusText", "RUNNING: serving", 5, log)

    -- reload: ExecReload sends SIGHUP (PARAMCHANGE); RELOADING=1 ... READY=1.
    -- systemctl reload blocks only if RELOADING=1 beats kill's exit: poll.
    rc, out = sctl("reload", "--no-block", H.q(name .. ".service"))
    assert.are.equal(0, rc, out)
    wait_prop(name, "ActiveState", "reloading", 5, log)
    H.wait_for(function() return (H.read(log) or ""):find("CTL:paramchange done", 1, true) end, 5,
      "the paramchange handler to finish")
    wait_prop(name, "ActiveState", "active", 5, log)
    assert.are.equal("running", show(name, "SubState"))
    assert.are.equal(pid, show(name, "MainPID"))
    -- and luasvc reload NAME goes through systemctl too
    rc, out = lsvc("reload", name)
    assert.are.equal(0, rc, out)
    H.wait_for(function() return H.count({ err = log }, "CTL:paramchange done") == 2 end, 5,
      "the second paramchange")
    wait_prop(name, "ActiveState", "active", 5, log)

    rc, out = lsvc("stop", name)
    assert.are.equal(0, rc, out)
    assert.are.equal("inactive", show(name, "ActiveState"))
    assert.are.equal("success", show(name, "Result"))
    assert.are.equal("0", show(name, "ExecMainStatus"))
    local l = H.read(log)
    assert.matches("RUN:returned", l, 1, true)
    assert.matches("STOP:called", l, 1, true)
    rc, out = lsvc("status", name)
    assert.are_not.equal(0, rc)

    rc, out = uninstall(name)
    assert.are.equal(0, rc, out)
    assert.is_nil(H.read(unit_dir .. "/" .. name .. ".service"))
    assert.are.equal("not-found", show(name, "LoadState"))
    assert.is_nil(H.read((os.getenv("XDG_RUNTIME_DIR")) .. "/luasvc/" .. name .. ".sock"))
  end)

  it("waits with --wait for PAUSED, RUNNING and the stop, and gives up at --timeout", function()
    local name = "lsvcspec-wait"
    local _, log = install(name, script(name, [[
function S.run(ctx) ctx:status("serving") while ctx:sleep(20) do end end
function S.pause(ctx) ctx:sleep(400) end
function S.continue(ctx) ctx:sleep(400) end
function S.stop(ctx) for i = 1, 15 do ctx:progress(1000, "drain " .. i) ctx:sleep(100) end end
]]))
    local rc, out = lsvc("start", name, "--wait", "--timeout", "20")
    assert.are.equal(0, rc, out)
    assert.are.equal("active", show(name, "ActiveState"))
    rc, out = lsvc("pause", name, "--wait")
    assert.are.equal(0, rc, out)
    assert.matches(name .. ": PAUSED", out, 1, true)
    assert.are.equal("PAUSED: serving", show(name, "StatusText"))
    rc, out = lsvc("continue", name, "--wait", "--timeout", "5")
    assert.are.equal(0, rc, out)
    assert.are.equal("RUNNING: serving", show(name, "StatusText"))
    -- the stop takes 1.5 s: a 0.3 s wait gives up, saying where the unit is
    rc, out = lsvc("stop", name, "--wait", "--timeout", "0.3")
    assert.are.equal(1, rc, out)
    assert.truthy(out:find(name .. ".service is still deactivating/stop-sigterm after 0.3 s", 1, true), out)
    assert.are.equal("deactivating", show(name, "ActiveState"))
    assert.matches("^STOP_PENDING %(checkpoint %d+, wait hint 1000 ms%): drain %d+$",
      show(name, "StatusText"))
    -- and a second stop waits for the same one
    rc, out = lsvc("stop", name, "--wait", "--timeout", "10")
    assert.are.equal(0, rc, out .. (H.read(log) or ""))
    assert.are.equal("inactive", show(name, "ActiveState"))
    assert.are.equal("success", show(name, "Result"))
  end)

  it("takes up an edited script while the unit stays active (hot reload)", function()
    local name = "lsvcspec-hot"
    local function version(v)
      return script(name, "function S.run(ctx)\n  ctx:log('info', 'VERSION:" .. v .. "')\n" ..
        "  while ctx:sleep(20) do end\nend")
    end
    local path, log = install(name, version(1))
    local rc, out = lsvc("start", name)
    assert.are.equal(0, rc, out)
    H.wait_for(function() return (H.read(log) or ""):find("VERSION:1", 1, true) end, 5, "VERSION:1")
    local pid = show(name, "MainPID")
    H.write(path .. ".tmp", version(2))
    assert(os.rename(path .. ".tmp", path))
    H.wait_for(function() return (H.read(log) or ""):find("VERSION:2", 1, true) end, 5,
      "the edited script's run; log:\n" .. (H.read(log) or ""))
    wait_prop(name, "ActiveState", "active", 5, log)
    assert.are.equal(pid, show(name, "MainPID"))
    assert.are.equal("0", show(name, "NRestarts"))
    wait_prop(name, "StatusText", "RUNNING", 5, log)
    rc, out = lsvc("status", name, "--json")
    assert.are.equal(0, rc, out)
    assert.matches('"reloads":1', out, 1, true)
    assert.are.equal(0, (lsvc("stop", name)))
  end)

  it("keeps a slow start that shows progress alive past TimeoutStartSec", function()
    local name = "lsvcspec-slow"
    -- 8 steps of 400 ms: 3.2 s against TimeoutStartSec=2, each with progress
    local _, log = install(name, script(name, [[
function S.start(ctx)
  for i = 1, 8 do
    ctx:progress(1500, "step " .. i .. " of 8")
    ctx:log("info", "STEP:%d", i)
    ctx:sleep(400)
  end
end
function S.run(ctx) while ctx:sleep(20) do end end]]), "TimeoutStartSec=2\n")
    local t0 = system.monotime()
    local rc, out = sctl("start", "--no-block", H.q(name .. ".service"))
    assert.are.equal(0, rc, out)
    wait_prop(name, "SubState", "start", 5, log)
    H.wait_for(function() return (H.read(log) or ""):find("STEP:2", 1, true) end, 5, "STEP:2")
    assert.matches("^START_PENDING %(checkpoint %d+, wait hint 1500 ms%): step %d of 8$",
      show(name, "StatusText"))
    wait_prop(name, "ActiveState", "active", 10, log)
    assert.is_true(system.monotime() - t0 > 2.5, "the start was not slower than TimeoutStartSec")
    assert.matches("STEP:8", H.read(log), 1, true)
    assert.are.equal(0, (lsvc("stop", name)))
  end)

  it("lets TimeoutStartSec end a start that shows no progress", function()
    local name = "lsvcspec-hung"
    -- no progress: luasvc's own first deadline is 30 s, systemd's is 2 s
    local _, log = install(name, script(name, [[
function S.start(ctx) while true do end end
function S.run(ctx) end]]), "TimeoutStartSec=2\n")
    local rc, out = sctl("start", "--no-block", H.q(name .. ".service"))
    assert.are.equal(0, rc, out)
    wait_prop(name, "Result", "timeout", 15, log)
    wait_prop(name, "ActiveState", "failed", 10, log)
  end)

  it("ends a start whose progress stops with luasvc's own deadline (error 1460)", function()
    local name = "lsvcspec-stalled"
    local _, log = install(name, script(name, [[
function S.start(ctx)
  ctx:progress(300)
  while true do end
end
function S.run(ctx) end]]), "TimeoutStartSec=20\n")
    local rc = lsvc("start", name)
    assert.are_not.equal(0, rc)
    wait_prop(name, "Result", "exit-code", 5, log)
    assert.are.equal("1", show(name, "ExecMainStatus"))
    assert.matches("STOPPED with error 1460", show(name, "StatusText"))
  end)

  it("pings the watchdog while the worker is responsive, and stops when Lua hangs", function()
    local name = "lsvcspec-wd"
    local _, log = install(name, script(name, [[
function S.run(ctx) while ctx:sleep(50) do end end
S.controls = { [200] = function(ctx) ctx:log("info", "HANG"); while true do end end }]],
      "watchdog = 1000"))
    assert.matches("WatchdogSec=1000ms", H.read(unit_dir .. "/" .. name .. ".service"), 1, true)
    local rc, out = lsvc("start", name)
    assert.are.equal(0, rc, out)
    local pid = show(name, "MainPID")
    -- alive for 2.5 watchdog periods: the pings arrive
    stays_active(name, pid, 2.5)
    rc, out = lsvc("control", name, "200")
    assert.are.equal(0, rc, out)
    wait_prop(name, "Result", "watchdog", 10, log)
  end)

  it("takes controls, pings the watchdog and stops when the script leaks every descriptor", function()
    local name = "lsvcspec-leak"
    local _, log = install(name, script(name, [[
local kept = {}
function S.run(ctx)
  while true do
    local f, err = io.open("/dev/null")
    if not f then ctx:log("info", "LEAKED %d: %s", #kept, err); break end
    kept[#kept + 1] = f
  end
  while ctx:sleep(50) do end
end
S.controls = { [200] = function(ctx, code) ctx:log("info", "CTL:%d", code) end }]],
      "watchdog = 1000"), "LimitNOFILE=256\n")
    local rc, out = lsvc("start", name)
    assert.are.equal(0, rc, out)
    local pid = show(name, "MainPID")
    H.wait_for(function() return (H.read(log) or ""):find("LEAKED %d+: [^\n]*Too many open files") end, 5,
      "the script to run out of descriptors")
    for _ = 1, 3 do
      rc, out = lsvc("control", name, "200")
      assert.are.equal(0, rc, out .. (H.read(log) or ""))
    end
    H.wait_for(function() return select(2, (H.read(log) or ""):gsub("CTL:200", "")) == 3 end, 5, "3 controls")
    rc, out = lsvc("status", name)
    assert.are.equal(0, rc, out)
    assert.matches("RUNNING", out)
    -- 2.5 watchdog periods out of descriptors: the pings still arrive
    stays_active(name, pid, 2.5)
    rc, out = lsvc("stop", name)
    assert.are.equal(0, rc, out)
    assert.are.equal("success", show(name, "Result"))
  end)

  it("ends a failing start with the service's exit code", function()
    local name = "lsvcspec-fail"
    local _, log = install(name, script(name, [[
function S.start(ctx)
  ctx:exit(7)
  error("start fails")
end
function S.run(ctx) end]]))
    local rc = lsvc("start", name)
    assert.are_not.equal(0, rc)
    wait_prop(name, "Result", "exit-code", 5, log)
    assert.are.equal("7", show(name, "ExecMainStatus"))
    assert.matches("STOPPED with service%-specific exit code 7", show(name, "StatusText"))
    assert.matches("start fails", H.read(log))
  end)

  it("refuses bad install arguments, naming them", function()
    local rc, out = lsvc("install", "/nonexistent/x.lua", "--systemd", "--user")
    assert.are.equal(2, rc)
    assert.matches("SCRIPT '/nonexistent/x.lua'", out, 1, true)
    local d = H.tmpdir()
    H.write(d .. "/ok.lua", script("ok", "function S.run(ctx) end"))
    rc, out = lsvc("install", d .. "/ok.lua", "--systemd", "--user", "--name", "bad name")
    assert.are.equal(2, rc)
    assert.matches("--name 'bad name'", out, 1, true)
    rc, out = lsvc("install", d .. "/ok.lua", "--user")
    assert.are.equal(2, rc)
    assert.matches("--systemd", out, 1, true)
    rc, out = lsvc("install", d .. "/ok.lua", "--systemd", "--user", "--name")
    assert.are.equal(2, rc)
    assert.matches("--name needs a value", out, 1, true)
    H.write(d .. "/bad.lua", "return { run = function() end, watchdog = 5 }\n")
    rc, out = lsvc("install", d .. "/bad.lua", "--systemd", "--user")
    assert.are.equal(2, rc)
    assert.matches("bad.lua:1: watchdog must be", out, 1, true)
    rc, out = lsvc("uninstall", "lsvcspec-none", "--systemd", "--user", "--unit-dir")
    assert.are.equal(2, rc)
    assert.matches("--unit-dir needs a value", out, 1, true)
    rc, out = lsvc("uninstall", "lsvcspec-none", "--systemd", "--user")
    assert.are.equal(1, rc)
    assert.matches("no unit .*lsvcspec%-none%.service", out)
    rc, out = lsvc("start", "lsvcspec-none")
    assert.are.equal(1, rc)
    assert.matches("no systemd unit 'lsvcspec-none'", out, 1, true)
    -- nothing was written
    local _, ls = H.sh("ls " .. H.q(unit_dir))
    assert.are.equal("", ls)
  end)

  it("stops a service run by hand when its unit is installed but inactive", function()
    local name = "lsvcspec-byhand"
    local path = install(name, script(name, "function S.run(ctx) while ctx:sleep(20) do end end"))
    local p = H.start { scripts = { path }, rt = os.getenv("XDG_RUNTIME_DIR") .. "/luasvc" }
    H.wait_state(p, name, "RUNNING")
    assert.are.equal("inactive", show(name, "ActiveState"))
    local rc, out = lsvc("stop", name)
    assert.are.equal(0, rc, out)
    assert.are.equal(0, H.wait_exit(p))
  end)

  it("ends the service's whole tree at its stop, even with KillMode=process, and counts it", function()
    local name = "lsvcspec-tree"
    local d = H.tmpdir()
    local token = string.format("7%d.%03d", math.random(10, 99), math.random(0, 999))
    local _, log = install(name, script(name, [[
local uv = require "luv"
function S.run(ctx)
  uv.spawn("sh", { args = { "-c", "setsid sh -c 'sleep ]] .. token .. [[' & trap '' TERM; sleep ]] .. token .. [[" } },
    function() end)
  os.execute("sleep ]] .. token .. [[ &")
  while ctx:sleep(20) do end
end]]), "KillMode=process\n") -- systemd ends the main process only: the rest is luasvc's to end
    local rc, out = lsvc("start", name)
    assert.are.equal(0, rc, out)
    local function strays()
      local _, ps = H.sh("ps -eo pid=,args=")
      local list = {}
      for pid, args in ps:gmatch("%s*(%d+) ([^\n]*)") do
        if args:find("sleep " .. token, 1, true) then list[#list + 1] = pid end
      end
      return list
    end
    local pids = H.wait_for(function() local l = strays(); return #l >= 4 and l end, 5,
      "the service's four processes; log:\n" .. (H.read(log) or ""))
    H.wait_for(function()
      local st, json = lsvc("status", name, "--json")
      local n = st == 0 and tonumber(json:match('"children":(%d+)'))
      return n and n >= 4
    end, 5, "the children gauge")
    rc, out = sctl("stop", H.q(name .. ".service"))
    assert.are.equal(0, rc, out)
    assert.are.equal("inactive", show(name, "ActiveState"))
    for _, pid in ipairs(pids) do
      assert.is_false(os.execute("kill -0 " .. pid .. " 2>/dev/null") == true,
        "pid " .. pid .. " outlived the service; log:\n" .. (H.read(log) or ""))
    end
    assert.are.same({}, strays())
    assert.truthy((H.read(log) or ""):find(name .. ": STOPPED", 1, true), H.read(log))
    for _, pid in ipairs(strays()) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
  end)

  it("writes --name, --description and --restart-on-failure into the unit", function()
    local name = "lsvcspec-opts"
    -- a path systemd would read otherwise: spaces, specifiers, variables, quotes
    local d = H.tmpdir() .. "/a dir %h $HOME \"q\" \\x"
    H.sh("mkdir -m 700 " .. H.q(d))
    H.write(d .. "/x.lua", script("inner", "function S.run(ctx) while ctx:sleep(20) do end end"))
    local rc, out = lsvc("install", d .. "/x.lua", "--systemd", "--user", "--name", name,
      "--description", "100% \"quoted\"", "--restart-on-failure")
    assert.are.equal(0, rc, out)
    SD.installed[#SD.installed + 1] = name
    local unit = H.read(unit_dir .. "/" .. name .. ".service")
    assert.matches("Restart=on-failure", unit, 1, true)
    assert.matches("# luasvc-service: inner", unit, 1, true)
    assert.are.equal('100% "quoted"', show(name, "Description"))
    rc, out = lsvc("start", name)
    assert.are.equal(0, rc, out)
    local _, argv = H.sh("tr '\\0' '\\n' < /proc/" .. show(name, "MainPID") .. "/cmdline")
    assert.are.equal(H.bin .. "\nrun\n" .. d .. "/x.lua\n", argv)
    -- the unit's name reaches the service's endpoint (named by the script)
    rc, out = lsvc("status", name)
    assert.are.equal(0, rc, out)
    assert.matches("RUNNING", out)
    rc, out = uninstall(name)
    assert.are.equal(0, rc, out)
    assert.are.equal("not-found", show(name, "LoadState"))
  end)
end)
