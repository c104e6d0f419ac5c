-- exec.lua - ctx:exec(argv [, opts]): run a command and wait for it, from
-- any task, as Go's exec.CommandContext and Python's
-- asyncio.create_subprocess_exec do (compiled into the runtime; luamod.c
-- gives this chunk its `core`: kill_tree(pid, signal), which signals the
-- child, its group and session and every descendant of theirs).
--
--   local r, err = ctx:exec({ "git", "pull" }, { timeout = 60000, cwd = "/srv/app" })
--   r.code, r.signal, r.timed_out, r.stopped, r.stdout, r.stderr (capture)
--
-- opts.on_start(pid) is called once it runs. Each line the command writes goes to opts.on_line(stream, line) (it runs
-- in the caller's task and may wait) or, without one, to the log (stdout
-- at "info", stderr at "warning", "NAME: line"). opts.timeout (ms) ends
-- the whole tree: SIGTERM, then SIGKILL after opts.grace (ms, default
-- 2000). When the command exits, what is left of its tree is killed and
-- its output read for DRAIN_MS at most (a process that left the tree by
-- setsid, its parent gone, is not found: the service's stop ends it). A stop of the service ends it the same way (the wait of a task
-- that winds down ends at once; the tree is then the stop's to end).
local core = ...
local uv = require "luv"

local type, tostring, error, pairs, ipairs = type, tostring, error, pairs, ipairs
local concat, unpack = table.concat, table.unpack

local MAX_LINE = 65536 -- a longer line is handed over in pieces of this size
local DRAIN_MS = 200   -- after the command's exit, its output's last lines

local KNOWN = {
  timeout = "number", grace = "number", cwd = "string", env = "table", stdin = "string",
  on_line = "function", on_start = "function", capture = "boolean", name = "string",
  max_capture = "number",
}

local function check(argv, opts)
  if type(argv) ~= "table" or argv[1] == nil or argv[1] == "" then
    error("ctx:exec: argv must be a list of strings, the program first (got " ..
      (type(argv) == "table" and "an empty list" or type(argv)) .. ")", 3)
  end
  for i = 1, #argv do
    if type(argv[i]) ~= "string" then
      error("ctx:exec: argv[" .. i .. "] is a " .. type(argv[i]) .. ", not a string", 3)
    end
  end
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("ctx:exec: opts must be a table", 3) end
  for k, v in pairs(opts) do
    local want = KNOWN[k]
    if not want then error("ctx:exec: unknown option '" .. tostring(k) .. "'", 3) end
    if type(v) ~= want then
      error("ctx:exec: option " .. k .. " must be a " .. want .. ", not a " .. type(v), 3)
    end
  end
  for i, kv in ipairs(opts.env or {}) do
    if type(kv) ~= "string" then
      error("ctx:exec: opts.env[" .. i .. "] is a " .. type(kv) .. ", not a string (\"K=V\")", 3)
    end
  end
  for _, k in pairs { "timeout", "grace", "max_capture" } do
    if opts[k] and not (opts[k] > 0) then error("ctx:exec: option " .. k .. " must be > 0", 3) end
  end
  return opts
end

-- Split what a pipe gives into lines: each one q("line", stream, line),
-- then q("eof", stream).
local function reader(q, pipe, stream)
  local buf = ""
  pipe:read_start(function(err, data)
    if data then
      buf = buf .. data
      while true do
        local nl = buf:find("\n", 1, true)
        if not nl and #buf < MAX_LINE then break end
        local cut = nl or MAX_LINE
        q("line", stream, buf:sub(1, nl and cut - 1 or cut))
        buf = buf:sub(cut + 1)
      end
      return
    end
    if #buf > 0 then q("line", stream, buf) end
    buf = ""
    pipe:read_stop()
    q("eof", stream, err)
  end)
end

local function close(h)
  if h and not h:is_closing() then h:close() end
end

local function pipe(fd)
  local p = uv.new_pipe(false)
  p:open(fd)
  return p
end

-- The child started, its exit q("exit", code, signal): the handle that
-- waits for it (closed once it has exited), its pid and its pipes; or nil
-- and the reason. core.spawn (posix_spawn, a pidfd polled) where the
-- runtime has it, else uv.spawn (libuv forks: a short child costs more).
local function start(argv, opts, q)
  if core.spawn then
    local pid, pidfd, out, err, inp = core.spawn(argv, opts.cwd, opts.env, opts.stdin ~= nil)
    if not pid then return nil, pidfd end
    local poll = uv.new_poll(pidfd)
    poll:start("r", function() -- readable: it has exited
      poll:close() -- first: reap closes the pidfd
      q("exit", core.reap(pid))
    end)
    return poll, pid, pipe(out), pipe(err), inp and pipe(inp)
  end
  local out, err = uv.new_pipe(false), uv.new_pipe(false)
  local inp = opts.stdin and uv.new_pipe(false) or nil
  local child, pid = uv.spawn(argv[1], {
    args = { unpack(argv, 2) }, stdio = { inp, out, err }, cwd = opts.cwd, env = opts.env,
  }, function(code, signal) q("exit", code, signal) end)
  if not child then
    close(out); close(err); close(inp)
  end
  return child, pid, out, err, inp
end

return function(ctx, argv, opts)
  opts = check(argv, opts)
  local name = opts.name or argv[1]:match("[^/]*$")
  local q = ctx:queue()
  local child, pid, out, err, inp = start(argv, opts, q)
  if not child then
    return nil, "ctx:exec: cannot start " .. argv[1] .. ": " .. tostring(pid)
  end
  if opts.on_start then opts.on_start(pid) end
  reader(q, out, "stdout")
  reader(q, err, "stderr")
  if inp then
    inp:write(opts.stdin)
    inp:shutdown(function() close(inp) end)
  end
  local timer
  if opts.timeout then
    timer = uv.new_timer()
    timer:start(opts.timeout, 0, function() q("timeout") end)
  end
  local r = { code = nil, signal = 0, timed_out = false, stopped = false }
  local captured = opts.capture and { stdout = {}, stderr = {} } or nil
  local room = opts.max_capture or 1048576
  local open, exited = 2, false
  while open > 0 or not exited do
    local ok, what, a, b = q:get()
    if not ok then -- the service stops: the tree is ended with it
      r.stopped = true
      core.kill_tree(pid, "sigterm")
      break
    elseif what == "line" then
      if captured then
        if room >= #b then
          local t = captured[a]
          t[#t + 1] = b
          room = room - #b - 1
        end
      elseif opts.on_line then
        opts.on_line(a, b)
      else
        ctx:log(a == "stdout" and "info" or "warning", "%s: %s", name, b)
      end
      if captured and opts.on_line then opts.on_line(a, b) end
    elseif what == "eof" then
      open = open - 1
    elseif what == "exit" then
      exited, r.code, r.signal = true, a, b
      if open > 0 then -- a grandchild may hold the pipes: the tree ends with its root
        core.kill_tree(pid, "sigkill")
        timer = timer or uv.new_timer()
        timer:start(DRAIN_MS, 0, function() q("drained") end)
      else
        close(timer)
      end
    elseif what == "drained" then -- one that left the tree (setsid) holds them still
      open = 0
    elseif what == "timeout" then
      r.timed_out = true
      core.kill_tree(pid, "sigterm")
      timer:start(opts.grace or 2000, 0, function() q("kill") end)
    elseif what == "kill" then
      core.kill_tree(pid, "sigkill")
    end
  end
  close(timer)
  if not r.stopped then close(child) end
  close(out); close(err); close(inp)
  if captured then
    r.stdout = concat(captured.stdout, "\n") .. (#captured.stdout > 0 and "\n" or "")
    r.stderr = concat(captured.stderr, "\n") .. (#captured.stderr > 0 and "\n" or "")
  end
  if r.signal ~= 0 then r.code = nil end
  return r
end
