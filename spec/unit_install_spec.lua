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
