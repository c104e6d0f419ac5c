-- harden_spec.lua - what a hostile script, client or sink cannot do to a
-- host: names that read as options, forged log lines, invalid JSON, a
-- stderr nobody reads, silent clients, a stopped host, a script that leaks
-- descriptors, children with the host's signal state, code others can
-- change, altered messages.
local json = require "dkjson"
local system = require "system"

local script = H.script

local RUN = [[
function S.run(ctx) while ctx:sleep(1000) do end end
return S
]]

describe("names", function()
  after_each(H.cleanup)

  for _, c in ipairs({ { "-x", "a leading dash" }, { " ", "a space" }, { " svc", "a leading space" },
    { "svc ", "a trailing space" } }) do
    it("refuses " .. c[2] .. " in a service name at check time", function()
      local path = script("local S = { name = " .. string.format("%q", c[1]) .. " }\n" .. RUN)
      local rc, out = H.run_sync({ "check", path })
      assert.equal(2, rc, out)
      assert.truthy(out:find(path .. ":1: error: invalid service name " .. string.format("%q", c[1]), 1, true), out)
      assert.truthy(out:find("not starting with '-'", 1, true), out)
    end)
  end

  it("refuses a file name that makes an invalid service name", function()
    local path = script(RUN:gsub("^", "local S = {}\n"), "-x.lua")
    local rc, out = H.run_sync({ "check", path })
    assert.equal(2, rc, out)
    assert.truthy(out:find("invalid service name \"-x\"", 1, true), out)
  end)

  it("refuses an invalid status_slot by the same rule", function()
    local path = script('local S = { status_slot = "-slot" }\n' .. RUN)
    local rc, out = H.run_sync({ "check", path })
    assert.equal(2, rc, out)
    assert.truthy(out:find(path .. ":1: error: invalid status_slot \"-slot\"", 1, true), out)
  end)

  it("refuses a display_name with a control character", function()
    local path = script('local S = {\n  display_name = "Nice\\nFAKE luasvc: RUNNING",\n}\n' .. RUN)
    local rc, out = H.run_sync({ "check", path })
    assert.equal(2, rc, out)
    assert.truthy(out:find(path .. ":2: error: display_name \"Nice\\nFAKE luasvc: RUNNING\" has a control character", 1, true), out)
  end)

  it("still takes a name with inner spaces and dashes", function()
    local path = script('local S = { name = "my svc-1" }\n' .. RUN)
    local rc, out = H.run_sync({ "check", path })
    assert.equal(0, rc, out)
  end)
end)

describe("the log", function()
  after_each(H.cleanup)

  -- ctx:log text that tries to forge lines, a priority and terminal
  -- commands; then an error whose message has a newline (a traceback).
  local FORGER = [[
local S = {}
function S.start(ctx)
  ctx:log("info", "first\n2031-01-01 00:00:00.000 error   other: FORGED\n<3>error   other: FORGED\r\27[2J\194\155x")
  error("boom\nFORGED-TOO")
end
function S.run() end
return S
]]

  it("escapes control characters and prefixes every line of a message", function()
    local path = script(FORGER)
    local rc, out = H.run_sync({ "run", path })
    assert.equal(1, rc, out)
    for line in out:gmatch("[^\n]*") do
      if line ~= "" then
        assert.truthy(line:match("^%d+%-%d+%-%d+ [%d:.]+ %a+ +svc: ") or line:match("^%d+%-%d+%-%d+ [%d:.]+ %a+ +luasvc: "),
          "a line without the service's prefix: " .. line .. "\nin:\n" .. out)
      end
    end
    assert.falsy(out:find("[\r\27]"), out)
    assert.falsy(out:find("\194\155", 1, true), out)
    assert.truthy(out:find("info    svc: <3>error   other: FORGED\\r\\x1b[2J\\u009bx\n", 1, true), out)
    -- the traceback: each of its lines an error line of svc
    assert.truthy(out:find("error   svc: FORGED-TOO\n", 1, true), out)
    assert.truthy(out:find("error   svc: stack traceback:\n", 1, true), out)
  end)

  it("gives every line its journald priority", function()
    local path, d = script(FORGER)
    local err = d .. "/err"
    local cmd = string.format(
      "exec 2>%s; JOURNAL_STREAM=$(stat -L -c '%%d:%%i' /proc/self/fd/2) LUASVC_RUNTIME_DIR=%s timeout 20 %s run %s",
      H.q(err), H.q(d .. "/rt"), H.q(H.bin), H.q(path))
    local rc = H.sh("sh -c " .. H.q(cmd))
    local log = H.read(err) or ""
    assert.equal(1, rc, log)
    for line in log:gmatch("[^\n]+") do
      assert.truthy(line:match("^<%d>%a+ +svc: ") or line:match("^<%d>%a+ +luasvc: "), "no priority: " .. line .. "\nin:\n" .. log)
    end
    assert.truthy(log:find("\n<6>info    svc: <3>error   other: FORGED", 1, true), log)
    assert.truthy(log:find("\n<3>error   svc: FORGED-TOO\n", 1, true), log)
    assert.truthy(log:find("\n<3>error   svc: stack traceback:\n", 1, true), log)
  end)
end)

describe("status --json", function()
  after_each(H.cleanup)

  it("is valid JSON whatever the script's strings", function()
    if os.execute("command -v python3 >/dev/null 2>&1") ~= true then
      pending("no python3 for a strict JSON parser")
      return
    end
    -- control characters and bytes that are not UTF-8, in the status
    -- text, the display name and the script's path: six times their
    -- size once escaped
    local d = H.tmpdir()
    local path = d .. "/" .. string.rep("\1", 200) .. ".lua"
    H.write(path, [[
local S = { name = "strings", display_name = "X" .. string.rep("\255", 250) }
function S.run(ctx)
  ctx:status(string.rep("\1\27\255\"\\", 50) .. "\226\130")
  while ctx:sleep(1000) do end
end
return S
]])
    local p = H.start({ scripts = { path } })
    H.wait_for(function()
      local rc, out = H.client(p, "status", "strings")
      return rc == 0 and out:find("RUNNING", 1, true) and out:find("(", 1, true)
    end, 5, "strings to run; log:\n" .. H.log(p))
    for _, args in ipairs({ { "status", "strings", "--json" }, { "status", "--json" } }) do
      local rc, out = H.client(p, table.unpack(args))
      assert.equal(0, rc, out)
      local f = p.dir .. "/status.json"
      H.write(f, out)
      local prc, perr = H.sh("python3 -c " .. H.q(
        "import json,sys; d=json.loads(open(sys.argv[1],'rb').read().decode('utf-8')); " ..
        "assert d['state']=='RUNNING'; assert d['status_text'].startswith('  \\ufffd\"\\\\'), d['status_text']") ..
        " " .. H.q(f))
      assert.equal(0, prc, perr .. "\n" .. out)
    end
  end)
end)

describe("luasvc listen", function()
  local listen_pid, script_pid
  after_each(function()
    for _, pid in ipairs({ listen_pid, script_pid }) do
      if pid then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    end
    listen_pid, script_pid = nil, nil
    H.cleanup()
  end)

  it("escapes terminal control sequences on a terminal", function()
    if os.execute("command -v script >/dev/null 2>&1") ~= true then
      pending("no script(1) for a terminal")
      return
    end
    local d = H.tmpdir()
    local rt, out = d .. "/rt", d .. "/tty"
    os.execute(string.format(
      "(script -qfec %s %s >/dev/null 2>&1 </dev/null & echo $! >%s) >/dev/null 2>&1",
      H.q(string.format("sh -c 'echo $$ >%s; LUASVC_RUNTIME_DIR=%s exec %s listen ttyslot'",
        d .. "/lpid", rt, H.bin)), H.q(out), H.q(d .. "/spid")))
    script_pid = tonumber(H.wait_for(function() return (H.read(d .. "/spid") or ""):match("%d+") end, 5, "script"))
    listen_pid = tonumber(H.wait_for(function() return (H.read(d .. "/lpid") or ""):match("%d+") end, 5, "listen"))
    H.wait_for(function() return (H.read(out) or ""):find("listening on slot", 1, true) end, 5, "listen to listen")
    local path = script([[
local luasvc = require "luasvc"
local S = {}
function S.start(ctx)
  local w = assert(luasvc.mailslot.open("ttyslot"))
  assert(w:write("plain\27]0;title\7\27[2J\194\155\nnext line"))
  ctx:exit(0)
end
function S.run() end
return S
]])
    local rc, o = H.sh(string.format("LUASVC_RUNTIME_DIR=%s timeout 10 %s run %s", H.q(rt), H.q(H.bin), H.q(path)))
    assert.equal(0, rc, o)
    local text = H.wait_for(function()
      local s = H.read(out) or ""
      return s:find("next line", 1, true) and s
    end, 5, "the message at the terminal")
    assert.truthy(text:find("plain\\x1b]0;title\\x07\\x1b[2J\\u009b\\nnext line", 1, true), text)
    assert.falsy(text:find("\27", 1, true), text)
  end)
end)

-- Background processes a test starts besides hosts (readers, listeners,
-- stopped hosts): killed (and continued first) in cleanup.
local extra = {}
local function track(pidfile)
  local pid = tonumber(H.wait_for(function() return (H.read(pidfile) or ""):match("%d+") end, 5, pidfile))
  extra[#extra + 1] = pid
  return pid
end
local function cleanup_extra()
  for _, pid in ipairs(extra) do
    os.execute("kill -CONT " .. pid .. " 2>/dev/null; kill -KILL " .. pid .. " 2>/dev/null")
  end
  extra = {}
  H.cleanup()
end

-- `luasvc run script` with stderr to path (a FIFO, ...): a proc as H.start's.
local function start_with_stderr(path, errpath)
  local d = H.tmpdir()
  local p = { rt = d .. "/rt", dir = d, err = d .. "/none", rcfile = d .. "/rc", pidfile = d .. "/pid" }
  os.execute(string.format(
    "(LUASVC_RUNTIME_DIR=%s %s run %s >/dev/null 2>%s & echo $! >%s; wait $!; echo $? >%s) >/dev/null 2>&1 &",
    H.q(p.rt), H.q(H.bin), H.q(path), H.q(errpath), H.q(p.pidfile), H.q(p.rcfile)))
  p.pid = track(p.pidfile)
  return p
end

describe("a stderr nobody reads", function()
  after_each(cleanup_extra)

  it("stalls neither the control path nor a stop; lost lines are counted", function()
    local d = H.tmpdir()
    local fifo, go, drained = d .. "/fifo", d .. "/go", d .. "/drained"
    assert.equal(0, (H.sh("mkfifo " .. H.q(fifo))))
    -- a reader that holds the pipe open and reads nothing until told
    os.execute(string.format(
      "(sh -c 'while [ ! -e %s ]; do sleep 0.01; done; exec cat' <%s >%s & echo $! >%s) >/dev/null 2>&1 &",
      go, H.q(fifo), H.q(drained), H.q(d .. "/rpid")))
    local path = script([[
local S = {}
function S.run(ctx)
  local n = 0
  while ctx:sleep(1) do
    ctx:log("info", string.rep("x", 1000))
    n = n + 1
    if n == 300 then io.open("]] .. d .. [[/full", "w"):close() end -- 300 kB: the pipe is full
  end
end
return S
]])
    local p = start_with_stderr(path, fifo)
    track(d .. "/rpid")
    H.wait_for(function() return H.read(d .. "/full") end, 30, "300 kB logged into a pipe nobody reads")
    local t0 = system.monotime()
    local rc, out = H.sh(string.format("LUASVC_RUNTIME_DIR=%s timeout 5 %s status svc", H.q(p.rt), H.q(H.bin)))
    assert.equal(0, rc, out)
    assert.truthy(out:find("RUNNING", 1, true), out)
    assert.is_true(system.monotime() - t0 < 2, "status took " .. (system.monotime() - t0) .. " s")
    -- the reader reads again: a later line tells how many were lost
    H.write(go, "")
    H.wait_for(function()
      return (H.read(drained) or ""):find("log lines dropped: stderr was not writable", 1, true)
    end, 5, "the count of lost lines")
    os.execute("kill -STOP " .. track(d .. "/rpid")) -- full again, and the stop must not care
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p, 5))
  end)
end)

describe("clients", function()
  after_each(cleanup_extra)

  -- n clients that connect to p's socket for name and send nothing
  local function silent(p, name, n)
    local ready = p.dir .. "/silent-" .. #extra
    os.execute(string.format("(%s --silent %s %d %s & echo $! >%s) >/dev/null 2>&1",
      H.q(H.rawsend), H.q(p.rt .. "/" .. name .. ".sock"), n, H.q(ready), H.q(ready .. ".pid")))
    track(ready .. ".pid")
    return tonumber(H.wait_for(function() return (H.read(ready) or ""):match("%d+") end, 5, "silent clients"))
  end

  local function timed(fn)
    local t0 = system.monotime()
    local a, b = fn()
    return system.monotime() - t0, a, b
  end

  it("that are silent delay nobody else, nor a signal", function()
    local p = H.start({ scripts = { H.fixtures .. "basic.lua" } })
    H.wait_state(p, "basic", "RUNNING")
    assert.is_true(silent(p, "basic", 40) >= 16)
    local dt, rc, out = timed(function() return H.client(p, "status", "basic") end)
    assert.equal(0, rc, out)
    -- bounds that hold under the sanitizers; serving the silent clients
    -- one by one takes 4 s and more (16 in the backlog, 250 ms each)
    assert.is_true(dt < 2.5, "status took " .. dt .. " s beside silent clients")
    dt = timed(function() return H.client(p, "pause", "basic") end)
    assert.is_true(dt < 2.5, "pause took " .. dt .. " s beside silent clients")
    silent(p, "basic", 40)
    H.kill(p, "TERM")
    dt = timed(function() return H.wait_exit(p, 5) end)
    assert.equal(0, H.exit_code(p), H.log(p))
    assert.is_true(dt < 3, "SIGTERM took " .. dt .. " s to stop the host beside silent clients")
  end)

  it("of a stopped host get no reply in bounded time, and a second host does not hang", function()
    local p = H.start({ scripts = { H.fixtures .. "basic.lua" } })
    H.wait_state(p, "basic", "RUNNING")
    extra[#extra + 1] = p.pid -- continued in cleanup
    H.kill(p, "STOP")
    -- stopped for real (every thread), before any client asks
    H.wait_for(function()
      local stat = H.read("/proc/" .. p.pid .. "/stat") or ""
      return stat:match("^%d+ %(.*%) (%a)") == "T"
    end, 5, "the host to be stopped")
    silent(p, "basic", 40) -- its backlog full: a connect would wait
    local dt, rc, out = timed(function()
      return H.sh(string.format("LUASVC_RUNTIME_DIR=%s timeout 30 %s status basic", H.q(p.rt), H.q(H.bin)))
    end)
    assert.equal(1, rc, out)
    assert.truthy(out:find("no reply from service 'basic'", 1, true), out)
    assert.is_true(dt < 8, "status took " .. dt .. " s")
    dt, rc, out = timed(function()
      return H.sh(string.format("LUASVC_RUNTIME_DIR=%s timeout 30 %s run %s", H.q(p.rt), H.q(H.bin),
        H.q(H.fixtures .. "basic.lua")))
    end)
    assert.equal(2, rc, out)
    assert.truthy(out:find("service 'basic' is already running", 1, true), out)
    assert.is_true(dt < 8, "the second host took " .. dt .. " s to give up")
  end)
end)

describe("a script that leaks descriptors", function()
  after_each(H.cleanup)

  -- Opens files until the process has no descriptor left, and keeps them.
  local LEAKER = [[
local S = { name = "leaker" }
local kept = {}
function S.run(ctx)
  while true do
    local f, err = io.open("/dev/null")
    if not f then
      ctx:log("info", "LEAKED %d: %s", #kept, err)
      break
    end
    kept[#kept + 1] = f
  end
  while ctx:sleep(1000) do end
end
return S
]]

  -- every client call within a deadline well below the client's own (5 s)
  local function quick(p, ...)
    local t0 = system.monotime()
    local rc, out = H.client(p, ...)
    local dt = system.monotime() - t0
    assert.equal(0, rc, table.concat({ ... }, " ") .. ": " .. out .. "\nlog:\n" .. H.log(p))
    assert.is_true(dt < 3, table.concat({ ... }, " ") .. " took " .. dt .. " s")
    return out
  end

  it("until EMFILE refuses no control, neither its siblings' nor its own stop", function()
    local p = H.start({ prefix = "prlimit --nofile=256:256", scripts = { script(LEAKER, "leaker.lua"),
      H.fixtures .. "basic.lua" } })
    H.wait_log(p, "LEAKED %d+: [^\n]*Too many open files", 10)
    for _ = 1, 3 do quick(p, "control", "basic", "200") end
    H.wait_for(function() return select(2, H.log(p):gsub("CTL:200", "")) == 3 end, 5, "three controls 200")
    local out = quick(p, "status", "--json")
    local states = {}
    for line in out:gmatch("[^\n]+") do
      local st = json.decode(line)
      states[st.name] = st.state
    end
    assert.same({ basic = "RUNNING", leaker = "RUNNING" }, states)
    quick(p, "stop", "basic")
    H.wait_for(function()
      local st = json.decode(quick(p, "status", "basic", "--json"))
      return st.state == "STOPPED"
    end, 5, "basic to stop")
    quick(p, "stop", "leaker")
    assert.equal(0, H.wait_exit(p, 10), H.log(p))
    assert.truthy(H.log(p):find("STOP:called", 1, true), H.log(p))
  end)

  it("while loading cannot take the endpoint of a running host of the same name", function()
    local a = H.start({ scripts = { H.fixtures .. "basic.lua" } })
    local pid_a = H.wait_state(a, "basic", "RUNNING").pid
    -- a second "basic" whose top level waits until its host has bound the
    -- socket it will rename (lsvc_endpoint_prepare), then leaks every
    -- descriptor: the probe of the live endpoint has none left
    local path = script([[
local rt = os.getenv("LUASVC_RUNTIME_DIR")
local pid = io.open("/proc/self/stat"):read("l"):match("^%d+")
local deadline = os.time() + 5
repeat
  local f, _, code = io.open(rt .. "/.luasvc-" .. pid .. "-0.tmp")
  if f then f:close() end
until f or code ~= 2 or os.time() > deadline
local kept = {}
while true do
  local f = io.open("/dev/null")
  if not f then break end
  kept[#kept + 1] = f
end
local S = { name = "basic" }
function S.run(ctx) while ctx:sleep(1000) do end end
return S
]], "second.lua")
    local b = H.start({ prefix = "prlimit --nofile=256:256", scripts = { path }, rt = a.rt })
    assert.are_not.equal(0, H.wait_exit(b, 10), H.log(b))
    assert.truthy(H.log(b):find("cannot tell whether service 'basic' is already running", 1, true), H.log(b))
    local st = H.status(a, "basic")
    assert.are.equal(pid_a, st and st.pid, "the endpoint is the first host's")
    H.kill(a, "TERM")
    assert.equal(0, H.wait_exit(a, 5), H.log(a))
  end)

  it("under a descriptor limit below its client table still takes controls and signals", function()
    -- poll() refuses more entries than RLIMIT_NOFILE: the endpoint polls
    -- only the clients it has (it used to pass its whole table, and its
    -- thread ended: no control, no SIGTERM)
    local p = H.start({ prefix = "prlimit --nofile=32:32", scripts = { H.fixtures .. "basic.lua" } })
    H.wait_state(p, "basic", "RUNNING")
    quick(p, "control", "basic", "200")
    H.wait_log(p, "CTL:200", 5)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p, 5), H.log(p))
  end)
end)

describe("children of a service", function()
  local host, pidfile
  after_each(function()
    -- the host first (it starts no child after it), then a child it started
    if host and H.exit_code(host) == nil then
      H.kill(host, "KILL")
      pcall(H.wait_exit, host, 5)
    end
    local pid = pidfile and (H.read(pidfile) or ""):match("%d+")
    if pid then extra[#extra + 1] = tonumber(pid) end
    host, pidfile = nil, nil
    cleanup_extra()
  end)

  -- The bits of SIGHUP, SIGINT, SIGPIPE and SIGTERM in a /proc status mask.
  local function bits(pid, field)
    local st = H.read("/proc/" .. pid .. "/status") or ""
    local hex = assert(st:match(field .. ":%s*(%x+)"), "no " .. field .. " in:\n" .. st)
    local v = tonumber(hex:sub(-8), 16)
    local found = {}
    for _, s in ipairs({ { 1, "HUP" }, { 2, "INT" }, { 13, "PIPE" }, { 15, "TERM" } }) do
      if v & (1 << (s[1] - 1)) ~= 0 then found[#found + 1] = s[2] end
    end
    return table.concat(found, ",")
  end

  it("start with no signal blocked or ignored, and end on kill (io.popen, os.execute)", function()
    local d = H.tmpdir()
    local path = script([[
local S = {}
function S.run(ctx)
  local f = io.popen("echo $$; exec sleep 30")
  ctx:log("info", "POPEN:" .. f:read("l"))
  f:read("a")
  f:close()
  ctx:log("info", "POPEN-DONE")
  local ok, how, code = os.execute("echo $$ >]] .. d .. [[/exec.pid; exec sleep 30")
  ctx:log("info", "EXECUTE-DONE:" .. tostring(how) .. ":" .. tostring(code))
  while ctx:sleep(1000) do end
end
return S
]])
    local p = H.start({ scripts = { path } })
    host, pidfile = p, d .. "/exec.pid"
    local pid = tonumber(H.wait_for(function() return H.log(p):match("POPEN:(%d+)") end, 5, "the popen child"))
    extra[#extra + 1] = pid
    assert.equal("", bits(pid, "SigBlk"), "blocked in the io.popen child")
    assert.equal("", bits(pid, "SigIgn"), "ignored in the io.popen child")
    os.execute("kill " .. pid)
    H.wait_log(p, "POPEN%-DONE")
    pid = track(d .. "/exec.pid")
    assert.equal("", bits(pid, "SigBlk"), "blocked in the os.execute child")
    assert.equal("", bits(pid, "SigIgn"), "ignored in the os.execute child")
    os.execute("kill " .. pid)
    H.wait_log(p, "EXECUTE%-DONE:signal:15")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p, 5))
  end)
end)

describe("code others can change", function()
  after_each(cleanup_extra)

  -- A module whose top level leaves a mark: it ran.
  local function marking(d, name)
    local mark = d .. "/" .. name .. ".ran"
    return "io.open(" .. string.format("%q", mark) .. ", 'w'):close()\nreturn {}\n", mark
  end

  local function run_in(cwd, env, path)
    return H.sh(string.format("cd %s && %s LUASVC_RUNTIME_DIR=%s timeout 20 %s check %s", H.q(cwd), env or "",
      H.q(H.tmpdir() .. "/rt"), H.q(H.bin), H.q(path)))
  end

  it("never runs a world-writable module beside the script", function()
    local path, d = script('local mod = require "wwmod"\nlocal S = {}\n' .. RUN)
    local text, mark = marking(d, "wwmod")
    H.write(d .. "/wwmod.lua", text)
    assert.equal(0, (H.sh("chmod 666 " .. H.q(d .. "/wwmod.lua"))))
    local rc, out = run_in(d, nil, path)
    assert.equal(2, rc, out)
    assert.truthy(out:find("module " .. d .. "/wwmod.lua is writable by group and others (mode 666)", 1, true), out)
    assert.is_nil(H.read(mark), "the module ran")
  end)

  it("never finds a file planted in a world-writable current directory, whatever LUA_PATH says", function()
    local path = script('local mod = require "planted"\nlocal S = {}\n' .. RUN)
    local pub = H.tmpdir()
    assert.equal(0, (H.sh("chmod 777 " .. H.q(pub))))
    local text, mark = marking(pub, "planted")
    H.write(pub .. "/planted.lua", text)
    for _, env in ipairs({ "", "LUA_PATH=" .. H.q(pub .. "/?.lua;;"), "LUA_PATH_5_4=" .. H.q(pub .. "/?.lua;;") }) do
      local rc, out = run_in(pub, env, path)
      assert.equal(2, rc, out)
      assert.truthy(out:find("module 'planted' not found", 1, true), out)
      assert.falsy(out:find(pub .. "/planted.lua", 1, true), out)
      assert.is_nil(H.read(mark), "the planted file ran (" .. env .. ")")
    end
  end)

  it("takes LUASVC_LUA_PATH, and checks what it finds there before running it", function()
    local path = script('local mod = require "shared"\nlocal S = {}\n' .. RUN)
    local lib = H.tmpdir()
    local text, mark = marking(lib, "shared")
    H.write(lib .. "/shared.lua", text)
    local rc, out = run_in(lib, "LUASVC_LUA_PATH=" .. H.q(lib .. "/?.lua;;"), path)
    assert.equal(0, rc, out)
    assert.truthy(H.read(mark), "the configured module did not run")
    os.remove(mark)
    assert.equal(0, (H.sh("chmod 777 " .. H.q(lib))))
    rc, out = run_in(lib, "LUASVC_LUA_PATH=" .. H.q(lib .. "/?.lua;;"), path)
    assert.equal(2, rc, out)
    assert.truthy(out:find("the directory of " .. lib .. " is writable by", 1, true), out)
    assert.is_nil(H.read(mark), "the module ran from a world-writable directory")
  end)

  it("checks a C module before loading it", function()
    local so = "/usr/lib/x86_64-linux-gnu/lua/5.4/system/core.so"
    if not H.read(so) then
      pending("no lua-system C module at " .. so)
      return
    end
    local path = script('local core = require "system.core"\nlocal S = {}\n' .. RUN)
    local lib = H.tmpdir()
    assert.equal(0, (H.sh(string.format("mkdir %s/system && cp %s %s/system/core.so && chmod 666 %s/system/core.so",
      H.q(lib), so, H.q(lib), H.q(lib)))))
    local rc, out = run_in(lib, "LUASVC_LUA_CPATH=" .. H.q(lib .. "/?.so"), path)
    assert.equal(2, rc, out)
    assert.truthy(out:find("module " .. lib .. "/system/core.so is writable by group and others", 1, true), out)
    assert.equal(0, (H.sh("chmod 644 " .. H.q(lib .. "/system/core.so"))))
    rc, out = run_in(lib, "LUASVC_LUA_CPATH=" .. H.q(lib .. "/?.so"), path)
    assert.equal(0, rc, out)
  end)
end)

describe("a mailslot", function()
  after_each(cleanup_extra)

  it("gives a raw writer's message whole, or reports it, never altered", function()
    local p = H.start({ scripts = { (script([[
local luasvc = require "luasvc"
local S = { name = "bigslot" }
function S.run(ctx)
  local r = assert(luasvc.mailslot.create("big"))
  ctx:log("info", "READY")
  while not ctx:stopping() do
    local m, err, code = r:read(100)
    if m then
      ctx:log("info", "READ:%d:%s", #m, m:sub(1, 4))
    elseif code then
      ctx:log("info", "ERR:%s:%s", code, err)
    elseif err == "stopping" then
      break
    end
  end
  r:close()
end
return S
]])) } })
    H.wait_log(p, "READY")
    local sock = p.rt .. "/slots/big"
    local function send(bytes)
      local f = p.dir .. "/packet"
      H.write(f, bytes)
      local rc, out = H.sh(H.q(H.rawsend) .. " --packet " .. H.q(sock) .. " " .. H.q(f))
      assert.equal(0, rc, out)
    end
    send("M" .. string.rep("x", 70000)) -- over the 65536 a message may have
    H.wait_log(p, "ERR:truncated:a message of 70000 bytes, over the 65536")
    send("hello") -- no header: not from a slot writer
    H.wait_log(p, "ERR:malformed:a message of 5 bytes without the slot's header")
    send("M" .. string.rep("y", 65536)) -- the largest there is, whole
    H.wait_log(p, "READ:65536:yyyy")
    send("Mok")
    H.wait_log(p, "READ:2:ok")
    assert.falsy(H.log(p):find("READ:65536:xxxx", 1, true), H.log(p))
    assert.falsy(H.log(p):find("READ:4:ello", 1, true), H.log(p))
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p, 5))
  end)
end)
