-- endpoint_spec.lua - the control endpoint: owner-only, peer-checked, and
-- unharmed by anything a client sends.
local F = H.fixtures

local function mode(path)
  local _, out = H.sh("stat -c %a " .. H.q(path))
  return out:gsub("%s+$", "")
end

describe("the control endpoint", function()
  after_each(H.cleanup)

  it("is a 0600 socket in a 0700 directory", function()
    local p = H.start { scripts = { F .. "basic.lua" } }
    H.wait_state(p, "basic", "RUNNING")
    assert.equal("700", mode(p.rt))
    assert.equal("600", mode(p.rt .. "/basic.sock"))
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("answers malformed, truncated and oversized requests with an error and goes on", function()
    local p = H.start { scripts = { F .. "basic.lua" } }
    H.wait_state(p, "basic", "RUNNING")
    local bad = {
      { "", "truncated" },
      { "CONTROL 200 basic", "truncated" },
      { "HELLO basic\n", "unknown request" },
      { "CONTROL 999 basic\n", "bad control code" },
      { "CONTROL 0 basic\n", "bad control code" },
      { "CONTROL -1 basic\n", "bad control code" },
      { "CONTROL 200\n", "bad control code" },
      { "CONTROL 200 \n", "bad service name" },
      { "CONTROL 200 ba\0sic\n", "control character" },
      { "STATUS basic\nSTATUS basic\n", "trailing bytes" },
      { "CONTROL 200 " .. string.rep("x", 600) .. "\n", "too long" },
      { string.rep("\255", 5000), "too long" },
      { "STATUS other\n", "1060" },
    }
    for _, b in ipairs(bad) do
      local reply, raw = H.raw(p, "basic", b[1])
      assert.truthy(reply, "no reply to " .. ("%q"):format(b[1]:sub(1, 40)) .. ": " .. tostring(raw))
      assert.truthy(reply:find("^ERR %d+ "), reply)
      assert.truthy(reply:find(b[2], 1, true), ("%q -> %s"):format(b[1]:sub(1, 40), reply))
    end
    -- still serving, still running, nothing delivered by the garbage
    local reply = H.raw(p, "basic", "CONTROL 200 basic\n")
    assert.truthy(reply:find("^OK {"), reply)
    H.wait_log(p, "CTL:200")
    local st = H.status(p, "basic")
    assert.equal("RUNNING", st.state)
    assert.equal(1, st.controls_delivered)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("refuses another user, by the directory and by the peer's uid", function()
    local rc = H.sh("id -u")
    local _, uid = H.sh("id -u")
    if uid:gsub("%s", "") ~= "0" then
      pending("needs root to act as a second uid")
      return
    end
    local p = H.start { scripts = { F .. "basic.lua" } }
    H.wait_state(p, "basic", "RUNNING")
    local as_nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups "
    -- the 0700 directory keeps the other user out
    local rc2, out = H.sh(as_nobody .. "env LUASVC_RUNTIME_DIR=" .. H.q(p.rt) .. " " .. H.q(H.bin) .. " stop basic")
    assert.equal(1, rc2, out)
    assert.truthy(out:find("Permission denied", 1, true), out)
    -- opened up by mistake, the socket still checks who is calling
    H.sh("chmod 755 " .. H.q(p.dir) .. " " .. H.q(p.rt) .. "; chmod 666 " .. H.q(p.rt .. "/basic.sock"))
    rc2, out = H.sh(as_nobody .. "env LUASVC_RUNTIME_DIR=" .. H.q(p.rt) .. " " .. H.q(H.bin) .. " stop basic")
    assert.equal(1, rc2, out)
    assert.truthy(out:find("error 5: Access is denied.", 1, true), out)
    assert.truthy(H.log(p):find("endpoint: refused a client of uid 65534", 1, true))
    assert.equal("RUNNING", H.status(p, "basic").state)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("refuses a second host for a running service, and replaces a stale socket", function()
    local p = H.start { scripts = { F .. "basic.lua" } }
    H.wait_state(p, "basic", "RUNNING")
    local q = H.start { scripts = { F .. "basic.lua" }, rt = p.rt }
    assert.equal(2, H.wait_exit(q))
    assert.truthy(H.log(q):find("service 'basic' is already running", 1, true))
    assert.equal("RUNNING", H.status(p, "basic").state)
    H.kill(p, "KILL") -- leaves its socket behind
    H.wait_exit(p)
    local r = H.start { scripts = { F .. "basic.lua" }, rt = p.rt }
    H.wait_state(r, "basic", "RUNNING")
    H.kill(r, "TERM")
    assert.equal(0, H.wait_exit(r))
  end)

  it("removes the temporary sockets of hosts that died while loading, and only theirs", function()
    local d = H.tmpdir()
    local rt = d .. "/rt"
    H.sh("mkdir -m 700 " .. H.q(rt))
    -- a process that is gone, and one (this shell's parent, busted) that is not
    local _, dead = H.sh("sh -c 'echo $$'")
    dead = dead:match("%d+")
    local _, alive = H.sh("echo $PPID")
    alive = alive:match("%d+")
    H.sh("touch " .. H.q(rt .. "/.luasvc-" .. dead .. "-0.tmp") .. " " .. H.q(rt .. "/.luasvc-" .. alive .. "-0.tmp"))
    local p = H.start { scripts = { F .. "basic.lua" }, rt = rt }
    H.wait_state(p, "basic", "RUNNING")
    H.wait_for(function()
      local f = io.open(rt .. "/.luasvc-" .. dead .. "-0.tmp")
      if f then f:close() end
      return not f
    end, 5, "the dead host's temporary socket to go")
    local f = io.open(rt .. "/.luasvc-" .. alive .. "-0.tmp")
    assert.truthy(f, "a live process's temporary socket is kept")
    f:close()
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("refuses a runtime directory open to others", function()
    local d = H.tmpdir()
    H.sh("mkdir -m 755 " .. H.q(d .. "/open"))
    local p = H.start { scripts = { F .. "basic.lua" }, rt = d .. "/open" }
    assert.equal(2, H.wait_exit(p))
    assert.truthy(H.log(p):find("is open to other users (mode 755); chmod 700 it", 1, true), H.log(p))
  end)

  it("status without a name lists every service under the runtime directory", function()
    local p = H.start { scripts = { F .. "basic.lua", F .. "sibling.lua" } }
    H.wait_state(p, "basic", "RUNNING")
    H.wait_state(p, "sibling", "RUNNING")
    local list = H.status_all(p)
    assert.equal(2, #list)
    assert.equal("basic", list[1].name)
    assert.equal("sibling", list[2].name)
    for _, st in ipairs(list) do
      for _, k in ipairs({ "name", "state", "state_code", "controls_accepted", "win32_exit_code",
        "service_exit_code", "checkpoint", "wait_hint", "pid" }) do
        assert.is_not_nil(st[k], k)
      end
    end
    local rc, out = H.client(p, "status")
    assert.equal(0, rc)
    assert.truthy(out:find("basic%s+RUNNING%s+pid " .. p.pid), out)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)
end)
