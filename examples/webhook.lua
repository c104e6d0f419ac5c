-- webhook.lua - a webhook receiver that runs a deploy command, one at a
-- time, and queues the rest.
--
--   luasvc run examples/webhook.lua -- PORT COMMAND [ARGS...]
--   curl -d @payload.json http://127.0.0.1:PORT/deploy   -> 202 {"id":1,"ahead":0}
--   curl http://127.0.0.1:PORT/jobs/1                     -> {"id":1,"state":"done","code":0,...}
--   curl http://127.0.0.1:PORT/jobs                       -> every job kept, newest last
--
-- Each POST /deploy is a job: its body goes to the command's stdin, and
-- DEPLOY_ID=<id> to its environment. One task (ctx:spawn) takes the jobs
-- in order and runs each with ctx:exec: its output lines go to the log
-- ("deploy 3: ..."), a command that runs past TIMEOUT_MS is ended with
-- its whole process tree, and its exit code is kept for GET /jobs/ID. At
-- most MAX_QUEUED jobs wait (503 beyond). A stop ends the deploy running
-- (its whole tree) and drops the queued ones.
local http = require "luasvc.http"
local cjson = require "cjson"

local S = {
  name = "webhook",
  description = "Runs a deploy command per webhook, one at a time",
  accepts = { "stop", "shutdown", "paramchange" },
  stop_timeout = 5000,
}

local TIMEOUT_MS, MAX_QUEUED, KEEP = 600000, 100, 50

local function job_view(j)
  return { id = j.id, state = j.state, code = j.code, signal = j.signal, timed_out = j.timed_out,
    queued_at = j.queued_at, seconds = j.seconds }
end

-- the one deploy task: job after job, until the service stops
local function deployer(ctx)
  local d = ctx.data
  while true do
    local ok, job = d.queue:get()
    if not ok then return end -- stopping
    job.state, d.running = "running", job
    local env = { "DEPLOY_ID=" .. job.id }
    for _, kv in ipairs { "PATH", "HOME", "LANG" } do
      if os.getenv(kv) then env[#env + 1] = kv .. "=" .. os.getenv(kv) end
    end
    local t0 = require("luasvc").now()
    local r, err = ctx:exec(d.cmd, {
      stdin = job.body, env = env, timeout = TIMEOUT_MS, name = "deploy " .. job.id,
    })
    d.running = nil
    job.seconds = require("luasvc").now() - t0
    if not r then
      job.state, job.error = "failed", err
      ctx:log("error", "deploy %d: %s", job.id, err)
    elseif r.stopped then
      job.state = "stopped"
      return
    else
      job.state, job.code, job.signal, job.timed_out = "done", r.code, r.signal, r.timed_out
      ctx:log(r.code == 0 and "info" or "warning", "deploy %d: exit code %s, signal %d%s", job.id,
        tostring(r.code), r.signal, r.timed_out and " (timed out)" or "")
    end
  end
end

local function handle(ctx, req)
  local d = ctx.data
  if req.path == "/deploy" and req.method == "POST" then
    if #d.queue >= MAX_QUEUED then return 503, "too many deploys queued\n" end
    d.next_id = d.next_id + 1
    local job = { id = d.next_id, state = "queued", body = req.body or "", queued_at = os.time() }
    d.jobs[job.id] = job
    d.jobs[job.id - KEEP] = nil
    local ahead = #d.queue + (d.running and 1 or 0)
    d.queue(job)
    ctx:log("info", "deploy %d queued (%d ahead)", job.id, ahead)
    return 202, cjson.encode({ id = job.id, ahead = ahead }) .. "\n",
      { ["Content-Type"] = "application/json" }
  end
  local id = req.path:match("^/jobs/(%d+)$")
  if id and req.method == "GET" then
    local j = d.jobs[tonumber(id)]
    if not j then return 404, "no such job\n" end
    return 200, cjson.encode(job_view(j)) .. "\n", { ["Content-Type"] = "application/json" }
  end
  if req.path == "/jobs" and req.method == "GET" then
    local list = {}
    for i = math.max(1, d.next_id - KEEP + 1), d.next_id do
      if d.jobs[i] then list[#list + 1] = job_view(d.jobs[i]) end
    end
    return 200, (#list > 0 and cjson.encode(list) or "[]") .. "\n", { ["Content-Type"] = "application/json" }
  end
  return 404, "not found\n"
end

function S.start(ctx, args)
  local port = math.tointeger(tonumber(args[1] or ""))
  if not port or port < 0 or port > 65535 or not args[2] then
    error("webhook: usage: luasvc run webhook.lua -- PORT COMMAND [ARGS...]", 0)
  end
  local d = ctx.data
  d.cmd = { table.unpack(args, 2) }
  d.jobs, d.next_id, d.queue = {}, 0, ctx:queue()
  d.http = handle
  d.server = assert(http.listen(ctx, { host = "127.0.0.1", port = port, handler = "http" }))
  ctx:spawn(deployer, ctx)
  ctx:log("info", "listening on http://127.0.0.1:%d/deploy", d.server.port)
end

function S.run(ctx)
  while ctx:sleep(60000) do end -- the server and the deployer do the work
end

function S.reload(ctx) ctx.data.http = handle end

return S
