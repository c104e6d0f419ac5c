-- status_poster.lua - a service that tells a client what it is doing: it
-- works through a job in steps and posts its progress to the client's
-- mailslot "status_client" every few seconds, as JSON. Its status_slot
-- field also makes the runtime post its states and log lines to "monitor".
--
--   luasvc listen status_client         (a client; Ctrl+C ends it)
--   luasvc listen monitor               (a monitor, in another terminal)
--   luasvc run examples/status_poster.lua [-- INTERVAL_MS STEPS]
--
-- No client listening is fine: the write says so ("noreader") at once and
-- the service goes on. On Windows the slots are \\.\mailslot\status_client
-- and \\.\mailslot\monitor, readable by any mailslot client.
local luasvc = require "luasvc"
local cjson = require "cjson" -- lua-cjson, preloaded like lfs

-- (typed for editors: README, "Editor support")
---@type luasvc.Script
local S = {
  name = "status_poster",
  display_name = "Status poster",
  description = "Posts its progress to a client's mailslot",
  accepts = { "stop", "pause_continue", "shutdown" },
  stop_timeout = 5000,
  status_slot = "monitor",
}

function S.start(ctx, args)
  ctx.data.interval = tonumber(args[1]) or 3000
  ctx.data.steps = tonumber(args[2]) or 20
  ctx.data.done = ctx.data.done or 0
end

function S.run(ctx)
  local client <close> = assert(luasvc.mailslot.open("status_client"))
  local missed = 0
  while ctx.data.done < ctx.data.steps and ctx:sleep(ctx.data.interval) do
    ctx.data.done = ctx.data.done + 1
    local percent = math.floor(100 * ctx.data.done / ctx.data.steps)
    local ok, err, code = client:write(cjson.encode({
      service = ctx.name, step = ctx.data.done, of = ctx.data.steps, percent = percent,
      text = "working: " .. percent .. "%" }))
    if ok then
      missed = 0
    else
      missed = missed + 1
      if missed == 1 then -- once, not at every step, while nobody listens
        ctx:log("notice", "progress not delivered (%s): %s", code, err)
      end
    end
    ctx:log("info", "step %d of %d", ctx.data.done, ctx.data.steps)
  end
  if ctx.data.done >= ctx.data.steps then
    client:write(cjson.encode({ service = ctx.name, text = "job done" }))
    ctx:log("info", "job done")
    ctx:exit(0)
  end
end

return S
