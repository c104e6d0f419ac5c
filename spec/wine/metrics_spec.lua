--[[
metrics_spec.lua - `luasvc.exe run --metrics ADDR:PORT` under Wine: the
host's health and metrics endpoint over Winsock (WSAPoll), asked from the
Linux side with curl: /healthz, /metrics, garbage (400) and a head too
long (431) while a silent client holds a connection. Run by
scripts/wine-test.
]]
local uv = require "luv"
local W = require "spec.wine.helper"
local EXE, TMP = W.EXE, W.TMP
local q, eventually = W.q, W.eventually

local function read(path) return (W.read(path):gsub("\r\n", "\n")) end

local host

after_each(function()
  if host then
    os.execute("kill -KILL " .. host.pid .. " 2>/dev/null")
    eventually(function() return not os.execute("kill -0 " .. host.pid .. " 2>/dev/null") end, 5000,
      "the host to end")
    host = nil
  end
end)

-- curl's answer: status code and body (nil when no answer).
local function get(port, path, opts)
  local out = TMP .. "/metrics-curl.txt"
  os.remove(out)
  local ok = os.execute(string.format("curl -s -m 5 %s -o %s -w '%%{http_code}' http://127.0.0.1:%d%s > %s.code",
    opts or "", q(out), port, path, q(out)))
  if not ok then return nil end
  return tonumber(read(out .. ".code")), read(out)
end

-- raw bytes to the port (curl's telnet mode): the answer's first line.
local function raw(port, file)
  local out = TMP .. "/metrics-raw.txt"
  os.execute(string.format("curl -s -m 5 telnet://127.0.0.1:%d < %s > %s", port, q(file), q(out)))
  return read(out):match("^[^\r\n]*")
end

describe("luasvc.exe run --metrics", function()
  it("serves /healthz and /metrics over Winsock, and refuses garbage and a head too long", function()
    host = { err = TMP .. "/metrics-host.err", pidfile = TMP .. "/metrics-host.pid" }
    os.execute(string.format("(LC_ALL=C.UTF-8 wine %s run --metrics 127.0.0.1:0 %s >/dev/null 2>%s </dev/null & echo $! >%s) >/dev/null 2>&1",
      q(EXE), q(os.getenv("PWD") .. "/examples/heartbeat.lua"), q(host.err), q(host.pidfile)))
    host.pid = tonumber(eventually(function() return read(host.pidfile):match("%d+") end, 5000, "a pid"))
    local port = tonumber(eventually(function()
      return read(host.err):match("metrics: listening on 127%.0%.0%.1:(%d+)")
    end, 20000, "the endpoint; log:\n" .. read(host.err)))
    eventually(function() return read(host.err):find("heartbeat: RUNNING", 1, true) end, 20000, "RUNNING")
    -- a silent client holds a connection meanwhile
    local silent, connected = uv.new_tcp(), false
    silent:connect("127.0.0.1", port, function(err) connected = not err end)
    eventually(function() uv.run("nowait"); return connected end, 5000, "a silent connection")
    local code, body = get(port, "/healthz")
    assert.are.equal(200, code, body)
    assert.truthy(body:find("heartbeat: RUNNING", 1, true), body)
    code, body = get(port, "/metrics")
    assert.are.equal(200, code, body)
    assert.truthy(body:find('\nluasvc_service_state{service="heartbeat"} 4\n', 1, true), body)
    assert.truthy(body:find('\nluasvc_control_latency_seconds_bucket{service="heartbeat",le="+Inf"} 0\n', 1, true), body)
    assert.are.equal(404, (get(port, "/nothing")))
    local f = TMP .. "/metrics-garbage.bin"
    local h = assert(io.open(f, "wb"))
    h:write("\1\2\3 garbage\r\n")
    h:close()
    assert.are.equal("HTTP/1.1 400 Bad Request", raw(port, f))
    h = assert(io.open(f, "wb"))
    h:write("GET /metrics HTTP/1.1\r\nX-Big: " .. string.rep("a", 100000) .. "\r\n\r\n")
    h:close()
    assert.are.equal("HTTP/1.1 431 Request Header Fields Too Large", raw(port, f))
    assert.are.equal(200, (get(port, "/healthz")))
    silent:close()
    uv.run("nowait")
  end)
end)
