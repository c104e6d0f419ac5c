-- supervisor.lua - keeps a child command running.
--
--   luasvc run examples/supervisor.lua -- COMMAND [ARGS...]
--
-- Starts COMMAND (its output goes where the host's does), and when it dies
-- starts it again after a back-off that doubles from 100 ms to 10 s (and
-- starts over once a child has lived ten times its back-off). On stop the
-- child gets SIGTERM, stop waits for it to exit (SIGKILL if it has not
-- within the stop timeout's last second), and it is reaped: no orphan is
-- left. Written in the coroutine style: run waits for the child's exit
-- with a queue (ctx:queue), the back-off is ctx:sleep.
--
-- Edit it while it runs and the child goes on: when run is asked to
-- return for a hot edit (ctx:reloading()), it leaves the child running,
-- its handle and queue in ctx.data, and returns; the new version's run
-- finds them there and waits for that child, instead of starting a
-- second one (README: Hot editing, Work in flight).
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

-- Start the command once: the handle, its pid and the queue its exit goes to.
local function launch(ctx)
  local cmd = ctx.data.cmd
  local exited = ctx:queue()
  local child, pid = uv.spawn(cmd[1], { args = { table.unpack(cmd, 2) }, stdio = { nil, 1, 2 } },
    exited)
  if not child then return nil, pid end
  ctx.data.starts = ctx.data.starts + 1
  ctx.data.child, ctx.data.pid, ctx.data.exited = child, pid, exited
  ctx.data.began = uv.now()
  ctx:log("info", "started %s (pid %d, start %d)", cmd[1], pid, ctx.data.starts)
  return child
end

function S.run(ctx)
  local backoff = ctx.data.backoff or MIN_BACKOFF
  while true do
    -- a child the previous version handed over, or a new one
    local child, err = ctx.data.child, nil
    if child then
      ctx:log("info", "took over pid %d", ctx.data.pid)
    else
      child, err = launch(ctx)
    end
    if child then
      local ok, code, signal = ctx.data.exited:get() -- nil, "stopping" on a stop or a hot edit
      if not ok then
        if ctx:reloading() then                       -- the child stays; the next run takes it
          ctx.data.backoff = backoff
          ctx:log("info", "handing pid %d over to the new version", ctx.data.pid)
        end
        return                                        -- a stop: stop ends the child
      end
      child:close()
      ctx.data.child = nil
      ctx:log("warning", "pid %d exited (code %d, signal %d)", ctx.data.pid, code, signal)
      if uv.now() - ctx.data.began >= 10 * backoff then backoff = MIN_BACKOFF end
    else
      ctx:log("error", "cannot start %s: %s", ctx.data.cmd[1], err)
    end
    ctx:log("info", "restarting in %d ms", backoff)
    if not ctx:sleep(backoff) then
      ctx.data.backoff = backoff
      return
    end
    backoff = math.min(backoff * 2, MAX_BACKOFF)
  end
end

function S.stop(ctx)
  local child = ctx.data.child
  if not child then return end
  child:kill("sigterm")
  local ok, code, signal = ctx.data.exited:get(S.stop_timeout - 1000)
  if not ok then
    ctx:log("warning", "pid %d ignored SIGTERM: killing it", ctx.data.pid)
    child:kill("sigkill")
    ok, code, signal = ctx.data.exited:get()
  end
  child:close()
  ctx:log("info", "pid %d stopped (code %s, signal %s) after %d start(s)", ctx.data.pid, code,
    signal, ctx.data.starts)
end

return S
