-- eval_spec.lua - the console: luasvc eval and luasvc attach run Lua
-- inside a running service, on its worker, with the controls' order, under
-- handler_timeout; the service goes on whatever the chunk or its client
-- does; only the host's user and root may, and a script may refuse it.
local F = H.fixtures
local NAME = "console_tick"

local function start()
  local p = H.start { scripts = { F .. "console_tick.lua" } }
  H.wait_state(p, NAME, "RUNNING")
  return p
end

local function eval(p, chunk)
  local f = p.dir .. "/stderr"
  local rc, out = H.sh(string.format("(LUASVC_RUNTIME_DIR=%s %s eval %s %s 2>%s)", H.q(p.rt),
    H.q(H.bin), NAME, H.q(chunk), H.q(f)))
  return rc, out, H.read(f) or ""
end

local function ticks(p)
  local t = H.tagged(p, "TICK")
  return tonumber(t[#t] or 0)
end

local function stop(p)
  H.kill(p, "TERM")
  assert.equal(0, H.wait_exit(p))
end

describe("luasvc eval", function()
  after_each(H.cleanup)

  it("prints what the chunk returns: a number, a string, a nested table", function()
    local p = start()
    local rc, out = eval(p, "return 6*7")
    assert.equal(0, rc)
    assert.equal("42\n", out)
    rc, out = eval(p, "'hello'")            -- a bare expression shows its value
    assert.equal(0, rc)
    assert.equal("hello\n", out)
    rc, out = eval(p, "return {1, 'two', a = {b = true}, ['x y'] = 1.5}, nil, 3")
    assert.equal(0, rc)
    assert.equal('{\n  1,\n  "two",\n  ["x y"] = 1.5,\n  a = {\n    b = true,\n  },\n}\nnil\n3\n', out)
    -- cycles and depth are bounded
    rc, out = eval(p, "local t = {} t.t = t local d = {} local c = d for i = 1, 20 do c.n = {} c = c.n end return t, d")
    assert.equal(0, rc)
    assert.truthy(out:find("t = <cycle>", 1, true), out)
    assert.truthy(out:find("{...}", 1, true), out)
    local log = H.log(p)
    assert.truthy(log:find("console: eval by uid %d+ %(pid %d+%): `return 6%*7`: ok"), log)
    stop(p)
  end)

  it("runs with the script's globals: a global it sets is seen by the next control's handler", function()
    local p = start()
    assert.equal(0, (eval(p, "flag = 'from the console'")))
    assert.equal(0, (H.client(p, "control", NAME, "200")))
    H.wait_log(p, "FLAG:from the console")
    local rc, out = eval(p, "return counter > 0, ctx.name, ... == ctx")
    assert.equal(0, rc)
    assert.equal("true\nconsole_tick\ntrue\n", out)
    stop(p)
  end)

  it("sends what the chunk prints to the caller, not to the log", function()
    local p = start()
    local rc, out = eval(p, "print('printed', 1, nil) return 'r'")
    assert.equal(0, rc)
    assert.equal("printed\t1\tnil\nr\n", out)
    assert.falsy(H.log(p):find("printed\t1", 1, true))
    -- a print left behind in a function goes to the script's print later
    assert.equal(0, (eval(p, "function later() print('LATER-PRINT') end")))
    assert.equal(0, (eval(p, "ctx:spawn(later)")))
    H.wait_for(function() return (H.read(p.out) or ""):find("LATER-PRINT", 1, true) end, 5, "the late print")
    stop(p)
  end)

  it("contains an error and a runaway loop: exit 1, message and traceback, the service goes on", function()
    local p = start()
    local rc, out, err = eval(p, "local function f() error('boom') end f()")
    assert.equal(1, rc)
    assert.equal("", out)
    assert.truthy(err:find("console:1: boom", 1, true), err)
    assert.truthy(err:find("stack traceback:", 1, true), err)
    rc, out, err = eval(p, "error(setmetatable({}, {__tostring = function() return 'an object' end}))")
    assert.equal(1, rc)
    assert.truthy(err:find("an object", 1, true), err)
    rc, out, err = eval(p, "error({})")
    assert.equal(1, rc)
    assert.truthy(err:find("(error object is a table value)", 1, true), err)
    rc, out, err = eval(p, "error()")
    assert.equal(1, rc)
    assert.truthy(err:find("(error object is a nil value)", 1, true), err)
    rc, out, err = eval(p, "return 1 +")
    assert.equal(1, rc)
    assert.truthy(err:find("unexpected symbol", 1, true), err)
    local before = ticks(p)
    rc, out, err = eval(p, "while true do end")
    assert.equal(1, rc)
    assert.truthy(err:find("handler_timeout (1500 ms)", 1, true), err)
    assert.truthy(ticks(p) > before, "run did not tick during the loop")
    H.wait_for(function() return ticks(p) > before + 10 end, 5, "more ticks")
    assert.equal("RUNNING", H.status(p, NAME).state)
    assert.equal(0, (eval(p, "return 1")))
    stop(p)
  end)

  it("may wait: a chunk that sleeps", function()
    local p = start()
    local rc, out = eval(p, "local t0 = counter assert(ctx:sleep(300)) return counter > t0")
    assert.equal(0, rc)
    assert.equal("true\n", out)
    stop(p)
  end)

  it("works while PAUSED, and does not resume run", function()
    local p = start()
    assert.equal(0, (H.client(p, "pause", NAME, "--wait")))
    local rc, a = eval(p, "return ctx:state(), counter")
    assert.equal(0, rc)
    assert.equal("PAUSED", a:match("^(%u+)\n"))
    local rc2, b = eval(p, "ctx:sleep(200) return counter")
    assert.equal(0, rc2)
    assert.equal(a:match("\n(%d+)\n$"), b:match("^(%d+)\n$"))
    assert.equal("PAUSED", H.status(p, NAME).state)
    assert.equal(0, (H.client(p, "continue", NAME, "--wait")))
    stop(p)
  end)

  it("checks the contract's console field: a boolean", function()
    local path = H.script("return { name = 'c', console = 'no', run = function() end }", "c.lua")
    local rc, out = H.run_sync { "check", path }
    assert.equal(2, rc, out)
    assert.truthy(out:find("field 'console' must be a boolean (got string)", 1, true), out)
  end)

  it("is refused by a script with console = false", function()
    local p = H.start { scripts = { F .. "console_off.lua" } }
    H.wait_state(p, "console_off", "RUNNING")
    local rc, out = H.client(p, "eval", "console_off", "return 1")
    assert.equal(1, rc)
    assert.truthy(out:find("refuses the console (console = false)", 1, true), out)
    assert.truthy(H.log(p):find("console: eval by uid %d+ %(pid %d+%): `return 1`: refused"))
    stop(p)
  end)

  it("is refused to another uid", function()
    local _, uid = H.sh("id -u")
    if uid:gsub("%s", "") ~= "0" then
      pending("needs root to act as a second uid")
      return
    end
    local p = start()
    H.sh("chmod 755 " .. H.q(p.dir) .. " " .. H.q(p.rt) .. "; chmod 666 " .. H.q(p.rt .. "/" .. NAME .. ".sock"))
    local rc, out = H.sh("setpriv --reuid=65534 --regid=65534 --clear-groups env LUASVC_RUNTIME_DIR=" ..
      H.q(p.rt) .. " " .. H.q(H.bin) .. " eval " .. NAME .. " 'flag = 1'")
    assert.equal(1, rc, out)
    assert.truthy(out:find("Access is denied.", 1, true), out)
    assert.truthy(H.log(p):find("endpoint: refused a client of uid 65534", 1, true))
    local _, v = eval(p, "return flag")
    assert.equal("nil\n", v)
    stop(p)
  end)

  it("answers malformed EVAL requests with an error and goes on", function()
    local p = start()
    local bad = {
      { "EVAL 5 " .. NAME .. "\nab", "truncated chunk" },
      { "EVAL 2 " .. NAME .. "\nabcd", "trailing bytes after the chunk" },
      { "EVAL 99999999 " .. NAME .. "\n", "bad chunk length" },
      { "EVAL x " .. NAME .. "\n", "bad chunk length" },
      { "EVAL 1 other\nx", "1060" },
      { "LOG " .. NAME .. "x\n", "1060" },
    }
    for _, b in ipairs(bad) do
      local reply, raw = H.raw(p, NAME, b[1])
      assert.truthy(reply, raw)
      assert.truthy(reply:find(b[2], 1, true), ("%q -> %s"):format(b[1], reply))
    end
    -- a binary chunk is refused (text only)
    local rc, _, err = eval(p, "\27Lua")
    assert.equal(1, rc)
    assert.truthy(err:find("binary", 1, true), err)
    local reply = H.raw(p, NAME, "EVAL 8 " .. NAME .. "\nreturn 5")
    assert.truthy(reply:find("R 2\n5\n", 1, true), reply)
    assert.equal("RUNNING", H.status(p, NAME).state)
    stop(p)
  end)

  it("ends the eval of a client that went away, or that does not read, and goes on", function()
    local p = start()
    -- a client killed while its chunk sleeps: the eval ends, the lane is free
    H.sh(string.format("(LUASVC_RUNTIME_DIR=%s timeout -s KILL 0.5 %s eval %s 'ctx:sleep(60000)') >/dev/null 2>&1",
      H.q(p.rt), H.q(H.bin), NAME))
    H.wait_log(p, "ended before it finished: the client went away")
    assert.equal(0, (H.client(p, "control", NAME, "200")))
    H.wait_log(p, "FLAG:")
    -- a client that never reads an answer larger than the bound: dropped
    local py = [[
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
c = b"for i = 1, 200000 do print(string.rep('x', 100)) end return 'done'"
s.sendall(b"EVAL %d %s\n" % (len(c), sys.argv[2].encode()) + c)
time.sleep(3)
]]
    H.write(p.dir .. "/noread.py", py)
    H.sh("timeout 10 python3 " .. H.q(p.dir .. "/noread.py") .. " " .. H.q(p.rt .. "/" .. NAME .. ".sock") .. " " .. NAME)
    H.wait_for(function() return H.count(p, "ended before it finished: the client went away") == 2 end, 5,
      "the second client dropped; log:\n" .. H.log(p))
    assert.falsy((H.read(p.out) or ""):find("xxxxxxxxxx", 1, true), "a dropped client's prints reached the host")
    local rc, out = eval(p, "return 'still here'")
    assert.equal(0, rc)
    assert.equal("still here\n", out)
    stop(p)
  end)

  it("runs beside a hot reload: the reload waits for it, the next eval sees the new version", function()
    local d = H.tmpdir()
    local path = d .. "/console_tick.lua"
    local text = H.read(F .. "console_tick.lua")
    H.write(path, text)
    local p = H.start { scripts = { path } }
    H.wait_state(p, NAME, "RUNNING")
    local f = p.dir .. "/eval-out"
    os.execute(string.format("(LUASVC_RUNTIME_DIR=%s %s eval %s \"print('waiting') ctx:sleep(400) return VERSION\" >%s 2>&1; echo rc=$? >>%s) &",
      H.q(p.rt), H.q(H.bin), NAME, H.q(f), H.q(f)))
    H.wait_for(function() return (H.read(f) or ""):find("waiting", 1, true) end, 5, "the eval to wait")
    H.write(path, text:gsub("counter = 0", "counter = 0\nVERSION = 2", 1))
    H.wait_for(function() return (H.read(f) or ""):find("rc=", 1, true) end, 5, "the eval to end")
    assert.equal("waiting\nnil\nrc=0\n", H.read(f))
    H.wait_log(p, "reloaded")
    local rc, out = eval(p, "return VERSION")
    assert.equal(0, rc)
    assert.equal("2\n", out)
    stop(p)
  end)

  it("lets a chunk keep ctx and its print: both still work after it ended", function()
    local p = start()
    assert.equal(0, (eval(p, "kept_ctx, kept_print = ctx, print")))
    local rc, out = eval(p, "return kept_ctx == ctx, kept_ctx:state()")
    assert.equal(0, rc)
    assert.equal("true\nRUNNING\n", out)
    assert.equal(0, (eval(p, "ctx:spawn(function() kept_print('KEPT-PRINT') end)")))
    H.wait_for(function() return (H.read(p.out) or ""):find("KEPT-PRINT", 1, true) end, 5, "the kept print")
    stop(p)
  end)

  it("is answered when a stop comes while it waits", function()
    local p = start()
    local f = p.dir .. "/eval-out"
    os.execute(string.format("(LUASVC_RUNTIME_DIR=%s %s eval %s \"print('waiting') return ctx:sleep(60000)\" >%s 2>&1; echo rc=$? >>%s) &",
      H.q(p.rt), H.q(H.bin), NAME, H.q(f), H.q(f)))
    H.wait_for(function() return (H.read(f) or ""):find("waiting", 1, true) end, 5, "the eval to wait")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    H.wait_for(function() return (H.read(f) or ""):find("rc=") end, 5, "the eval's client to end")
    local out = H.read(f)
    assert.truthy(out:find("false\nrc=0", 1, true) or out:find("stopping", 1, true), out)
  end)
end)

describe("luasvc attach", function()
  after_each(H.cleanup)

  it("reads chunks from a pipe, without prompts, a chunk over lines until it is whole", function()
    local p = start()
    local rc, out = H.sh(string.format(
      "printf 'return 6*7\\nx_attach = 1\\nt = {\\n  v = x_attach + 1 }\\nreturn t.v\\n=ctx.name\\n' | LUASVC_RUNTIME_DIR=%s %s attach %s",
      H.q(p.rt), H.q(H.bin), NAME))
    assert.equal(0, rc, out)
    assert.equal("42\n2\nconsole_tick\n", out)
    rc, out = H.sh(string.format("printf 'error(\"x\")\\nreturn 1\\n' | LUASVC_RUNTIME_DIR=%s %s attach %s",
      H.q(p.rt), H.q(H.bin), NAME))
    assert.equal(1, rc, out)
    assert.truthy(out:find("console:1: x", 1, true), out)
    assert.truthy(out:find("\n1\n", 1, true) or out:find("^1\n"), out)
    stop(p)
  end)

  it("is interactive on a terminal: prompt, a two-line chunk, log lines as they come, Ctrl+D", function()
    if H.sh("command -v python3 >/dev/null") ~= 0 then
      pending("python3 drives the terminal")
      return
    end
    local p = start()
    local rc, out = H.sh(string.format("LUASVC_RUNTIME_DIR=%s timeout 20 python3 spec/tools/pty_attach.py %s %s",
      H.q(p.rt), H.q(H.bin), NAME))
    assert.equal(0, rc, out)
    assert.equal("RUNNING", H.status(p, NAME).state)
    stop(p)
  end)
end)
