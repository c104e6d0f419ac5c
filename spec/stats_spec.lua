-- stats_spec.lua - ctx:stats() (issue 23): what `luasvc status --json`
-- shows of the service, under the same field names, plus Lua memory,
-- tasks, children and uptime, as the script reads it.
local json = require "dkjson"

local SCRIPT = [[
local cjson = require "cjson"
local S = { name = "stats", accepts = { "stop", "pause_continue" } }
local function dump(ctx, tag)
  local s = ctx:stats()
  local keys = {}
  for k in pairs(s) do keys[#keys + 1] = k end
  table.sort(keys)
  ctx:log("info", "STATS:%s:%s", tag, cjson.encode(s))
  ctx:log("info", "KEYS:%s:%s", tag, table.concat(keys, ","))
end
function S.run(ctx)
  ctx:status("counting")
  dump(ctx, "first")
  ctx:spawn(function() ctx:sleep(60000) end)
  while ctx:sleep(20) do end
end
S.controls = { [200] = function(ctx) dump(ctx, "control") end }
function S.stop(ctx) local ok, err = pcall(ctx.stats, {}) ctx:log("info", "BAD:%s", tostring(err)) end
return S
]]

local function stats(p, tag)
  local line = H.wait_for(function() return H.log(p):match("STATS:" .. tag .. ":([^\n]*)") end, 5,
    "STATS:" .. tag)
  return json.decode(line)
end

describe("ctx:stats()", function()
  after_each(H.cleanup)

  it("gives what status --json shows, under the same names, and the service's gauges", function()
    local script = H.script(SCRIPT, "stats.lua")
    local p = H.start { scripts = { script } }
    local first = stats(p, "first")
    assert.equal("stats", first.name)
    assert.equal("RUNNING", first.state)
    assert.equal(4, first.state_code)
    assert.equal("counting", first.status_text)
    assert.equal(0, first.controls_delivered)
    assert.equal(0, first.reloads)
    assert.is_nil(first.last_reload_error)
    assert.is_true(first.lua_bytes > 10000)
    assert.is_true(first.uptime > 0 and first.uptime < 10)
    assert.equal(p.pid, first.pid)

    assert.equal(0, (H.client(p, "control", "stats", "200")))
    local s = stats(p, "control")
    local st = H.status(p, "stats")
    -- every field both have agrees with status --json
    for _, k in ipairs({ "name", "state", "state_code", "win32_exit_code", "service_exit_code",
      "checkpoint", "wait_hint", "pid", "reloads", "status_text" }) do
      assert.are.same(st[k], s[k], k)
    end
    assert.equal(1, s.controls_delivered)
    assert.is_true(s.control_latency_us > 0)
    assert.equal(s.control_latency_us, s.control_latency_avg_us)
    assert.is_true(s.tasks >= 2, "run and the spawned task: " .. s.tasks)
    assert.equal(0, s.children)
    assert.is_true(s.uptime >= first.uptime)
    assert.equal(0, s.reload_errors)

    -- a refused edit: reload_errors and last_reload_error
    H.write(script, SCRIPT:gsub("return S\n$", "error('broken on purpose')\nreturn S\n"))
    H.wait_for(function()
      local x = H.status(p, "stats")
      return x and x.last_reload_error
    end, 5, "the refused edit")
    assert.equal(0, (H.client(p, "control", "stats", "200")))
    H.wait_for(function() return H.count(p, "STATS:control:") == 2 end, 5, "the second dump")
    local line = {}
    for l in H.log(p):gmatch("STATS:control:([^\n]*)") do line[#line + 1] = l end
    s = json.decode(line[2])
    assert.equal(1, s.reload_errors)
    assert.matches("broken on purpose", s.last_reload_error, 1, true)
    assert.equal(H.status(p, "stats").last_reload_error, s.last_reload_error)

    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    assert.truthy(H.log(p):find("BAD:[^\n]*bad argument #1 to '[^']*' %(luasvc context expected"), H.log(p))
  end)
end)
