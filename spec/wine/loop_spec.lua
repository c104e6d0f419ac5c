--[[
loop_spec.lua - the event loop under Wine's SCM: examples/http_health.lua
installed and started as a service, answering HTTP from the Linux side
(curl), also while PAUSED, and closing its listener when it stops; and
examples/hello_http.lua (luasvc.http): its answers, a handler's error as
500, and PAUSE leaving a new client waiting (not refused) until CONTINUE.
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

  it("serves examples/hello_http.lua; PAUSE holds new clients in the accept queue until CONTINUE", function()
    local log = TMP .. "/hello_http.log"
    local out, rc = luasvc("install", os.getenv("PWD") .. "/examples/hello_http.lua", "--log-file", log)
    assert.are.equal(0, rc, out)
    local port = 20000 + math.random(0, 20000)
    out, rc = luasvc("start", "hello_http", tostring(port))
    assert.are.equal(0, rc, out)
    local function curl(args, file)
      return string.format("curl -s -m 10 -o %s -w '%%{http_code}' %s > %s.code", W.q(file), args, W.q(file))
    end
    local f = TMP .. "/hello.txt"
    eventually(function()
      return os.execute(curl("http://127.0.0.1:" .. port .. "/hello", f)) and read(f .. ".code") == "200"
    end, 10000, "an answer; log:\n" .. tostring(read(log)))
    assert.are.equal("hello\n", read(f))
    assert.truthy(os.execute(curl("-d posted http://127.0.0.1:" .. port .. "/echo", f)))
    assert.are.equal("posted", read(f))
    assert.truthy(os.execute(curl("http://127.0.0.1:" .. port .. "/boom", f)))
    assert.are.equal("500", read(f .. ".code"))
    eventually(function() return (read(log) or ""):find("boom: this handler fails on purpose", 1, true) end,
      5000, "the handler's error in the log")
    out, rc = luasvc("pause", "hello_http")
    assert.are.equal(0, rc, out)
    local waiting = TMP .. "/waiting.txt"
    os.execute(curl("http://127.0.0.1:" .. port .. "/hello", waiting) .. " &")
    -- absence can only be shown over a while: no answer in 500 ms
    assert.is_false(pcall(eventually, function() return (read(waiting .. ".code") or "") ~= "" end, 500, "no answer"))
    out, rc = luasvc("continue", "hello_http")
    assert.are.equal(0, rc, out)
    eventually(function() return read(waiting .. ".code") == "200" end, 10000,
      "the waiting client's answer; log:\n" .. tostring(read(log)))
    assert.are.equal("hello\n", read(waiting))
    out, rc = luasvc("stop", "hello_http")
    assert.are.equal(0, rc, out)
    assert.are.equal(0, status("hello_http").win32_exit_code)
    out, rc = luasvc("uninstall", "hello_http")
    assert.are.equal(0, rc, out)
  end)
end)
