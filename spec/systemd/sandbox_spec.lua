-- sandbox_spec.lua - the units `luasvc install` writes are sandboxed
-- (README: Under systemd, The sandbox), and the examples run under that
-- sandbox: each installed example starts, takes a control and stops. Also
-- `--user-account` (User=, a runtime directory of the unit's own). Runs
-- inside scripts/systemd-harness, whose user manager runs as root and so
-- applies every setting as a system manager would; run alone it skips,
-- but for the argument checks, which need no manager.
local system = require "system"

local in_harness = os.getenv("SYSTEMD_HARNESS_DIR") ~= nil
local examples = (os.getenv("PWD") or ".") .. "/examples/"

local SD = require "spec.support.systemd"
local lsvc, sctl, show = SD.lsvc, SD.sctl, SD.show

local unit_dir = (os.getenv("XDG_CONFIG_HOME") or "") .. "/systemd/user"
local installed = {}

-- The settings of a user unit, and the four only a system unit gets (an
-- unprivileged user manager fails a unit with 218/CAPABILITIES on them).
local USER_SET = {
  "UMask=0077", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=read-only",
  "ProtectKernelTunables=yes", "ProtectControlGroups=yes", "ProtectHostname=yes",
  "RestrictSUIDSGID=yes", "RestrictRealtime=yes", "RestrictNamespaces=yes", "LockPersonality=yes",
  "MemoryDenyWriteExecute=yes", "SystemCallArchitectures=native",
  "SystemCallFilter=@system-service", "SystemCallErrorNumber=EPERM",
  "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
}
local SYSTEM_ONLY = { "PrivateDevices=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
  "ProtectClock=yes" }

local function has_line(text, line)
  return ("\n" .. text .. "\n"):find("\n" .. line .. "\n", 1, true) ~= nil
end

-- The test's drop-in: the service's stderr to a file (no journald here).
local function drop_in(unit, log)
  H.sh("mkdir -p " .. H.q(unit_dir .. "/" .. unit .. ".service.d"))
  H.write(unit_dir .. "/" .. unit .. ".service.d/spec.conf",
    "[Service]\nStandardOutput=append:" .. log .. "\nStandardError=append:" .. log ..
    "\nLimitCORE=0\n" .. H.sanitizer_unit_lines())
  local rc, out = sctl("daemon-reload")
  assert(rc == 0, out)
end

-- A checkout (so the binary and the examples) under /tmp or /var/tmp:
-- install leaves PrivateTmp= out, which would hide them.
local TMP_REPO = (H.bin:match("^/tmp/") or H.bin:match("^/var/tmp/")) and true or false

local function proc_status(pid, key)
  return (H.read("/proc/" .. pid .. "/status") or ""):match("\n" .. key .. ":%s*([^\n]*)")
end

-- The sandbox as the running service sees it: its own mount namespace,
-- / read-only, a private /tmp, no new privileges, a seccomp filter.
local function assert_sandboxed(pid)
  assert.are.equal("1", proc_status(pid, "NoNewPrivs"))
  assert.are.equal("2", proc_status(pid, "Seccomp"))
  local _, mine = H.sh("readlink /proc/self/ns/mnt")
  local _, its = H.sh("readlink /proc/" .. pid .. "/ns/mnt")
  assert.are_not.equal(mine, its)
  local mounts = H.read("/proc/" .. pid .. "/mountinfo")
  local root_opts = mounts:match("%d+ %d+ %S+ %S+ / (%S+)")
  assert.matches("^ro", root_opts)
  if not TMP_REPO then assert.matches("systemd%-private%-[^\n]* /tmp ", mounts) end
end

local function cleanup()
  for _, u in ipairs(installed) do
    sctl("stop", H.q(u.name .. ".service"))
    os.remove(unit_dir .. "/" .. u.name .. ".service.d/spec.conf")
    os.remove(unit_dir .. "/" .. u.name .. ".service.d")
    if u.dir then
      lsvc("uninstall", u.name, "--systemd", "--unit-dir", u.dir)
      sctl("daemon-reload")
    else
      lsvc("uninstall", u.name, "--systemd", "--user")
    end
    sctl("reset-failed", H.q(u.name .. ".service"))
  end
  installed = {}
  H.cleanup()
end

describe("install's arguments for the sandbox", function()
  after_each(H.cleanup)

  it("refuses --user-account with --user, an unknown user and a bad name", function()
    local d = H.tmpdir()
    local script = d .. "/ok.lua"
    H.write(script, "return { name = 'ok', run = function(ctx) end }\n")
    local rc, out = lsvc("install", script, "--systemd", "--user", "--user-account", "root",
      "--unit-dir", d)
    assert.are.equal(2, rc, out)
    assert.matches("--user-account is for a system unit", out, 1, true)
    rc, out = lsvc("install", script, "--systemd", "--user-account", "lsvc-no-such-user",
      "--unit-dir", d)
    assert.are.equal(2, rc, out)
    assert.matches("--user-account 'lsvc-no-such-user': no such user", out, 1, true)
    rc, out = lsvc("install", script, "--systemd", "--user-account", "a b", "--unit-dir", d)
    assert.are.equal(2, rc, out)
    assert.matches("--user-account 'a b' is not a user name", out, 1, true)
    rc, out = lsvc("install", script, "--systemd", "--user-account")
    assert.are.equal(2, rc, out)
    assert.matches("--user-account needs a value", out, 1, true)
    assert.is_nil(H.read(d .. "/ok.service"))
  end)

  it("writes the whole set into a system unit, a user unit's into a user unit", function()
    local d = H.tmpdir()
    local rc, out = lsvc("install", examples .. "heartbeat.lua", "--systemd", "--unit-dir", d)
    assert.are.equal(0, rc, out)
    local unit = H.read(d .. "/heartbeat.service")
    for _, l in ipairs(USER_SET) do assert.is_true(has_line(unit, l), l .. " in\n" .. unit) end
    for _, l in ipairs(SYSTEM_ONLY) do assert.is_true(has_line(unit, l), l .. " in\n" .. unit) end
    assert.is_true(TMP_REPO or has_line(unit, "PrivateTmp=yes"), unit)
    assert.is_true(has_line(unit, "RuntimeDirectory=luasvc"), unit)
    assert.is_nil(unit:find("User=", 1, true))

    rc, out = lsvc("install", examples .. "heartbeat.lua", "--systemd", "--user", "--unit-dir", d)
    assert.are.equal(0, rc, out)
    unit = H.read(d .. "/heartbeat.service")
    for _, l in ipairs(USER_SET) do assert.is_true(has_line(unit, l), l .. " in\n" .. unit) end
    for _, l in ipairs(SYSTEM_ONLY) do assert.is_false(has_line(unit, l), l .. " in\n" .. unit) end

    -- a script under /tmp: PrivateTmp= would hide it
    local script = d .. "/tmpscript.lua"
    H.write(script, "return { name = 'tmpscript', run = function(ctx) end }\n")
    rc, out = lsvc("install", script, "--systemd", "--unit-dir", d)
    assert.are.equal(0, rc, out)
    assert.matches("no PrivateTmp= in the unit: the script is under /tmp", out, 1, true)
    unit = H.read(d .. "/tmpscript.service")
    assert.is_nil(unit:find("PrivateTmp=yes", 1, true))
    assert.is_true(has_line(unit, "ProtectSystem=strict"), unit)
  end)
end)

describe("the examples under the sandbox", function()
  if not in_harness then
    pending("runs only inside scripts/systemd-harness (ctest's systemd test)")
    return
  end

  after_each(cleanup)

  it("heartbeat starts, takes a user control and stops in its hardened user unit", function()
    local rc, out = lsvc("install", examples .. "heartbeat.lua", "--systemd", "--user")
    assert.are.equal(0, rc, out)
    installed[#installed + 1] = { name = "heartbeat" }
    local unit = H.read(unit_dir .. "/heartbeat.service")
    assert.is_true(has_line(unit, "ProtectSystem=strict"), unit)
    assert.is_true(TMP_REPO or has_line(unit, "PrivateTmp=yes"), unit)
    local log = H.tmpdir() .. "/service.log"
    drop_in("heartbeat", log)

    rc, out = lsvc("start", "heartbeat")
    assert.are.equal(0, rc, out .. (H.read(log) or ""))
    assert.are.equal("active", show("heartbeat", "ActiveState"))
    local pid = show("heartbeat", "MainPID")
    assert_sandboxed(pid)
    -- the endpoint in the runtime directory, writable inside the sandbox
    rc, out = lsvc("control", "heartbeat", "200")
    assert.are.equal(0, rc, out)
    H.wait_for(function() return (H.read(log) or ""):find("control 200:", 1, true) end, 5,
      "control 200 in the log")
    rc, out = lsvc("pause", "heartbeat")
    assert.are.equal(0, rc, out)
    rc, out = lsvc("continue", "heartbeat")
    assert.are.equal(0, rc, out)
    rc, out = lsvc("stop", "heartbeat")
    assert.are.equal(0, rc, out)
    assert.are.equal("success", show("heartbeat", "Result"))
    assert.are.equal("0", show("heartbeat", "ExecMainStatus"))
    assert.matches("stopped after %d+ beats", H.read(log))
  end)

  it("status_poster posts to its slots, pauses and stops in its hardened user unit", function()
    local rc, out = lsvc("install", examples .. "status_poster.lua", "--systemd", "--user")
    assert.are.equal(0, rc, out)
    installed[#installed + 1] = { name = "status_poster" }
    local log = H.tmpdir() .. "/service.log"
    drop_in("status_poster", log)
    -- a listener on its status slot: the service's posts reach it
    local listen = H.tmpdir() .. "/listen.out"
    local _, lpid = H.sh("(" .. H.q(H.bin) .. " listen monitor > " .. H.q(listen) ..
      " 2>&1 & echo $!)")
    lpid = lpid:gsub("%s+$", "")
    local ok, err = pcall(function()
      local slot = os.getenv("XDG_RUNTIME_DIR") .. "/luasvc/slots/monitor"
      H.wait_for(function() return H.sh("test -S " .. H.q(slot)) == 0 end, 5, "the monitor slot")
      rc, out = lsvc("start", "status_poster")
      assert.are.equal(0, rc, out .. (H.read(log) or ""))
      assert_sandboxed(show("status_poster", "MainPID"))
      H.wait_for(function() return (H.read(listen) or ""):find("RUNNING", 1, true) end, 5,
        "RUNNING on the monitor slot; got:\n" .. (H.read(listen) or ""))
      rc, out = lsvc("pause", "status_poster")
      assert.are.equal(0, rc, out)
      H.wait_for(function() return show("status_poster", "StatusText"):find("PAUSED", 1, true) end, 5,
        "PAUSED")
      rc, out = lsvc("continue", "status_poster")
      assert.are.equal(0, rc, out)
      rc, out = lsvc("stop", "status_poster")
      assert.are.equal(0, rc, out)
      assert.are.equal("success", show("status_poster", "Result"))
    end)
    H.sh("kill " .. lpid .. " 2>/dev/null; wait " .. lpid .. " 2>/dev/null")
    assert(ok, err)
  end)

  it("rotates an installed unit's --log-file in a directory the sandbox makes writable", function()
    -- /run/user/UID: read-only under ProtectHome=, but for ReadWritePaths=
    local dir = os.getenv("XDG_RUNTIME_DIR") .. "/lsvcspec-logs"
    H.sh("rm -rf " .. H.q(dir) .. " && mkdir " .. H.q(dir))
    local ok, err = pcall(function()
      local script = (os.getenv("PWD") or ".") .. "/spec/fixtures/log_ticker.lua"
      local rc, out = lsvc("install", script, "--systemd", "--user", "--log-file",
        dir .. "/ticker.log", "--log-max-size", "2k", "--log-keep", "3")
      assert.are.equal(0, rc, out)
      installed[#installed + 1] = { name = "ticker" }
      local unit = H.read(unit_dir .. "/ticker.service")
      assert.matches('"run" "--log-file" "' .. dir .. '/ticker.log" "--log-max-size" "2k" ' ..
        '"--log-keep" "3" "' .. script .. '"', unit, 1, true)
      assert.is_true(has_line(unit, 'ReadWritePaths=-"' .. dir .. '"'), unit)
      assert.is_true(TMP_REPO or has_line(unit, "PrivateTmp=yes"), unit)
      local log = H.tmpdir() .. "/stderr.log"
      drop_in("ticker", log)
      rc, out = lsvc("start", "ticker")
      assert.are.equal(0, rc, out .. (H.read(log) or ""))
      assert_sandboxed(show("ticker", "MainPID"))
      H.wait_for(function() return H.read(dir .. "/ticker.log.3") end, 10,
        "three rotations; stderr:\n" .. (H.read(log) or ""))
      rc, out = lsvc("reload", "ticker") -- SIGHUP: reopen, and PARAMCHANGE
      assert.are.equal(0, rc, out)
      H.wait_for(function()
        for _, f in ipairs({ "ticker.log", "ticker.log.1", "ticker.log.2" }) do
          if (H.read(dir .. "/" .. f) or ""):find("PARAMCHANGE", 1, true) then return true end
        end
      end, 5, "PARAMCHANGE in the log")
      rc, out = lsvc("stop", "ticker")
      assert.are.equal(0, rc, out)
      assert.are.equal("success", show("ticker", "Result"))
      assert.is_nil(H.read(dir .. "/ticker.log.4"))
      -- the kept files hold an unbroken run of ticks, each at most 2k
      local text = ""
      for _, f in ipairs({ "ticker.log.3", "ticker.log.2", "ticker.log.1", "ticker.log" }) do
        local t = H.read(dir .. "/" .. f)
        assert.is_true(#t <= 2048, f)
        text = text .. t
      end
      local prev
      for n in text:gmatch("TICK:(%d+)\n") do
        n = tonumber(n)
        if prev then assert.are.equal(prev + 1, n) end
        prev = n
      end
      assert.is_truthy(prev)
      assert.are.equal("", H.read(log) or "") -- stderr: nothing, it all went to the file
    end)
    H.sh("rm -rf " .. H.q(dir))
    assert(ok, err)
  end)

  it("a --user unit runs under an unprivileged user manager, which applies what it can", function()
    -- A real session's manager: the user's own, without privileges.
    -- (nobody: its uid is in every passwd; the examples are world-readable.)
    local _, uid = H.sh("id -u nobody")
    uid = uid:gsub("%s+$", "")
    if uid == "" or H.sh("command -v setpriv") ~= 0 then
      pending("needs the user nobody and setpriv (util-linux)")
      return
    end
    local cmd = [=[
B=$1; EX=$2   # $3: the sanitizer's drop-in lines, if any
U=$XDG_CONFIG_HOME/systemd/user
$B install "$EX" --systemd --user >/dev/null || exit 10
mkdir -p "$U/heartbeat.service.d"
printf '[Service]\nStandardError=append:%s/svc.log\n%b' "$HOME" "$3" > "$U/heartbeat.service.d/log.conf"
systemctl --user daemon-reload
systemctl --user start heartbeat || { cat "$HOME/svc.log"; exit 11; }
P=$(systemctl --user show -p MainPID --value heartbeat)
echo "nnp=$(awk '/^NoNewPrivs/{print $2}' /proc/$P/status)"
echo "seccomp=$(awk '/^Seccomp:/{print $2}' /proc/$P/status)"
[ "$(readlink /proc/$P/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] && echo "mntns=manager's"
$B control heartbeat 200 || exit 12
$B stop heartbeat || exit 13
echo "result=$(systemctl --user show -p Result --value heartbeat)"
grep -q "control 200:" "$HOME/svc.log" && echo "control=delivered"
# what the user unit leaves out: it would fail the unit
printf '[Service]\nPrivateDevices=yes\n' > "$U/heartbeat.service.d/system-only.conf"
systemctl --user daemon-reload
systemctl --user start heartbeat 2>/dev/null
echo "with PrivateDevices: $(systemctl --user show -p ExecMainStatus --value heartbeat)"
]=]
    local rc, out = H.sh("sh spec/support/unprivileged-manager.sh " .. uid .. " sh -c " ..
      H.q(cmd) .. " sh " .. H.q(H.bin) .. " " .. H.q(examples .. "heartbeat.lua") .. " " ..
      H.q(H.sanitizer_unit_lines()))
    assert.are.equal(0, rc, out)
    assert.matches("nnp=1\n", out, 1, true)
    assert.matches("seccomp=2\n", out, 1, true)
    assert.matches("mntns=manager's\n", out, 1, true) -- the file-system settings: skipped
    assert.matches("control=delivered\n", out, 1, true)
    assert.matches("result=success\n", out, 1, true)
    assert.matches("with PrivateDevices: 218\n", out, 1, true)
  end)

  it("--user-account runs the system unit as that user, its endpoint in its own directory",
    function()
      -- The system unit's text, run by the harness's manager (root's, so it
      -- can switch users). %t is $XDG_RUNTIME_DIR here, /run under the
      -- system manager: open it for the user to pass, as /run is, and the
      -- manager's notify socket to the user's READY=1, as the system
      -- manager's /run/systemd/notify is.
      local name = "lsvcspec-acct"
      local rt = os.getenv("XDG_RUNTIME_DIR")
      H.sh("chmod 711 " .. H.q(rt) .. " && chmod 777 " .. H.q(rt .. "/systemd/notify"))
      local ok, err = pcall(function()
        local rc, out = lsvc("install", examples .. "heartbeat.lua", "--systemd", "--user-account",
          "nobody", "--name", name, "--unit-dir", unit_dir)
        assert.are.equal(0, rc, out)
        installed[#installed + 1] = { name = name, dir = unit_dir }
        local unit = H.read(unit_dir .. "/" .. name .. ".service")
        assert.is_true(has_line(unit, "User=nobody"), unit)
        assert.is_true(has_line(unit, "RuntimeDirectory=luasvc-" .. name), unit)
        assert.is_true(has_line(unit, "# luasvc-runtime-dir: luasvc-" .. name), unit)
        for _, l in ipairs(SYSTEM_ONLY) do assert.is_true(has_line(unit, l), l) end
        local log = H.tmpdir() .. "/service.log"
        drop_in(name, log)

        rc, out = lsvc("start", name)
        assert.are.equal(0, rc, out .. (H.read(log) or ""))
        local pid = show(name, "MainPID")
        assert.matches("^65534%s", proc_status(pid, "Uid"))
        assert_sandboxed(pid)
        local _, owner = H.sh("stat -c %U:%a " .. H.q(rt .. "/luasvc-" .. name))
        assert.are.equal("nobody:700", (owner:gsub("%s+$", "")))
        -- the client finds the endpoint through the unit's marker
        rc, out = lsvc("status", name)
        assert.are.equal(0, rc, out)
        assert.matches("heartbeat%s+RUNNING", out)
        -- and lists it without a NAME, by the unit's name, once
        rc, out = lsvc("status")
        assert.are.equal(0, rc, out)
        local function count(text, s)
          local n, at = 0, 1
          while true do
            at = text:find(s, at, true)
            if not at then return n end
            n, at = n + 1, at + 1
          end
        end
        assert.are.equal(1, count(out, "  unit " .. name .. "\n"), out)
        assert.matches("heartbeat%s+RUNNING[^\n]*  unit ", out)
        rc, out = lsvc("status", "--json")
        assert.are.equal(0, rc, out)
        assert.are.equal(1, count(out, '{"unit":"' .. name .. '","name":"heartbeat"'), out)
        rc, out = lsvc("control", name, "200")
        assert.are.equal(0, rc, out)
        H.wait_for(function() return (H.read(log) or ""):find("control 200:", 1, true) end, 5,
          "control 200 in the log")
        rc, out = lsvc("stop", name)
        assert.are.equal(0, rc, out)
        assert.are.equal("success", show(name, "Result"))
      end)
      H.sh("chmod 700 " .. H.q(rt) .. " && chmod 755 " .. H.q(rt .. "/systemd/notify"))
      assert(ok, err)
    end)
end)

-- install's options (issue 23) under the harness's manager, which applies
-- a system unit's settings as a system manager would: each one changes
-- what the service may do, and the same script without them is refused.
describe("install's options under systemd", function()
  if not in_harness then
    pending("runs only inside scripts/systemd-harness (ctest's systemd test)")
    return
  end

  after_each(cleanup)

  local OPTS_SCRIPT = [[
local S = { name = "NAME", accepts = { "stop" } }
function S.run(ctx)
  local f = io.open("WDIR/written", "w")
  ctx:log("info", "WRITE:%s", f and "ok" or "refused")
  if f then f:write("x") f:close() end
  local ok = os.execute("/usr/bin/python3 -c 'import mmap; mmap.mmap(-1, 4096, prot=7)' 2>/dev/null")
  ctx:log("info", "JIT:%s", ok and "ok" or "refused")
  ctx:status("checked")
  while ctx:sleep(50) do end
end
return S
]]

  -- Install NAME (a system unit, in the manager's unit directory) from
  -- the script above with install_args; start it; what it found.
  local function run_opts(name, install_args)
    local d = H.tmpdir()
    H.sh("mkdir " .. H.q(d .. "/w"))
    local script = d .. "/" .. name .. ".lua"
    H.write(script, (OPTS_SCRIPT:gsub("NAME", name):gsub("WDIR", d .. "/w")))
    local args = { "install", script, "--systemd", "--unit-dir", unit_dir }
    for _, a in ipairs(install_args) do args[#args + 1] = (a:gsub("WDIR", d .. "/w")) end
    local rc, out = lsvc(table.unpack(args))
    assert.are.equal(0, rc, out)
    installed[#installed + 1] = { name = name, dir = unit_dir }
    local log = d .. "/service.log"
    drop_in(name, log)
    rc, out = lsvc("start", name, "--wait", "--timeout", "20")
    assert.are.equal(0, rc, out .. (H.read(log) or ""))
    H.wait_for(function() return show(name, "StatusText") == "RUNNING: checked" end, 10,
      "the checks; log:\n" .. (H.read(log) or ""))
    local pid = show(name, "MainPID")
    local found = { unit = H.read(unit_dir .. "/" .. name .. ".service"), pid = pid,
      capbnd = proc_status(pid, "CapBnd"), capamb = proc_status(pid, "CapAmb"),
      after = show(name, "After"), wants = show(name, "Wants") }
    for k, v in (H.read(log) or ""):gmatch("(%u+):(%a+)\n") do found[k] = v end
    rc, out = lsvc("stop", name, "--wait", "--timeout", "20")
    assert.are.equal(0, rc, out)
    assert.are.equal("success", show(name, "Result"))
    return found
  end

  it("--read-write, --allow-jit, --capability and --network do what they say", function()
    local have_python = H.sh("test -x /usr/bin/python3") == 0
    local without = run_opts("lsvcspec-noopts", {})
    assert.are.equal("refused", without.WRITE) -- ProtectSystem=strict
    if have_python then assert.are.equal("refused", without.JIT) end -- MemoryDenyWriteExecute=yes
    assert.are.equal("0000000000000000", without.capamb)
    assert.are_not.equal("0000000000000400", without.capbnd)
    assert.is_nil(without.after:find("network-online.target", 1, true))

    local with = run_opts("lsvcspec-opts", { "--read-write", "WDIR", "--allow-jit",
      "--capability", "CAP_NET_BIND_SERVICE", "--network" })
    assert.are.equal("ok", with.WRITE, with.unit)
    if have_python then assert.are.equal("ok", with.JIT, with.unit) end
    assert.are.equal("0000000000000400", with.capbnd) -- only CAP_NET_BIND_SERVICE (bit 10) left
    assert.are.equal("0000000000000400", with.capamb) -- and granted
    assert.truthy(with.after:find("network-online.target", 1, true), with.after)
    assert.truthy(with.wants:find("network-online.target", 1, true), with.wants)
  end)

  it("--dynamic-user runs the service as a user of its own, its endpoint in its own directory",
    function()
      if TMP_REPO then
        pending("a checkout under /tmp: DynamicUser='s PrivateTmp= hides the binary")
        return
      end
      -- %t is $XDG_RUNTIME_DIR here: open it as /run is (see --user-account above)
      local name = "lsvcspec-dyn"
      local rt = os.getenv("XDG_RUNTIME_DIR")
      H.sh("chmod 711 " .. H.q(rt) .. " && chmod 777 " .. H.q(rt .. "/systemd/notify"))
      local ok, err = pcall(function()
        local rc, out = lsvc("install", examples .. "heartbeat.lua", "--systemd", "--dynamic-user",
          "--name", name, "--unit-dir", unit_dir)
        assert.are.equal(0, rc, out)
        installed[#installed + 1] = { name = name, dir = unit_dir }
        local log = H.tmpdir() .. "/service.log"
        drop_in(name, log)
        rc, out = lsvc("start", name)
        assert.are.equal(0, rc, out .. (H.read(log) or ""))
        local pid = show(name, "MainPID")
        local uid = tonumber(proc_status(pid, "Uid"):match("^(%d+)"))
        assert.is_true(uid ~= 0 and uid ~= 65534, "uid " .. uid)
        rc, out = lsvc("status", name)
        assert.are.equal(0, rc, out)
        assert.matches("heartbeat%s+RUNNING", out)
        rc, out = lsvc("control", name, "200")
        assert.are.equal(0, rc, out)
        H.wait_for(function() return (H.read(log) or ""):find("control 200:", 1, true) end, 5,
          "control 200 in the log")
        rc, out = lsvc("stop", name, "--wait")
        assert.are.equal(0, rc, out)
        assert.are.equal("success", show(name, "Result"))
      end)
      H.sh("chmod 700 " .. H.q(rt) .. " && chmod 755 " .. H.q(rt .. "/systemd/notify"))
      assert(ok, err)
    end)
end)
