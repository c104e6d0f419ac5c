-- supervisor.lua - keeps a child command running.
--
--   luasvc run examples/supervisor.lua -- COMMAND [ARGS...]
--
-- Runs COMMAND with ctx:exec (each line it writes goes to the log), and
-- when it ends starts it again after a back-off that doubles from 100 ms
-- to 10 s (and starts over once a child has lived ten times its
-- back-off). On stop the command's whole process tree gets SIGTERM, and
-- the runtime SIGKILLs what is left after the grace and reaps it: nothing
-- the command started, however detached, outlives the service.
--
-- The loop is a task (ctx:spawn) waiting in ctx:exec. A hot edit replaces
-- run, not the task: the child goes on, and the new version's run finds
-- the loop running (ctx.data.supervising) instead of starting a second
-- one (README: Hot editing, Work in flight).
local uv = require "luv"

local S = {
  name = "supervisor",
  description = "Keeps a command running",
  accepts = { "stop", "shutdown" },
  stop_timeout = 10000,
}

local MIN_BACKOFF, MAX_BACKOFF = 100, 10000

function S.start(ctx, args)
  if not args[1] then
    error("supervisor: no command: luasvc run supervisor.lua -- COMMAND [ARGS...]", 0)
  end
  ctx.data.cmd = args
  ctx.data.starts = 0
end

local function started(ctx, pid)
  ctx.data.starts, ctx.data.pid = ctx.data.starts + 1, pid
  ctx:log("info", "started %s (pid %d, start %d)", ctx.data.cmd[1], pid, ctx.data.starts)
end

-- The loop: run the command, wait for its end, back off, again.
local function supervise(ctx)
  local backoff = MIN_BACKOFF
  while true do
    local began = uv.now()
    local r, err = ctx:exec(ctx.data.cmd, { on_start = function(pid) started(ctx, pid) end })
    if not r then
      ctx:log("error", "%s", err)
    elseif r.stopped then -- the service stops: the runtime ends the tree
      ctx:log("info", "stopping pid %d after %d start(s)", ctx.data.pid, ctx.data.starts)
      return
    else
      ctx:log("warning", "pid %d exited (code %d, signal %d)", ctx.data.pid, r.code or 0, r.signal)
      if uv.now() - began >= 10 * backoff then backoff = MIN_BACKOFF end
    end
    ctx:log("info", "restarting in %d ms", backoff)
    if not ctx:sleep(backoff) then return end
    backoff = math.min(backoff * 2, MAX_BACKOFF)
  end
end

function S.run(ctx)
  if ctx.data.supervising then
    ctx:log("info", "took over pid %d", ctx.data.pid)
  else
    ctx.data.supervising = true
    ctx:spawn(supervise, ctx)
  end
  while ctx:sleep(60000) do end
  if ctx:reloading() then
    ctx:log("info", "handing pid %d over to the new version", ctx.data.pid)
  end
end

return S
