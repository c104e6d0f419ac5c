--[[
unit_install_spec.lua - `luasvc install --systemd --unit-dir DIR` without a
systemd (the unit is written, systemd is not asked): the unit file is
written through a temporary file beside it that is created, never opened
(O_EXCL | O_NOFOLLOW), so a symlink planted at the temporary name does not
make install write where it points. And `status` without a NAME, which
finds the runtime directories of --user-account units through their
markers.
--]]
local H = require "spec.helper"
local json = require "dkjson"

describe("luasvc install", function()
  after_each(H.cleanup)

  it("never follows a symlink planted at its temporary file's name", function()
    local d = H.tmpdir()
    local units, victim = d .. "/units", d .. "/victim"
    H.sh("mkdir " .. H.q(units))
    H.write(victim, "precious\n")
    H.write(d .. "/planted.lua", 'return { name = "planted", run = function(ctx) end }\n')
    local tmp = units .. "/planted.service.luasvc-tmp"
    assert.are.equal(0, (H.sh("ln -s " .. H.q(victim) .. " " .. H.q(tmp))))
    local rc, out = H.run_sync({ "install", d .. "/planted.lua", "--systemd", "--unit-dir", units })
    assert.are.equal(0, rc, out)
    assert.are.equal("precious\n", H.read(victim))
    local unit = units .. "/planted.service"
    local _, kind = H.sh("stat -c %F " .. H.q(unit))
    assert.are.equal("regular file\n", kind)
    assert.truthy(H.read(unit):find("# luasvc-service: planted\n", 1, true))
    assert.truthy(H.read(unit):find("ExecStart=", 1, true))
    assert.is_nil(H.read(tmp))
    local _, ls = H.sh("ls -A " .. H.q(units))
    assert.are.equal("planted.service\n", ls)
  end)

  it("replaces its own unit in place, and refuses one it did not write", function()
    local d = H.tmpdir()
    local units = d .. "/units"
    H.write(d .. "/again.lua", 'return { name = "again", run = function(ctx) end }\n')
    local args = { "install", d .. "/again.lua", "--systemd", "--unit-dir", units }
    local rc, out = H.run_sync(args)
    assert.are.equal(0, rc, out)
    rc, out = H.run_sync(args)
    assert.are.equal(0, rc, out)
    H.write(units .. "/again.service", "[Unit]\nDescription=someone else's\n")
    rc, out = H.run_sync(args)
    assert.are.equal(1, rc, out)
    assert.truthy(out:find("not written by luasvc", 1, true), out)
    assert.are.equal("[Unit]\nDescription=someone else's\n", H.read(units .. "/again.service"))
  end)
end)

-- `status` without a NAME, beside the runtime directory, lists the services
-- of installed units with a directory of their own (install
-- --user-account): a user's units here ($XDG_CONFIG_HOME/systemd/user,
-- their %t $XDG_RUNTIME_DIR), the hosts run by hand in the directories
-- systemd would make.
describe("luasvc status without a NAME", function()
  after_each(H.cleanup)

  local function svc(dir, name)
    local path = dir .. "/" .. name .. ".lua"
    H.write(path, 'local S = { name = "' .. name .. '" }\n' ..
      "function S.run(ctx) while ctx:sleep(1000) do end end\nreturn S\n")
    return path
  end

  it("lists --user-account units' services too, each once, past unreadable and stale directories",
    function()
      local d = H.tmpdir()
      local xrt, cfg = d .. "/xrt", d .. "/config"
      local units = cfg .. "/systemd/user"
      assert.are.equal(0, (H.sh("mkdir -m 700 " .. H.q(xrt))))
      for _, u in ipairs({ "acct", "stale", "gone", "notdir" }) do
        local rc, out = H.run_sync({ "install", svc(d, u), "--systemd", "--user-account", "nobody",
          "--name", "lsvcspec-" .. u, "--unit-dir", units })
        assert.are.equal(0, rc, out)
      end
      -- a second unit naming the same directory: listed once
      H.write(units .. "/lsvcspec-twin.service", H.read(units .. "/lsvcspec-acct.service"))
      -- a unit's directory that is no directory
      H.write(xrt .. "/luasvc-lsvcspec-notdir", "")
      local plain = H.start({ scripts = { svc(d, "plain") }, rt = xrt .. "/luasvc" })
      local acct = H.start({ scripts = { svc(d, "acct") }, rt = xrt .. "/luasvc-lsvcspec-acct" })
      local stale = H.start({ scripts = { svc(d, "stale") }, rt = xrt .. "/luasvc-lsvcspec-stale" })
      H.wait_state(plain, "plain", "RUNNING")
      H.wait_state(acct, "acct", "RUNNING")
      H.wait_state(stale, "stale", "RUNNING")
      H.kill(stale, "KILL") -- its socket stays behind
      H.wait_exit(stale)
      assert.are.equal(0, (H.sh("test -S " .. H.q(xrt .. "/luasvc-lsvcspec-stale/stale.sock"))))

      local function status(...)
        return H.sh(string.format("env -u LUASVC_RUNTIME_DIR XDG_RUNTIME_DIR=%s XDG_CONFIG_HOME=%s timeout 20 %s status %s",
          H.q(xrt), H.q(cfg), H.q(H.bin), table.concat({ ... }, " ")))
      end
      local rc, out = status("--json")
      assert.are.equal(0, rc, out)
      local seen = {}
      for line in out:gmatch("[^\n]+") do
        local st = assert(json.decode(line), line)
        seen[#seen + 1] = st.name .. "@" .. tostring(st.unit)
        assert.are.equal("RUNNING", st.state)
      end
      assert.are.same({ "plain@nil", "acct@lsvcspec-acct" }, seen)

      rc, out = status()
      assert.are.equal(0, rc, out)
      local lines = {}
      for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.are.equal(2, #lines, out)
      assert.matches("^plain%s+RUNNING", lines[1])
      assert.is_nil(lines[1]:find("unit", 1, true), lines[1])
      assert.matches("^acct%s+RUNNING.*  unit lsvcspec%-acct", lines[2])
      -- by the unit's name, as before
      rc, out = status("lsvcspec-acct")
      assert.are.equal(0, rc, out)
      assert.matches("^acct%s+RUNNING", out)
      -- LUASVC_RUNTIME_DIR set: that directory only
      rc, out = H.sh(string.format("LUASVC_RUNTIME_DIR=%s XDG_RUNTIME_DIR=%s XDG_CONFIG_HOME=%s %s status",
        H.q(xrt .. "/luasvc"), H.q(xrt), H.q(cfg), H.q(H.bin)))
      assert.are.equal(0, rc, out)
      assert.matches("^plain%s+RUNNING[^\n]*\n$", out)
    end)
end)

-- install's options for what a service needs of the sandbox and of the
-- system (issue 23), as unit text: each setting with the comment that
-- names its option; what does not go together refused, naming the
-- argument. spec/systemd/sandbox_spec.lua runs them under systemd.
describe("luasvc install's options", function()
  after_each(H.cleanup)

  local function has_line(text, line)
    return ("\n" .. text .. "\n"):find("\n" .. line .. "\n", 1, true) ~= nil
  end

  it("write each setting with a comment naming its option", function()
    local d = H.tmpdir()
    H.sh("mkdir " .. H.q(d .. "/data") .. " " .. H.q(d .. "/cache"))
    H.write(d .. "/opts.lua", 'return { name = "opts", run = function(ctx) end }\n')
    local rc, out = H.run_sync({ "install", d .. "/opts.lua", "--systemd", "--unit-dir", d .. "/units",
      "--network", "--read-write", d .. "/data", "--read-write", d .. "/cache/../cache",
      "--capability", "cap_net_bind_service", "--capability", "NET_RAW", "--capability", "CAP_NET_RAW",
      "--allow-jit", "--metrics", "127.0.0.1:9100", "--dynamic-user" })
    -- the script is under /tmp: DynamicUser='s PrivateTmp= would hide it
    assert.equal(2, rc, out)
    assert.matches("--dynamic-user implies PrivateTmp=, which would hide the script", out, 1, true)
    rc, out = H.run_sync({ "install", d .. "/opts.lua", "--systemd", "--unit-dir", d .. "/units",
      "--network", "--read-write", d .. "/data", "--read-write", d .. "/cache/../cache",
      "--capability", "cap_net_bind_service", "--capability", "NET_RAW", "--capability", "CAP_NET_RAW",
      "--allow-jit", "--metrics", "127.0.0.1:9100" })
    assert.equal(0, rc, out)
    local unit = H.read(d .. "/units/opts.service")
    for _, l in ipairs({
      "# --network: started once the network is up", "Wants=network-online.target",
      "After=network-online.target",
      "# --read-write: writable inside the sandbox (ReadWritePaths=)",
      'ReadWritePaths="' .. d .. '/data"', 'ReadWritePaths="' .. d .. '/cache"',
      "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_NET_RAW",
      "AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW",
      "# --allow-jit: writable executable memory allowed (a JIT)", "MemoryDenyWriteExecute=no",
      'ExecStart="' .. H.bin .. '" "run" "--metrics" "127.0.0.1:9100" "' .. d .. '/opts.lua"',
    }) do
      assert.is_true(has_line(unit, l), l .. " in\n" .. unit)
    end
    assert.truthy(unit:find("# --capability: these granted", 1, true), unit)
    assert.is_nil(unit:find("MemoryDenyWriteExecute=yes", 1, true))
    assert.is_true(unit:find("After=network-online.target", 1, true) < unit:find("[Service]", 1, true))
    -- without them: none of it
    rc, out = H.run_sync({ "install", d .. "/opts.lua", "--systemd", "--unit-dir", d .. "/units" })
    assert.equal(0, rc, out)
    unit = H.read(d .. "/units/opts.service")
    for _, s in ipairs({ "network-online", "ReadWritePaths", "Capabilit", "DynamicUser", "--metrics" }) do
      assert.is_nil(unit:find(s, 1, true), s .. " in\n" .. unit)
    end
    assert.is_true(has_line(unit, "MemoryDenyWriteExecute=yes"), unit)
  end)

  it("writes DynamicUser= with an endpoint directory of the unit's own", function()
    -- a script outside /tmp (DynamicUser= brings PrivateTmp=), wherever the checkout is;
    -- a binary under /tmp is refused too (PrivateTmp= would hide it)
    if H.bin:match("^/tmp/") or H.bin:match("^/var/tmp/") then
      pending("a build under /tmp: DynamicUser='s PrivateTmp= would hide the binary")
      return
    end
    local d = H.tmpdir()
    local home = H.dir_outside_tmp()
    H.write(home .. "/heartbeat.lua", H.read("examples/heartbeat.lua"))
    local rc, out = H.run_sync({ "install", home .. "/heartbeat.lua", "--systemd", "--unit-dir", d,
      "--dynamic-user", "--name", "hb-dyn" })
    assert.equal(0, rc, out)
    local unit = H.read(d .. "/hb-dyn.service")
    assert.is_true(has_line(unit, "DynamicUser=yes"), unit)
    assert.is_true(has_line(unit, "# --dynamic-user: a user of its own, made at each start"), unit)
    assert.is_true(has_line(unit, "RuntimeDirectory=luasvc-hb-dyn"), unit)
    assert.is_true(has_line(unit, "# luasvc-runtime-dir: luasvc-hb-dyn"), unit)
    -- not preserved: systemd would make a DynamicUser='s kept directory a symlink
    assert.is_nil(unit:find("RuntimeDirectoryPreserve", 1, true), unit)
    assert.is_nil(("\n" .. unit):find("\nUser=", 1, true), unit)
  end)

  it("refuse what does not go together, and bad values, naming the argument", function()
    local d = H.tmpdir()
    local script = d .. "/bad.lua"
    H.write(script, 'return { name = "bad", run = function(ctx) end }\n')
    local cases = {
      { { "--capability", "CAP_NOPE" }, "--capability 'CAP_NOPE' is not a capability" },
      { { "--capability", "CAP_KILL", "--user" }, "--capability is for a system unit" },
      { { "--read-write", d .. "/missing" }, "--read-write '" .. d .. "/missing': No such file or directory" },
      { { "--read-write" }, "--read-write needs a value" },
      { { "--metrics", "9100" }, "--metrics '9100' is not HOST:PORT" },
      { { "--metrics", "host:0" }, "--metrics 'host:0' is not HOST:PORT" },
      { { "--metrics", "host:70000" }, "--metrics 'host:70000' is not HOST:PORT" },
      { { "--metrics", "a b:80" }, "--metrics 'a b:80' is not HOST:PORT" },
      { { "--metrics", "::1:80" }, "--metrics '::1:80' is not HOST:PORT" },
      -- run takes addresses only (a start never waits on a name lookup)
      { { "--metrics", "metrics.example:9100" }, "--metrics 'metrics.example:9100' is not HOST:PORT" },
      { { "--dynamic-user", "--user" }, "--dynamic-user is for a system unit" },
      { { "--dynamic-user", "--user-account", "root" }, "--dynamic-user is for a system unit" },
    }
    for _, c in ipairs(cases) do
      local args = { "install", script, "--systemd", "--unit-dir", d .. "/units" }
      for _, a in ipairs(c[1]) do args[#args + 1] = a end
      local rc, out = H.run_sync(args)
      assert.equal(2, rc, table.concat(c[1], " ") .. ": " .. out)
      assert.truthy(out:find(c[2], 1, true), table.concat(c[1], " ") .. ": " .. out)
    end
    assert.is_nil(H.read(d .. "/units/bad.service"))
    -- what is fine
    for _, m in ipairs({ "[::1]:9100", "0.0.0.0:80", "localhost:65535" }) do
      local rc, out = H.run_sync({ "install", script, "--systemd", "--unit-dir", d .. "/units", "--metrics", m })
      assert.equal(0, rc, m .. ": " .. out)
    end
  end)

  it("warns when the binary or the script is in a temporary or build directory", function()
    local d = H.tmpdir()
    H.write(d .. "/w.lua", 'return { name = "w", run = function(ctx) end }\n')
    local rc, out = H.run_sync({ "install", d .. "/w.lua", "--systemd", "--unit-dir", d .. "/units" })
    assert.equal(0, rc, out)
    assert.truthy(out:find("luasvc install: warning: the script " .. d .. "/w.lua is in a temporary directory", 1, true), out)
    -- the spec's binary, when it is in its build tree (CMakeCache.txt) or under /tmp
    local transient = H.bin:match("^/tmp/") ~= nil
    local dir = H.bin:match("^(.*)/")
    while dir and dir ~= "" and not transient do
      transient = H.read(dir .. "/CMakeCache.txt") ~= nil
      dir = dir:match("^(.*)/")
    end
    assert.are.equal(transient,
      out:find("luasvc install: warning: the luasvc binary " .. H.bin .. " is in a", 1, true) ~= nil, out)
    -- neither: no warning (a directory of its own under $HOME, removed after)
    local _, home = H.sh("mktemp -d " .. H.q((os.getenv("HOME") or "/root") .. "/.luasvc-spec.XXXXXX"))
    home = home:gsub("%s+$", "")
    local ok, err = pcall(function()
      H.sh("cp " .. H.q(H.bin) .. " " .. H.q(home .. "/luasvc") .. " && chmod 755 " .. H.q(home))
      H.write(home .. "/w.lua", 'return { name = "w", run = function(ctx) end }\n')
      local rc2, out2 = H.sh(H.q(home .. "/luasvc") .. " install " .. H.q(home .. "/w.lua") ..
        " --systemd --unit-dir " .. H.q(d .. "/units2"))
      assert.equal(0, rc2, out2)
      assert.is_nil(out2:find("warning", 1, true), out2)
    end)
    H.sh("rm -rf " .. H.q(home))
    assert(ok, err)
  end)
end)
