--[[
helper.lua - what the end-to-end specs share: run the real luasvc binary on
fixture scripts as background processes, poll for what they do with a
deadline (never a fixed sleep), and leave nothing behind.

Every spec file calls H.cleanup() in after_each: it kills what is still
running (SIGKILL, by the pids this helper started) and removes temp dirs.
]]
local system = require "system"
local json = require "dkjson"

local H = {}
_G.H = H

local function abs(p) return p:sub(1, 1) == "/" and p or (os.getenv("PWD") .. "/" .. p) end
H.bin = abs(os.getenv("LUASVC_BIN") or "build/luasvc")
H.rawsend = abs(os.getenv("LUASVC_RAWSEND") or "build/rawsend")
H.fixtures = "spec/fixtures/"

local procs, dirs = {}, {}

function H.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
H.read = read

function H.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A script in a fresh private directory (name: its file name, default
-- svc.lua); returns its path and the directory.
function H.script(text, name)
  local d = H.tmpdir()
  local path = d .. "/" .. (name or "svc.lua")
  H.write(path, text)
  return path, d
end

function H.sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, how, code = p:close()
  return (how == "exit" and code) or (ok and 0) or 128 + (code or 0), out
end

-- A private runtime directory (mode 0700) and scratch space for one test.
function H.tmpdir()
  local _, out = H.sh("mktemp -d /tmp/luasvc-spec.XXXXXX")
  local d = out:gsub("%s+$", "")
  dirs[#dirs + 1] = d
  H.sh("chmod 700 " .. H.q(d))
  return d
end

-- A private directory outside /tmp and /var/tmp (mode 0755), for a script
-- a unit with PrivateTmp= must still see (a checkout may itself be under
-- /tmp): under /var/lib where the tests may write there, else $HOME.
function H.dir_outside_tmp()
  local base = os.execute("test -w /var/lib") and "/var/lib" or os.getenv("HOME")
  local _, out = H.sh("mktemp -d " .. H.q(base .. "/luasvc-spec.XXXXXX"))
  local d = out:gsub("%s+$", "")
  dirs[#dirs + 1] = d
  H.sh("chmod 755 " .. H.q(d))
  return d
end

-- The [Service] lines a test's systemd drop-in adds under AddressSanitizer
-- (scripts/test sets ASAN_OPTIONS for that suite), so that its runtime
-- works inside the sandbox `luasvc install` writes: LeakSanitizer stops
-- the world at exit with ptrace, which is not in @system-service (EPERM,
-- then "LeakSanitizer has encountered a fatal error", Result=signal).
-- ThreadSanitizer needs nothing. "" for a plain build: the specs then run
-- under the sandbox as written.
function H.sanitizer_unit_lines()
  return os.getenv("ASAN_OPTIONS") and "SystemCallFilter=@debug\n" or ""
end

function H.wait_for(fn, timeout, what)
  local deadline = system.monotime() + (timeout or 5)
  while true do
    local v = fn()
    if v then return v end
    if system.monotime() > deadline then
      error("timed out after " .. (timeout or 5) .. " s waiting for " .. (what or "a condition"), 2)
    end
    system.sleep(0.01)
  end
end

--[[ Start `luasvc run` in the background.
  opts.scripts: list of script paths; opts.args: start arguments;
  opts.rt: runtime dir (default: a new one); opts.env: extra "K=V" prefix;
  opts.prefix: a command the binary runs under (unshare ...);
  opts.bin: another luasvc binary (an installed one).
Returns a proc: {pid, rt, out, err, rcfile}. ]]
function H.start(opts)
  local d = H.tmpdir()
  local p = { rt = opts.rt or (d .. "/rt"), dir = d }
  p.out, p.err, p.rcfile, p.pidfile = d .. "/out", d .. "/err", d .. "/rc", d .. "/pid"
  local cmd = { opts.prefix or "", H.q(opts.bin or H.bin), "run" }
  for _, o in ipairs(opts.options or {}) do cmd[#cmd + 1] = H.q(o) end
  for _, s in ipairs(opts.scripts) do cmd[#cmd + 1] = H.q(s) end
  if opts.args then
    cmd[#cmd + 1] = "--"
    for _, a in ipairs(opts.args) do cmd[#cmd + 1] = H.q(a) end
  end
  local line = string.format(
    "(LUASVC_RUNTIME_DIR=%s %s %s >%s 2>%s & echo $! >%s; wait $!; echo $? >%s) >/dev/null 2>&1 &",
    H.q(p.rt), opts.env or "", table.concat(cmd, " "), H.q(p.out), H.q(p.err), H.q(p.pidfile),
    H.q(p.rcfile))
  os.execute(line)
  p.pid = tonumber(H.wait_for(function()
    local s = read(p.pidfile)
    return s and s:match("%d+")
  end, 5, "the host to start"))
  procs[#procs + 1] = p
  H.register(p.pid)
  return p
end

-- A process a spec started, in the registry ctest's spec.leftovers reads
-- at the end of the suite ($LUASVC_SPEC_HOSTS, one file a pid holding its
-- start time): a spec killed at its timeout never runs H.cleanup, and what
-- it started must not outlive the suite. H.cleanup takes the entry out.
local registry = os.getenv("LUASVC_SPEC_HOSTS")
local function start_time(pid)
  local stat = read("/proc/" .. pid .. "/stat")
  return stat and stat:match("%) %S+" .. (" %S+"):rep(18) .. " (%d+)")
end

function H.register(pid)
  if not registry then return end
  local t = start_time(pid)
  if not t then return end
  os.execute("mkdir -p " .. H.q(registry))
  local f = io.open(registry .. "/" .. pid, "w")
  if f then f:write(t, "\n"); f:close() end
end

local function unregister(pid)
  if registry then os.remove(registry .. "/" .. pid) end
end

function H.log(p) return read(p.err) or "" end

function H.wait_log(p, pattern, timeout)
  return H.wait_for(function() return H.log(p):find(pattern) end, timeout or 5,
    "log line matching '" .. pattern .. "'; log so far:\n" .. H.log(p))
end

function H.exit_code(p)
  local s = read(p.rcfile)
  return s and tonumber(s:match("%d+"))
end

function H.wait_exit(p, timeout)
  return H.wait_for(function() return H.exit_code(p) end, timeout or 10,
    "the host to exit; log so far:\n" .. H.log(p))
end

function H.alive(p)
  return H.exit_code(p) == nil and os.execute("kill -0 " .. p.pid .. " 2>/dev/null") == true
end

function H.kill(p, sig)
  os.execute("kill -" .. (sig or "TERM") .. " " .. p.pid .. " 2>/dev/null")
end

-- Run the luasvc client against p's runtime dir. Returns exit code, output.
function H.client(p, ...)
  local args = {}
  for _, a in ipairs({ ... }) do args[#args + 1] = H.q(a) end
  return H.sh(string.format("LUASVC_RUNTIME_DIR=%s %s %s", H.q(type(p) == "table" and p.rt or p),
    H.q(H.bin), table.concat(args, " ")))
end

function H.status(p, name)
  local rc, out = H.client(p, "status", name, "--json")
  if rc ~= 0 then return nil, out end
  return json.decode(out)
end

function H.status_all(p)
  local rc, out = H.client(p, "status", "--json")
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = json.decode(line) end
  return list, rc
end

function H.wait_state(p, name, state, timeout)
  return H.wait_for(function()
    local st = H.status(p, name)
    return st and st.state == state and st
  end, timeout or 5, name .. " to be " .. state .. "; log so far:\n" .. H.log(p))
end

-- Send raw bytes to a service's endpoint; returns the reply (or nil).
function H.raw(p, name, bytes)
  local f = p.dir .. "/raw"
  H.write(f, bytes)
  local rc, out = H.sh(H.q(H.rawsend) .. " " .. H.q(p.rt .. "/" .. name .. ".sock") .. " " .. H.q(f))
  return rc == 0 and out or nil, out
end

-- Run luasvc to completion (check, bad scripts): exit code, stderr+stdout.
function H.run_sync(args, timeout)
  local d = H.tmpdir()
  local cmd = { "timeout", tostring(timeout or 20), H.q(H.bin) }
  for _, a in ipairs(args) do cmd[#cmd + 1] = H.q(a) end
  return H.sh("LUASVC_RUNTIME_DIR=" .. H.q(d .. "/rt") .. " " .. table.concat(cmd, " "))
end

function H.cleanup()
  for _, p in ipairs(procs) do
    if H.exit_code(p) == nil then
      os.execute("kill -KILL " .. p.pid .. " 2>/dev/null")
      pcall(H.wait_exit, p, 5)
    end
    unregister(p.pid)
  end
  procs = {}
  for _, d in ipairs(dirs) do os.execute("rm -rf " .. H.q(d)) end
  dirs = {}
end

function H.count(p, plain)
  local n, i = 0, 1
  local log = H.log(p)
  while true do
    local s, e = log:find(plain, i, true)
    if not s then return n end
    n, i = n + 1, e + 1
  end
end

-- Seconds between the host's log lines "NAME: FROM" and "NAME: TO..."
-- (timestamps the host wrote, so process start and exit are not counted).
function H.log_interval(p, name, from, to)
  local function at(msg)
    local h, m, s = H.log(p):match("\n?%d+%-%d+%-%d+ (%d+):(%d+):([%d%.]+) %a+ +" .. name .. ": " .. msg)
    return h and (tonumber(h) * 3600 + tonumber(m) * 60 + tonumber(s))
  end
  local a, b = at(from), at(to)
  assert(a and b, "no '" .. from .. "' or '" .. to .. "' line for " .. name .. " in:\n" .. H.log(p))
  return b - a
end

-- Lines of a log that carry "tag:" messages, in order.
function H.tagged(p, tag)
  local out = {}
  for v in H.log(p):gmatch(tag .. ":([^\n]*)") do out[#out + 1] = v end
  return out
end

return H
