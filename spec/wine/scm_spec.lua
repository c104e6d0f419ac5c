--[[
scm_spec.lua - luasvc.exe as a real service of Wine's service control
manager: installed, started with arguments, driven with controls and
stopped through the SCM (luasvc's own client: OpenSCManagerW,
ControlService, QueryServiceStatusEx), for the fixture scripts the Linux
specs use. Run by scripts/wine-test, which prepares the Wine prefix and
sets LUASVC_EXE.

What Wine cannot show (see the README): a handler's return value is
ignored, so an unhandled user code is accepted here; shutdown and
preshutdown are never delivered; failure actions and delayed auto-start
are not stored; QueryServiceConfigW returns no dependencies (they are in
the registry); the event log is a stub that prints events on the debug
channel "eventlog" (wine-test keeps that channel in wine-debug.log).
]]
local system = require "system"
local json = require "dkjson"
local W = require "spec.wine.helper"
local TMP, FIX = W.TMP, W.FIX
local q, read, luasvc, status, eventually = W.q, W.read, W.luasvc, W.status, W.eventually

local installed = {}
local logs = 0

-- install(script, options...) -> log file path; uninstalled after each test
local function install(script, name, ...)
  logs = logs + 1
  local log = TMP .. "/svc" .. logs .. ".log"
  local out, rc = luasvc("install", FIX .. script, "--log-file", log, ...)
  assert.are.equal(0, rc, out)
  installed[#installed + 1] = name
  return log
end

local function log_has(log, text)
  return eventually(function() return read(log):find(text, 1, true) end, 5000,
    "'" .. text .. "' in the service's log:\n" .. read(log))
end

after_each(function()
  for i = #installed, 1, -1 do
    local out, rc = luasvc("uninstall", installed[i])
    assert.are.equal(0, rc, out)
    installed[i] = nil
  end
end)

describe("a service under the SCM", function()
  it("starts with arguments, takes controls, pauses, continues and stops with exit code 0", function()
    local log = install("basic.lua", "basic", "--description", "the basic fixture")
    local out, rc = luasvc("start", "basic", "one", "two words", "grüße")
    assert.are.equal(0, rc, out)
    assert.matches("basic: RUNNING %(pid %d+%)", out)
    log_has(log, "ARGS:one|two words|grüße")
    local st = status("basic")
    assert.are.equal("RUNNING", st.state)
    assert.are.same({ "stop", "pause_continue", "shutdown", "paramchange" }, st.controls_accepted)

    out, rc = luasvc("control", "basic", "200")
    assert.are.equal(0, rc, out)
    log_has(log, "CTL:200")

    out, rc = luasvc("pause", "basic")
    assert.are.equal(0, rc, out)
    assert.matches("basic: PAUSED", out)
    log_has(log, "CTL:pause")
    assert.are.equal("PAUSED", status("basic").state)
    out, rc = luasvc("continue", "basic")
    assert.are.equal(0, rc, out)
    log_has(log, "CTL:continue")
    assert.are.equal("RUNNING", status("basic").state)

    out, rc = luasvc("reload", "basic")
    assert.are.equal(0, rc, out)
    log_has(log, "CTL:paramchange")

    out, rc = luasvc("stop", "basic")
    assert.are.equal(0, rc, out)
    assert.matches("basic: STOPPED\n", out)
    log_has(log, "STOP:called")
    st = status("basic")
    assert.are.equal("STOPPED", st.state)
    assert.are.equal(0, st.win32_exit_code)
    assert.are.equal(0, st.service_exit_code)
  end)

  it("refuses a control the script does not accept with 1052", function()
    install("slow_start.lua", "slow_start")
    local out, rc = luasvc("start", "slow_start", "1", "10")
    assert.are.equal(0, rc, out)
    out, rc = luasvc("pause", "slow_start")
    assert.are.equal(1, rc, out)
    assert.matches("error 1052", out)
    assert.are.equal("RUNNING", status("slow_start").state)
    out, rc = luasvc("control", "slow_start", "16")
    assert.are.equal(1, rc, out)
    assert.matches("error 87", out) -- codes 16-127 are not controls: the SCM says 87
  end)

  it("shows checkpoints moving during a slow start", function()
    install("slow_start.lua", "slow_start")
    local out, rc = luasvc("start", "slow_start", "4", "300")
    assert.are.equal(0, rc, out)
    local seen = {}
    for cp in out:gmatch("START_PENDING checkpoint (%d+)") do seen[#seen + 1] = tonumber(cp) end
    assert.is_true(#seen >= 3, out)
    for i = 2, #seen do assert.is_true(seen[i] > seen[i - 1], out) end
    assert.matches("wait hint 3000 ms", out)
  end)

  it("reports a start failure as STOPPED with 1066 and the script's code", function()
    local log = install("start_error.lua", "start_error")
    local out, rc = luasvc("start", "start_error")
    assert.are.equal(1, rc, out)
    assert.matches("STOPPED with service%-specific exit code 1\n", out)
    log_has(log, "attempt to index a nil value")
    local st = status("start_error")
    assert.are.equal(1066, st.win32_exit_code)
    assert.are.equal(1, st.service_exit_code)

    out, rc = luasvc("start", "start_error", "7")
    assert.are.equal(1, rc, out)
    assert.matches("service%-specific exit code 7\n", out)
  end)

  it("stops a run that ignores stop within stop_timeout, never stuck in STOP_PENDING", function()
    local log = install("ignore_stop.lua", "ignore_stop")
    local out, rc = luasvc("start", "ignore_stop")
    assert.are.equal(0, rc, out)
    log_has(log, "RUN:spinning")
    local t0 = system.monotime()
    out = luasvc("stop", "ignore_stop")
    local took = system.monotime() - t0
    assert.matches("STOPPED with error 1460", out)
    assert.is_true(took < 5, "took " .. took .. " s")
    log_has(log, "STOP:called")
  end)

  it("rotates its --log-file under a burst, losing and splitting no line", function()
    local log = TMP .. "/burst.log"
    local out, rc = luasvc("install", FIX .. "log_burst.lua", "--log-file", log,
      "--log-max-size", "8k", "--log-keep", "100")
    assert.are.equal(0, rc, out)
    installed[#installed + 1] = "log_burst"
    out, rc = luasvc("start", "log_burst", "1500")
    eventually(function() return status("log_burst").state == "STOPPED" end, 20000,
      "the burst to end; start said: " .. out)
    eventually(function() return read(log):find("STOPPED", 1, true) end, 5000, "STOPPED logged")
    local files, k = {}, 1
    while read(log .. "." .. k) ~= "" do k = k + 1 end
    for i = k - 1, 1, -1 do files[#files + 1] = log .. "." .. i end
    files[#files + 1] = log
    assert.is_true(#files > 5, #files .. " files")
    local seen, count = {}, 0
    for _, f in ipairs(files) do
      local text = read(f)
      assert.is_true(#text <= 8192, f .. ": " .. #text .. " bytes")
      assert.are.equal("\n", text:sub(-1), f .. " ends inside a line")
      for n, fill in text:gmatch("log_burst: BURST:log_burst:(%d+):([^\n]*)\n") do
        n = tonumber(n)
        if fill ~= "second" then
          assert.are.equal(string.rep("x", n % 97), fill, "line " .. n .. " cut")
          assert.is_nil(seen[n], "line " .. n .. " twice")
          seen[n] = true
          count = count + 1
        end
      end
    end
    assert.are.equal(1500, count)
  end)

  it("runs two scripts sharing one process, and stops both", function()
    local out, rc = luasvc("install", FIX .. "basic.lua", FIX .. "sibling.lua")
    assert.are.equal(0, rc, out)
    assert.matches("sharing one process", out)
    installed[#installed + 1] = "basic"
    installed[#installed + 1] = "sibling"
    for _, name in ipairs({ "basic", "sibling" }) do
      out, rc = luasvc("start", name)
      assert.are.equal(0, rc, out)
    end
    for _, name in ipairs({ "basic", "sibling" }) do
      out, rc = luasvc("stop", name)
      assert.are.equal(0, rc, out)
      assert.are.equal("STOPPED", status(name).state)
    end
  end)
end)

-- The key's values as `reg query` prints them, or nil when there is no
-- such key. Any other failure of `reg` (seen once under load) is retried
-- for a while, then raised: it must never pass for "no key".
local function reg_query(key)
  local out = TMP .. "/reg.txt"
  local deadline, text = os.time() + 20, ""
  repeat
    local ok = os.execute("wine reg query " .. q(key) .. " >" .. q(out) .. " 2>&1")
    text = (read(out) or ""):gsub("\r\n", "\n")
    if ok then return text end
    if text:find("Unable to find the specified registry key", 1, true) then return nil end
  until os.time() > deadline
  error("wine reg query " .. key .. " failed: " .. text)
end

local SERVICES = [[HKLM\System\CurrentControlSet\Services\]]
local EVENTLOG = [[HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\]]

describe("luasvc install and uninstall", function()
  it("set the configuration the SCM reads back (status --json's config)", function()
    local out
    install("basic.lua", "basic", "--description", "Grüße, a description",
      "--start", "delayed-auto", "--preshutdown-timeout", "12345",
      "--restart-on-failure", "1500", "--depend", "RpcSs", "--depend", "Other Service")
    local cfg = status("basic").config
    assert.are.equal("auto", cfg.start)
    assert.are.equal("own_process", cfg.type)
    assert.are.equal("LocalSystem", cfg.account)
    assert.are.equal("Grüße, a description", cfg.description)
    assert.are.equal(12345, cfg.preshutdown_timeout)
    -- Wine stores the dependencies (DependOnService) but its
    -- QueryServiceConfigW returns none: read them where it keeps them.
    out = assert(reg_query(SERVICES .. "basic"))
    assert.matches("DependOnService%s+REG_MULTI_SZ%s+RpcSs\\0Other Service\n", out)
    -- Real Windows stores delayed auto-start and the failure actions with
    -- their non-crash flag; Wine answers set with TRUE or 124 and stores
    -- nothing. Where Wine does answer, the values must be the ones set.
    if cfg.delayed_auto_start ~= nil then assert.is_true(cfg.delayed_auto_start) end
    if cfg.failure_actions ~= nil then
      assert.are.same({ reset_period = 86400, actions = {
        { type = "restart", delay = 1500 }, { type = "restart", delay = 1500 },
        { type = "restart", delay = 1500 } } }, cfg.failure_actions)
    end
    if cfg.failure_actions_on_non_crash ~= nil then
      assert.is_true(cfg.failure_actions_on_non_crash)
    end
    -- a shared process
    out = luasvc("uninstall", "basic")
    installed[#installed] = nil
    local rc
    out, rc = luasvc("install", FIX .. "basic.lua", FIX .. "sibling.lua", "--start", "disabled")
    assert.are.equal(0, rc, out)
    installed[#installed + 1] = "basic"
    installed[#installed + 1] = "sibling"
    for _, name in ipairs({ "basic", "sibling" }) do
      cfg = status(name).config
      assert.are.equal("share_process", cfg.type)
      assert.are.equal("disabled", cfg.start)
      assert.are.same({}, cfg.dependencies)
    end
  end)

  it("refuse bad arguments and broken scripts clearly, installing nothing", function()
    local out, rc = luasvc("install", FIX .. "basic.lua", "--start", "sometimes")
    assert.are.equal(2, rc, out)
    assert.matches("auto, delayed%-auto, demand or disabled", out)
    out, rc = luasvc("install", FIX .. "bad/syntax.lua")
    assert.are.equal(1, rc, out)
    assert.matches("nothing installed", out)
    out, rc = luasvc("install", FIX .. "basic.lua", "--frobnicate", "x")
    assert.are.equal(2, rc, out)
    assert.matches("unknown option '%-%-frobnicate'", out)
    for _, case in ipairs({
      { { "--preshutdown-timeout", "soon" }, "%-%-preshutdown%-timeout: a number of ms above 0" },
      { { "--preshutdown-timeout", "0" }, "%-%-preshutdown%-timeout: a number of ms above 0" },
      { { "--restart-on-failure", "-5" }, "%-%-restart%-on%-failure: a number of ms" },
      { { "--password", "secret" }, "%-%-password needs %-%-account" },
      { { "--name", [[a\b]] }, "%-%-name: 1%-80 characters, no '/', '\\' or control characters" },
      { { "--depend", "" }, "%-%-depend: bad or too many names" },
      { { "--description" }, "%-%-description needs a value" },
      { { FIX .. "sibling.lua", "--name", "both" }, "need a single script" },
    }) do
      out, rc = luasvc("install", FIX .. "basic.lua", table.unpack(case[1]))
      assert.are.equal(2, rc, out)
      assert.matches(case[2], out)
    end
    out, rc = luasvc("install")
    assert.are.equal(2, rc, out)
    assert.matches("no script given\nusage: luasvc install SCRIPT", out)
    out, rc = luasvc("install", FIX .. "no such file.lua")
    assert.are.equal(1, rc, out)
    assert.matches("nothing installed", out)
    for _, name in ipairs({ "basic", "sibling", "both", "no such file" }) do
      out, rc = luasvc("status", name)
      assert.are.equal(1, rc, out)
      assert.matches("error 1060", out)
      assert.is_nil(reg_query(EVENTLOG .. name))
    end
  end)

  it("refuses a second install of a name with the SCM's error, keeping the first", function()
    install("basic.lua", "basic")
    local out, rc = luasvc("install", FIX .. "basic.lua")
    assert.are.equal(1, rc, out)
    assert.matches("creating service 'basic': error 1073", out)
    assert.are.equal("STOPPED", status("basic").state)
    assert.is_string(reg_query(EVENTLOG .. "basic"))
  end)

  it("uninstall stops the service first and leaves nothing behind", function()
    install("basic.lua", "custom name", "--name", "custom name", "--display-name", "A custom name")
    local out, rc = luasvc("start", "custom name")
    assert.are.equal(0, rc, out)
    assert.are.equal("A custom name", status("custom name").display_name)
    out, rc = luasvc("uninstall", "custom name")
    assert.are.equal(0, rc, out)
    assert.matches("custom name: STOPPED", out)
    installed[#installed] = nil
    out, rc = luasvc("status", "custom name")
    assert.are.equal(1, rc, out)
    assert.matches("error 1060", out)
    assert.is_nil(reg_query(SERVICES .. "custom name"))
    assert.is_nil(reg_query(EVENTLOG .. "custom name"))
  end)
end)

describe("the event log", function()
  local KEY = EVENTLOG

  it("install registers the service's event source and uninstall removes it", function()
    install("basic.lua", "basic")
    local out = assert(reg_query(KEY .. "basic"), "no event source key")
    assert.matches("EventMessageFile%s+REG_EXPAND_SZ%s+[^\n]*luasvc%.exe", out)
    assert.matches("TypesSupported%s+REG_DWORD%s+0x7", out)
    local rc
    out, rc = luasvc("uninstall", "basic")
    assert.are.equal(0, rc, out)
    installed[#installed] = nil
    assert.is_nil(reg_query(KEY .. "basic"))
  end)

  it("gets a start failure and the lifecycle (Wine prints events on its eventlog channel)", function()
    local debug_log = TMP .. "/wine-debug.log"
    install("start_error.lua", "start_error")
    local out, rc = luasvc("start", "start_error", "5")
    assert.are.equal(1, rc, out)
    assert.matches("STOPPED with service%-specific exit code 5", out)
    eventually(function()
      return read(debug_log):find("start_error: STOPPED with service-specific exit code 5", 1, true)
    end, 5000, "the STOPPED event in " .. debug_log .. ":\n" .. read(debug_log))
    assert.matches("start_error: error in start", read(debug_log))
    install("basic.lua", "basic")
    out, rc = luasvc("start", "basic")
    assert.are.equal(0, rc, out)
    out, rc = luasvc("stop", "basic")
    assert.are.equal(0, rc, out)
    eventually(function() return read(debug_log):find("basic: STOPPED", 1, true) end, 5000,
      "the lifecycle in " .. debug_log .. ":\n" .. read(debug_log))
  end)

  it("gets a script that no longer loads: STOPPED with 1066 and code 2, never a bare 1053", function()
    local debug_log = TMP .. "/wine-debug.log"
    local script = TMP .. "/loadfail.lua"
    local f = assert(io.open(script, "w"))
    f:write('return { name = "loadfail", run = function(ctx) end }\n')
    f:close()
    local out, rc = luasvc("install", script)
    assert.are.equal(0, rc, out)
    installed[#installed + 1] = "loadfail"
    f = assert(io.open(script, "w"))
    f:write("return {\n")
    f:close()
    out, rc = luasvc("start", "loadfail")
    assert.are.equal(1, rc, out)
    assert.matches("STOPPED with service%-specific exit code 2\n", out)
    eventually(function()
      return read(debug_log):find("loadfail: STOPPED with service-specific exit code 2", 1, true)
    end, 5000, "the STOPPED event in " .. debug_log .. ":\n" .. read(debug_log))
  end)
end)

describe("--wait and --timeout", function()
  it("give up at --timeout with the state the service is in, and wait again when asked", function()
    install("slow_controls.lua", "slow_controls")
    -- the options before the start argument (15: each control takes 1.5 s)
    local out, rc = luasvc("start", "slow_controls", "--wait", "--timeout", "20", "15")
    assert.are.equal(0, rc, out)
    assert.matches("slow_controls: RUNNING", out)
    out, rc = luasvc("pause", "slow_controls", "--wait", "--timeout", "0.3")
    assert.are.equal(1, rc, out)
    assert.matches("slow_controls: still PAUSE_PENDING after 0%.3 s", out)
    -- on its way already: waited for, not refused with 1061
    out, rc = luasvc("pause", "slow_controls", "--wait", "--timeout", "20")
    assert.are.equal(0, rc, out)
    assert.matches("slow_controls: PAUSED", out)
    assert.are.equal("PAUSED", status("slow_controls").state)
    out, rc = luasvc("continue", "slow_controls", "--wait")
    assert.are.equal(0, rc, out)
    assert.are.equal("RUNNING", status("slow_controls").state)
    out, rc = luasvc("stop", "slow_controls", "--timeout", "0.3")
    assert.are.equal(1, rc, out)
    assert.matches("slow_controls: still STOP_PENDING after 0%.3 s %(checkpoint %d+, wait hint 500 ms%)", out)
    out, rc = luasvc("stop", "slow_controls", "--wait", "--timeout", "20")
    assert.are.equal(0, rc, out)
    assert.matches("slow_controls: STOPPED", out)
    assert.are.equal("STOPPED", status("slow_controls").state)
    out, rc = luasvc("stop", "slow_controls", "--timeout", "soon")
    assert.are.equal(2, rc, out)
    assert.matches("--timeout 'soon': a number of seconds", out, 1, true)
  end)
end)
