-- stats_spec.lua - ctx:stats() (issue 23): every field `luasvc status
-- --json` shows of the service, under the same names and with the same
-- values (each one compared: a field missing from ctx:stats() fails), plus
-- the average latency, refused edits, Lua memory, tasks and uptime, as the
-- script reads them.
local json = require "dkjson"

local SCRIPT = [[
local cjson = require "cjson"
local S = { name = "stats", display_name = "Stats service", accepts = { "pause_continue", "stop" },
  stop_timeout = 4321 }
local function dump(ctx, tag)
  local s = ctx:stats()
  local keys = {}
  for k in pairs(s) do keys[#keys + 1] = k end
  table.sort(keys)
  ctx:log("info", "STATS:%s:%s", tag, cjson.encode(s))
  ctx:log("info", "KEYS:%s:%s", tag, table.concat(keys, ","))
  ctx:log("info", "MATHTYPE:%s:%s", tag, math.type(s.stop_timeout))
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
    -- every field status --json shows is in ctx:stats(), with the same
    -- value and type (a list as a list; a number printed to 0.1 us as such)
    local n = 0
    for k, v in pairs(st) do
      n = n + 1
      assert.is_not_nil(s[k], "ctx:stats() has no " .. k)
      assert.equal(type(v), type(s[k]), k)
      if k == "control_latency_us" then
        assert.is_true(math.abs(v - s[k]) <= 0.05, k .. ": " .. v .. " vs " .. s[k])
      else
        assert.are.same(v, s[k], k)
      end
    end
    assert.is_true(n >= 17, "status --json gave " .. n .. " fields")
    assert.same({ "stop", "pause_continue" }, s.controls_accepted)
    assert.same({ "stop", "pause_continue" }, s.accepts)
    assert.equal("Stats service", s.display_name)
    assert.equal(script, s.script)
    assert.equal(4321, s.stop_timeout)
    assert.truthy(H.log(p):find("MATHTYPE:control:integer\n", 1, true), H.log(p))
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
