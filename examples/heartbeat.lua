-- heartbeat.lua - a service that beats once a second.
--
--   luasvc run examples/heartbeat.lua          (Ctrl+C stops it)
--   luasvc pause heartbeat / luasvc continue heartbeat
--   luasvc control heartbeat 200               (a user-defined control)
--   luasvc reload heartbeat                    (PARAMCHANGE)
--   luasvc status heartbeat --json
--   luasvc install examples/heartbeat.lua --systemd --user   (a systemd unit)
-- (typed for editors: README, "Editor support")
---@type luasvc.Script
local S = {
  name = "heartbeat",
  display_name = "Heartbeat",
  description = "Writes a beat every second",
  accepts = { "stop", "pause_continue", "shutdown", "paramchange" },
  stop_timeout = 5000,
}

function S.start(ctx, args)
  ctx.data.beats = ctx.data.beats or 0
  ctx.data.interval = tonumber(args[1]) or 1000
  ctx:log("info", "starting; a beat every %d ms", ctx.data.interval)
end

function S.run(ctx)
  while ctx:sleep(ctx.data.interval) do
    ctx.data.beats = ctx.data.beats + 1
    ctx:log("info", "beat %d", ctx.data.beats)
    ctx:status(("beat %d"):format(ctx.data.beats)) -- systemctl status shows it

  end
end

function S.pause(ctx) ctx:log("info", "pausing after %d beats", ctx.data.beats) end
function S.continue(ctx) ctx:log("info", "continuing") end
function S.paramchange(ctx) ctx:log("info", "paramchange: nothing to re-read") end

function S.stop(ctx)
  ctx:log("info", "stopped after %d beats", ctx.data.beats)
end

S.controls = {
  [200] = function(ctx, code)
    ctx:log("info", "control %d: %d beats so far", code, ctx.data.beats)
  end,
}

return S
