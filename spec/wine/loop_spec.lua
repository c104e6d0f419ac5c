--[[
loop_spec.lua - the event loop under Wine's SCM: examples/http_health.lua
installed and started as a service, answering HTTP from the Linux side
(curl), also while PAUSED, and closing its listener when it stops.
Run by scripts/wine-test.
]]
local json = require "dkjson"
local W = require "spec.wine.helper"
local TMP, luasvc, status, eventually, read = W.TMP, W.luasvc, W.status, W.eventually, W.read

local EXAMPLE = os.getenv("PWD") .. "/examples/http_health.lua"

-- GET http://127.0.0.1:port/health from Linux: status code and body, or nil.
local function get(port)
  local out = TMP .. "/curl.txt"
  local ok = os.execute(string.format("curl -s -m 3 -o %s -w '%%{http_code}' http://127.0.0.1:%d/health > %s.code",
    W.q(out), port, W.q(out)))
  if not ok then return nil end
  return tonumber(read(out .. ".code")), read(out)
end

describe("the event loop under the SCM", function()
  it("serves HTTP from a service, also PAUSED, and closes the listener at stop", function()
    local log = TMP .. "/http_health.log"
    local out, rc = luasvc("install", EXAMPLE, "--log-file", log)
    assert.are.equal(0, rc, out)
    local port = 20000 + math.random(0, 20000)
    out, rc = luasvc("start", "http_health", tostring(port))
    assert.are.equal(0, rc, out)
    local code, body
    eventually(function()
      code, body = get(port)
      return code
    end, 10000, "an answer; log:\n" .. read(log))
    assert.are.equal(200, code)
    assert.are.same({ state = "RUNNING", requests = 1 }, json.decode(body))
    out, rc = luasvc("pause", "http_health")
    assert.are.equal(0, rc, out)
    code, body = get(port)
    assert.are.equal(200, code)
    assert.are.equal("PAUSED", json.decode(body).state)
    out, rc = luasvc("stop", "http_health")
    assert.are.equal(0, rc, out)
    local st = status("http_health")
    assert.are.equal("STOPPED", st.state)
    assert.are.equal(0, st.win32_exit_code)
    assert.is_nil(get(port))
    assert.truthy(read(log):find("listener closed after 2 requests", 1, true), read(log))
    out, rc = luasvc("uninstall", "http_health")
    assert.are.equal(0, rc, out)
  end)
end)
