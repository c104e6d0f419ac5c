-- journal_spec.lua - `luasvc run` as systemd sees it, without a service
-- manager (spec/systemd/ has the real one): the log's priority prefixes
-- when stderr is the journal ($JOURNAL_STREAM names its device:inode), and
-- the sd_notify datagrams sent to $NOTIFY_SOCKET, read by a small python3
-- receiver (pending without python3).

describe("the log", function()
  after_each(H.cleanup)

  local function run_with_stream(match)
    local d = H.tmpdir()
    local err = d .. "/err"
    -- JOURNAL_STREAM: stderr's own dev:ino, or one that is not it
    local cmd = string.format(
      "exec 2>%s; js=$(stat -L -c '%%d:%%i' %s)%s; JOURNAL_STREAM=$js LUASVC_RUNTIME_DIR=%s timeout 20 %s run %s -- 0",
      H.q(err), match and "/proc/self/fd/2" or "/dev/null", "", H.q(d .. "/rt"), H.q(H.bin),
      H.q(H.fixtures .. "exit_code.lua"))
    local rc = H.sh("sh -c " .. H.q(cmd))
    return rc, H.read(err) or ""
  end

  it("carries <N> priority prefixes when stderr is the journal", function()
    local rc, log = run_with_stream(true)
    assert.equal(0, rc, log)
    assert.truthy(log:find("^<6>info    exit_code: START_PENDING\n"), log)
    assert.truthy(log:find("\n<6>info    exit_code: STOP:called\n", 1, true), log)
    assert.falsy(log:find("%d%d:%d%d:%d%d"), log) -- journald keeps the time
  end)

  it("stays plain when JOURNAL_STREAM names another file", function()
    local rc, log = run_with_stream(false)
    assert.equal(0, rc, log)
    assert.truthy(log:find("^%d+%-%d+%-%d+ [%d:.]+ info    exit_code: START_PENDING\n"), log)
    assert.falsy(log:find("<6>", 1, true), log)
  end)
end)

describe("sd_notify", function()
  after_each(H.cleanup)

  local RECV = [[
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
with open(sys.argv[2], "a") as out:
    while True:
        m = s.recv(4096).decode()
        out.write(m.replace("\n", "|") + "\n")
        out.flush()
        if "STATUS=STOPPED" in m:
            break
]]

  it("tells the service's life as READY, STATUS, RELOADING, STOPPING, WATCHDOG", function()
    if os.execute("command -v python3 >/dev/null 2>&1") ~= true then
      pending("no python3 to receive the datagrams")
      return
    end
    local d = H.tmpdir()
    local sock, msgs = d .. "/notify", d .. "/msgs"
    H.write(d .. "/recv.py", RECV)
    os.execute(string.format("python3 %s %s %s >/dev/null 2>&1 & echo $! > %s", H.q(d .. "/recv.py"),
      H.q(sock), H.q(msgs), H.q(d .. "/recv.pid")))
    local rpid = tonumber(H.read(d .. "/recv.pid"):match("%d+"))
    finally(function() os.execute("kill " .. rpid .. " 2>/dev/null") end)
    H.wait_for(function() return os.execute("test -S " .. H.q(sock)) == true end, 5, "the receiver")
    local p = H.start { scripts = { H.fixtures .. "basic.lua" },
      env = "NOTIFY_SOCKET=" .. H.q(sock) .. " WATCHDOG_USEC=100000" }
    H.wait_state(p, "basic", "RUNNING")
    H.wait_for(function() return (H.read(msgs) or ""):find("READY=1", 1, true) end, 5, "READY=1")
    -- a responsive worker: pings go on (every 50 ms here)
    H.wait_for(function() return select(2, (H.read(msgs) or ""):gsub("WATCHDOG=1", "")) >= 3 end, 5,
      "three WATCHDOG=1")
    H.kill(p, "HUP")
    H.wait_log(p, "CTL:paramchange")
    assert.equal(0, (H.client(p, "pause", "basic")))
    H.wait_state(p, "basic", "PAUSED")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    local m = H.wait_for(function()
      local t = H.read(msgs) or ""
      return t:find("STATUS=STOPPED", 1, true) and t
    end, 5, "STATUS=STOPPED")
    -- in order, each once where it must be once; a report tells the status
    -- as it is when sent, so a short pending state may show as what followed
    local order = { "STATUS=START_PENDING", "READY=1|STATUS=RUNNING", "RELOADING=1",
      "READY=1", "STATUS=PAUSED", "STOPPING=1", "STATUS=STOPPED" }
    local at = 1
    for _, want in ipairs(order) do
      local s = m:find(want, at, true)
      assert.truthy(s, "'" .. want .. "' after position " .. at .. " in:\n" .. m)
      at = s + #want
    end
    assert.equal(1, select(2, m:gsub("STOPPING=1", "")))
    assert.falsy(m:find("EXTEND_TIMEOUT_USEC", 1, true), m) -- basic shows no progress
    assert.falsy(m:find("STATUS=PAUSE_PENDING.*STATUS=PAUSED.*STATUS=PAUSE_PENDING"), m) -- never back
  end)
end)
