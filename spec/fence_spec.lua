--[[
fence_spec.lua - a service's reach ends at its service (DESIGN §9,
runtime/engine/fence.c): what a script does with luv, lfs, lua-cjson or a
planted file cannot take the process's signals, threads, thread pool,
working directory or C modules' buffers from the host or a sibling. Each
case runs a hostile service beside a sibling whose stop must run and whose
state must stay right, in one console host. Real processes, polled with
deadlines.
]]
require "spec.helper"

-- The sibling: ticks, answers a stat through the pool, logs its stop.
local SIB = [[
local uv = require "luv"
local S = { name = "sib", handler_timeout = 300, accepts = { "stop", "paramchange" } }
MARK = "sib-v1"
function S.run(ctx) while ctx:sleep(20) do end end
function S.stop(ctx) ctx:log("info", "SIB-STOP") end
S.controls = {
  [128] = function(ctx)
    local ok, err, st = ctx:await(uv.fs_stat, "/")
    ctx:log("info", "SIB-STAT:%s", tostring(ok and st and st.type))
  end,
  [129] = function(ctx) while true do end end,
  [130] = function(ctx) ctx:log("info", "SIB-MARK:%s", MARK) end,
}
return S
]]

local function start(hostile, opts)
  opts = opts or {}
  local path, d = H.script(hostile, "fenced.lua")
  if opts.before then opts.before(d) end
  local sib = d .. "/sib.lua"
  H.write(sib, SIB)
  local p = H.start({ scripts = { path, sib }, options = opts.options, env = opts.env })
  H.wait_state(p, "fenced", "RUNNING", opts.wait)
  H.wait_state(p, "sib", "RUNNING")
  return p, path, d
end

-- The sibling answers, then everything stops through SIGTERM: its stop
-- runs and the host exits 0.
local function sibling_fine(p)
  local before = H.count(p, "SIB-STAT:directory")
  local rc, out = H.client(p, "control", "sib", "128")
  assert.equal(0, rc, out)
  H.wait_for(function() return H.count(p, "SIB-STAT:directory") > before end, 10,
    "the sibling's pool request; log:\n" .. H.log(p))
  assert.equal("RUNNING", H.status(p, "sib").state)
end

local function stop_all(p, code)
  H.kill(p, "TERM")
  assert.equal(code or 0, H.wait_exit(p, 15), H.log(p))
  assert.truthy(H.log(p):find("SIB-STOP", 1, true), H.log(p))
end

describe("a service cannot take the host's", function()
  after_each(H.cleanup)

  it("signals (TERM, INT, HUP, PIPE, CHLD, the interrupt's), nor kill the host; others it may", function()
    local p = start([[
local uv = require "luv"
local S = { name = "fenced" }
function S.start(ctx)
  for _, s in ipairs { "sigterm", "sigint", "sighup", "sigpipe", "sigchld", 15, 1, 13, 37 } do
    local ok, err = pcall(function() uv.new_signal():start(s, function() end) end)
    ctx:log("info", "SIG:%s:%s:%s", tostring(s), tostring(ok), tostring(err and err:match("is the host's")))
    local ok2 = pcall(uv.signal_start, uv.new_signal(), s, function() end)
    ctx:log("info", "FSIG:%s:%s", tostring(s), tostring(ok2))
  end
  local ok, err = pcall(uv.kill, uv.os_getpid(), "sigkill")
  ctx:log("info", "KILL:%s", tostring(ok))
  local usr = uv.new_signal()
  usr:start("sigusr1", function() ctx:log("info", "USR1") end)
  ctx.data.usr = usr
end
function S.run(ctx) while ctx:sleep(20) do end end
return S
]])
    local log = H.log(p)
    for _, s in ipairs { "sigterm", "sigint", "sighup", "sigpipe", "sigchld", "15", "1", "13", "37" } do
      assert.truthy(log:find("SIG:" .. s .. ":false:is the host's", 1, true), s .. "\n" .. log)
      assert.truthy(log:find("FSIG:" .. s .. ":false", 1, true), s .. "\n" .. log)
    end
    assert.truthy(log:find("KILL:false", 1, true), log)
    H.kill(p, "USR1")
    H.wait_log(p, "USR1", 5)
    -- SIGHUP is still the host's: a reload, not the host's end
    H.kill(p, "HUP")
    H.wait_log(p, "sib: paramchange", 5)
    assert.truthy(H.alive(p))
    sibling_fine(p)
    -- the interrupt still reaches a sibling's spinning handler
    assert.equal(0, (H.client(p, "control", "sib", "129")))
    H.wait_log(p, "controls%[129%] did not finish within handler_timeout", 5)
    stop_all(p)
  end)

  it("threads: uv.new_thread, uv.new_work and uv.queue_work raise, naming the alternatives", function()
    local p = start([[
local uv = require "luv"
local S = { name = "fenced" }
function S.start(ctx)
  for _, f in ipairs { "new_thread", "new_work", "queue_work" } do
    local ok, err = pcall(uv[f], function() os.exit(7) end)
    ctx:log("info", "THREAD:%s:%s:%s", f, tostring(ok), tostring(err and err:match("ctx:spawn")))
  end
end
function S.run(ctx) while ctx:sleep(20) do end end
return S
]])
    for _, f in ipairs { "new_thread", "new_work", "queue_work" } do
      assert.truthy(H.log(p):find("THREAD:" .. f .. ":false:ctx:spawn", 1, true), H.log(p))
    end
    sibling_fine(p)
    stop_all(p)
  end)

  it("thread pool: a service's requests that never end hold only its own places; a stop does not wait on them", function()
    local _, d0 = H.script("", "x.lua")
    local fifo = d0 .. "/fifo"
    assert.equal(0, (H.sh("mkfifo " .. H.q(fifo))))
    local p = start(string.format([[
local uv = require "luv"
local S = { name = "fenced", stop_timeout = 2000 }
function S.start(ctx)
  -- more than the whole pool (4 places a service + 4 = 12 here): without a
  -- bound of the service's own, the sibling's request would never run
  for i = 1, 16 do uv.fs_open(%q, "r", 420, function() ctx:log("info", "OPENED") end) end
  ctx:log("info", "ASKED")
end
function S.run(ctx) while ctx:sleep(20) do end end
return S
]], fifo))
    H.wait_log(p, "ASKED", 5)
    sibling_fine(p)
    -- its stop ends within stop_timeout, with no error; the sibling goes on
    local t0 = require("system").monotime()
    assert.equal(0, (H.client(p, "stop", "fenced")))
    H.wait_state(p, "fenced", "STOPPED", 10)
    assert.truthy(require("system").monotime() - t0 < 4, "the stop waited on the pool")
    local st = H.status(p, "fenced")
    assert.equal(0, st.win32_exit_code, H.log(p))
    assert.truthy(H.log(p):find("left to them", 1, true), H.log(p))
    sibling_fine(p)
    stop_all(p)
  end)

  it("working directory: lfs.chdir and uv.chdir raise; a sibling started by a relative path is still watched", function()
    local hostile = [[
local uv = require "luv"
local lfs = require "lfs"
local S = { name = "fenced" }
function S.start(ctx)
  local ok1, e1 = pcall(lfs.chdir, "/")
  local ok2, e2 = pcall(uv.chdir, "/")
  ctx:log("info", "CHDIR:%s:%s:%s", tostring(ok1), tostring(ok2), tostring(e1 and e1:match("host's")))
end
function S.run(ctx) while ctx:sleep(20) do end end
return S
]]
    local d = H.tmpdir()
    H.write(d .. "/fenced.lua", hostile)
    H.write(d .. "/sib.lua", SIB)
    local rt = d .. "/rt"
    local p = H.start({ rt = rt, prefix = "sh -c 'cd \"$1\" && shift && exec \"$@\"' cd " .. H.q(d),
      options = { "--watch-interval", "20" }, scripts = { "fenced.lua", "sib.lua" } })
    H.wait_state(p, "fenced", "RUNNING")
    H.wait_state(p, "sib", "RUNNING")
    assert.truthy(H.log(p):find("CHDIR:false:false:host's", 1, true), H.log(p))
    H.write(d .. "/sib.lua", (SIB:gsub('MARK = "sib%-v1"', 'MARK = "sib-v2"')))
    H.wait_log(p, "sib: reloaded", 10)
    assert.equal(0, (H.client(p, "control", "sib", "130")))
    H.wait_log(p, "SIB%-MARK:sib%-v2", 5)
    stop_all(p)
  end)
end)

describe("what else belongs to the process", function()
  after_each(H.cleanup)

  it("identity, environment, locale, title, priority raise; the fences' originals and a second luv are out of reach", function()
    -- a library that calls itself luv (the system's luv.so would do; this
    -- one needs only a compiler)
    local _, d0 = H.script("", "x.lua")
    local so = d0 .. "/fakeluv.so"
    H.write(d0 .. "/fakeluv.c", "int luaopen_luv(void *L) { (void)L; return 0; }\n")
    if H.sh("cc -shared -fPIC -o " .. H.q(so) .. " " .. H.q(d0 .. "/fakeluv.c") .. " 2>&1") ~= 0 then
      return pending("needs cc to build a library that exports luaopen_luv")
    end
    local p = start(string.format([[
local uv = require "luv"
local S = { name = "fenced" }
function S.start(ctx)
  local function try(what, f, ...)
    local ok, err = pcall(f, ...)
    ctx:log("info", "TRY:%%s:%%s:%%s", what, tostring(ok), tostring(err))
  end
  try("setuid", uv.setuid, 65534)
  try("setgid", uv.setgid, 65534)
  try("os_setenv", uv.os_setenv, "LUASVC_FENCE_SPEC", "fenced")
  try("os_unsetenv", uv.os_unsetenv, "PATH")
  try("set_process_title", uv.set_process_title, "fenced")
  try("setlocale", os.setlocale, "C.UTF-8")
  try("os_setpriority", uv.os_setpriority, 0, 10)
  ctx:log("info", "LOCALE:%%s", tostring(os.setlocale()))
  for _, f in ipairs { "signal_start", "kill", "spawn", "fs_stat", "write", "close" } do
    ctx:log("info", "UPVALUE:%%s:%%s:%%s", f, tostring(debug.getupvalue(uv[f], 1)),
      tostring(debug.setupvalue(uv[f], 1, print)))
  end
  ctx:log("info", "UPVALUE:sethook:%%s", tostring(debug.getupvalue(debug.sethook, 1)))
  local f, err, where = package.loadlib(%q, "luaopen_luv")
  ctx:log("info", "LOADLIB:%%s:%%s:%%s", tostring(f), tostring(err), tostring(where))
  package.loaded.luv, package.preload.luv = nil, nil
  package.cpath = %q .. "/?.so"
  os.rename(%q, %q .. "/luv.so")
  try("require", require, "luv")
end
function S.run(ctx) while ctx:sleep(20) do end end
return S
]], so, d0, so, d0))
    local log = H.log(p)
    for _, f in ipairs { "setuid", "setgid", "os_setenv", "os_unsetenv", "set_process_title", "setlocale",
      "os_setpriority" } do
      assert.truthy(log:find("TRY:" .. f .. ":false:", 1, true), f .. ":\n" .. log)
    end
    assert.truthy(log:find("TRY:os_setenv:false:[^\n]*opts.env"), log)
    assert.truthy(log:find("LOCALE:C\n", 1, true), log)
    for _, f in ipairs { "signal_start", "kill", "spawn", "fs_stat", "write", "close", } do
      assert.truthy(log:find("UPVALUE:" .. f .. ":nil:nil", 1, true), f .. ":\n" .. log)
    end
    assert.truthy(log:find("UPVALUE:sethook:nil", 1, true), log)
    assert.truthy(log:find("LOADLIB:nil:[^\n]*is a copy of luv, which the runtime has already[^\n]*:open"), log)
    assert.truthy(log:find("TRY:require:false:error loading module 'luv'", 1, true), log)
    assert.equal(2, select(2, log:gsub("is a copy of luv", "")), log)
    -- the host is who it was, and the sibling's world is as it was
    assert.equal(0, (H.client(p, "control", "sib", "130")))
    H.wait_log(p, "SIB%-MARK:sib%-v1", 5)
    assert.falsy(H.read("/proc/" .. p.pid .. "/environ"):find("LUASVC_FENCE_SPEC", 1, true))
    sibling_fine(p)
    stop_all(p)
  end)
end)

describe("a C module's buffers", function()
  after_each(H.cleanup)

  for _, mod in ipairs { "cjson", "cjson.safe" } do
  it(mod .. ": lua-cjson's encode buffer does not outlive a failed encode", function()
    local p = start([[
local cjson = require "]] .. mod .. [["
local S = { name = "fenced", memory_limit = 4 * 1024 * 1024 }
function S.start(ctx)
  local big = string.rep("x", 1024 * 1024)
  local t = {}
  for i = 1, 40 do t[i] = big end
  t[41] = print -- a value JSON has no form for: it fails after 40 MiB were written
  big = nil
  local ok, err = pcall(cjson.encode, t)
  ctx:log("info", "ENCODE:%s", tostring(ok and err ~= nil))
  t = nil
  collectgarbage()
  ctx:log("info", "ENCODED")
end
function S.run(ctx) while ctx:sleep(20) do end end
return S
]], { wait = 30 })
    H.wait_log(p, "ENCODED", 10)
    assert.truthy(H.log(p):find("ENCODE:false", 1, true), H.log(p))
    -- (AddressSanitizer keeps freed memory in quarantine: RSS says nothing there)
    if not os.getenv("ASAN_OPTIONS") then
      local rss = tonumber(H.read("/proc/" .. p.pid .. "/status"):match("VmRSS:%s*(%d+)"))
      assert.truthy(rss < 30 * 1024, "host RSS " .. rss .. " kB after the failed 40 MiB encode")
    end
    sibling_fine(p)
    stop_all(p)
  end)
  end
end)

describe("a refused version", function()
  after_each(H.cleanup)

  it("leaves nothing running: its pool requests' callbacks never run, its tasks end", function()
    local p, path = start([[
local S = { name = "fenced", handler_timeout = 2000 }
MARK = "v1"
function S.run(ctx) while ctx:sleep(20) do end end
S.controls = { [128] = function(ctx) ctx:log("info", "MARK:%s", MARK) end }
return S
]], { options = { "--watch-interval", "20" } })
    -- v2's top level asks the pool, makes requests on handles (closing
    -- the refused version's handles cancels those: luv calls them with
    -- ECANCELED) and closes handles with a callback, then fails: no
    -- callback of it may run
    H.write(path, [[
local uv = require "luv"
for i = 1, 3 do uv.fs_stat("/", function() MARK = "v2-callback" end) end
local t = uv.new_tcp()
t:connect("127.0.0.1", 9, function(err) MARK = "v2-connect:" .. tostring(err) end)
local p = uv.new_pipe()
pcall(p.connect, p, "/nonexistent/luasvc.sock", function(err) MARK = "v2-pipe:" .. tostring(err) end)
uv.tcp_connect(uv.new_tcp(), "127.0.0.1", 9, function(err) MARK = "v2-tcp_connect:" .. tostring(err) end)
uv.new_timer():close(function() MARK = "v2-close" end)
uv.close(uv.new_idle(), function() MARK = "v2-uv.close" end)
error("v2 is refused")
]])
    H.wait_log(p, "reload refused.*v2 is refused", 10)
    -- v3's reload() spawns a task, then fails: the task ends with it
    H.write(path, [[
local S = { name = "fenced", handler_timeout = 2000 }
function S.run(ctx) while ctx:sleep(20) do end end
function S.reload(ctx)
  ctx:spawn(function() while true do ctx:sleep(10) ctx:log("info", "ZOMBIE") end end)
  ctx:sleep(50)
  error("v3 is refused")
end
return S
]])
    H.wait_log(p, "reload refused.*reload%(%) failed", 10)
    local zombies = H.count(p, "ZOMBIE")
    -- a few turns of the running version later: nothing of v2 or v3 ran
    for _ = 1, 3 do
      local n = H.count(p, "MARK:")
      local rc, out = H.client(p, "control", "fenced", "128")
      assert.equal(0, rc, out .. "\nlog:\n" .. H.log(p))
      H.wait_for(function() return H.count(p, "MARK:") > n end, 5, "MARK")
    end
    assert.falsy(H.log(p):find("MARK:v2", 1, true), H.log(p))
    assert.equal(zombies, H.count(p, "ZOMBIE"), "a refused reload()'s task ran on")
    sibling_fine(p)
    stop_all(p)
  end)
end)

describe("files where the runtime expects regular files", function()
  after_each(H.cleanup)

  it("a FIFO in the script's place is refused at the reload; controls and the stop go on", function()
    local p, path = start([[
local S = { name = "fenced" }
function S.run(ctx) while ctx:sleep(20) do end end
S.controls = { [128] = function(ctx) ctx:log("info", "ALIVE") end }
return S
]], { options = { "--watch-interval", "20" } })
    os.remove(path)
    assert.equal(0, (H.sh("mkfifo -m 644 " .. H.q(path))))
    H.wait_log(p, "not a regular file", 10)
    assert.equal(0, (H.client(p, "control", "fenced", "128")))
    H.wait_log(p, "ALIVE", 5)
    sibling_fine(p)
    stop_all(p)
  end)

  it("a FIFO in a module's place is refused at the reload; controls and the stop go on", function()
    local p, path, d = start([[
local m = require "fencedmod"
local S = { name = "fenced" }
function S.run(ctx) while ctx:sleep(20) do end end
S.controls = { [128] = function(ctx) ctx:log("info", "ALIVE:%s", m.v) end }
return S
]], { options = { "--watch-interval", "20" }, before = function(dir)
      H.write(dir .. "/fencedmod.lua", "return { v = 'v1' }\n")
    end })
    os.remove(d .. "/fencedmod.lua")
    assert.equal(0, (H.sh("mkfifo -m 644 " .. H.q(d .. "/fencedmod.lua"))))
    H.write(path, H.read(path) .. "-- v2\n")
    H.wait_log(p, "module [^\n]*fencedmod.lua is not a regular file", 10)
    assert.equal(0, (H.client(p, "control", "fenced", "128")))
    H.wait_log(p, "ALIVE:v1", 5)
    sibling_fine(p)
    stop_all(p)
  end)

  it("a FIFO planted at --log-file's path after a rotation does not block the reopen", function()
    local d = H.tmpdir()
    local log = d .. "/host.log"
    local p = start([[
local S = { name = "fenced" }
function S.run(ctx) while ctx:sleep(20) do end end
S.controls = { [128] = function(ctx) ctx:log("info", "ALIVE") end }
return S
]], { options = { "--log-file", log } })
    assert.equal(0, (H.sh("mv " .. H.q(log) .. " " .. H.q(log .. ".1") .. " && mkfifo " .. H.q(log))))
    H.kill(p, "HUP")
    -- the host still answers, takes controls and stops on SIGTERM
    for _ = 1, 3 do
      assert.equal(0, (H.client(p, "control", "fenced", "128")))
      assert.truthy(H.status(p, "sib"))
    end
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p, 15))
  end)
end)

describe("closing a service's state", function()
  after_each(H.cleanup)

  it("closes what a __gc finalizer opened during the close; the sibling goes on", function()
    local p = start([[
local uv = require "luv"
local S = { name = "fenced" }
KEEP = setmetatable({}, { __gc = function()
  local t = uv.new_tcp()
  t:bind("127.0.0.1", 0)
  local tm = uv.new_timer()
  tm:start(100000, 0, function() end)
  LATE = { t, tm }
end })
function S.run(ctx) while ctx:sleep(20) do end end
return S
]])
    assert.equal(0, (H.client(p, "stop", "fenced")))
    H.wait_state(p, "fenced", "STOPPED", 10)
    H.wait_log(p, "fenced: 2 handle%(s%) opened while the Lua state closed", 5)
    sibling_fine(p)
    stop_all(p)
  end)
end)
