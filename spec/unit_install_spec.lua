--[[
unit_install_spec.lua - `luasvc install --systemd --unit-dir DIR` without a
systemd (the unit is written, systemd is not asked): the unit file is
written through a temporary file beside it that is created, never opened
(O_EXCL | O_NOFOLLOW), so a symlink planted at the temporary name does not
make install write where it points.
--]]
local H = require "spec.helper"

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
