--[[
mailslot_spec.lua - status channels under Wine: a luasvc service running
under Wine's real SCM posts to mailslots (\\.\mailslot\NAME) that client
processes read: `luasvc.exe listen` for the runtime's status_slot posts,
and a Lua reader (a console-hosted service) for the script's own writes.
Run by scripts/wine-test, which prepares the Wine prefix and sets
LUASVC_EXE.
]]
local json = require "dkjson"
local W = require "spec.wine.helper"
local EXE, TMP, FIX = W.EXE, W.TMP, W.FIX
local q, luasvc, eventually = W.q, W.luasvc, W.eventually

-- A file's text (msvcrt's text-mode output: CRLF made LF), "" if missing.
local function read(path) return (W.read(path):gsub("\r\n", "\n")) end

-- A client process in the background: wine luasvc.exe ARGS...; its output
-- in files. Killed (by its pid) after each test.
local clients, n = {}, 0
local function client(...)
  n = n + 1
  local c = { out = TMP .. "/ms-client" .. n .. ".out", err = TMP .. "/ms-client" .. n .. ".err",
    pidfile = TMP .. "/ms-client" .. n .. ".pid" }
  local words = { "LC_ALL=C.UTF-8 wine", q(EXE) }
  for _, a in ipairs({ ... }) do words[#words + 1] = q(a) end
  os.execute(string.format("(%s >%s 2>%s </dev/null & echo $! >%s) >/dev/null 2>&1",
    table.concat(words, " "), q(c.out), q(c.err), q(c.pidfile)))
  c.pid = tonumber(eventually(function() return read(c.pidfile):match("%d+") end, 5000, "a pid"))
  clients[#clients + 1] = c
  return c
end

local installed = {}
local runs = 0
local function logfile()
  runs = runs + 1
  return string.format("%s/ms-poster-%d-%d.log", TMP, os.time(), runs)
end

local function stopped(name)
  local out = luasvc("status", name, "--json")
  local st = json.decode(out:match("{.*}") or "null")
  return st and st.state == "STOPPED"
end

after_each(function()
  for _, c in ipairs(clients) do os.execute("kill -KILL " .. c.pid .. " 2>/dev/null") end
  for _, c in ipairs(clients) do
    eventually(function() return not os.execute("kill -0 " .. c.pid .. " 2>/dev/null") end, 5000,
      "a client to end")
  end
  clients = {}
  for i = #installed, 1, -1 do
    local out, rc = luasvc("uninstall", installed[i])
    assert.are.equal(0, rc, out)
    installed[i] = nil
  end
end)

describe("a service under the SCM posting to mailslots", function()
  it("reaches `luasvc listen` and a Lua reader in other processes, every message in order", function()
    local monitor = client("listen", "spec-status", "--json")
    eventually(function() return read(monitor.err):find("listening on slot", 1, true) end, 10000,
      "listen to listen: " .. read(monitor.err))
    local reader = client("run", FIX .. "slot_reader.lua", "--", "spec-client")
    eventually(function() return read(reader.err):find("reader ready on spec-client", 1, true) end,
      10000, "the Lua reader: " .. read(reader.err))

    local log = logfile()
    local out, rc = luasvc("install", FIX .. "slot_poster.lua", "--log-file", log)
    assert.are.equal(0, rc, out)
    installed[#installed + 1] = "slot_poster"
    -- not checked: the service may be done and STOPPED before `start` sees
    -- it RUNNING (then it says so and exits 1); the messages tell the story
    luasvc("start", "slot_poster", "20", "spec-client")

    -- the service stops by itself after its writes; STOPPED is posted last
    eventually(function() return read(monitor.out):find('"state":"STOPPED"', 1, true) end, 10000,
      "STOPPED at the listener:\n" .. read(monitor.out) .. "\nservice log:\n" .. read(log))
    local states, posts = {}, {}
    for line in read(monitor.out):gmatch("[^\n]+") do
      local m = assert(json.decode(line), line)
      assert.are.equal("slot_poster", m.service)
      if m.event == "state" then states[#states + 1] = m.state end
      local k = m.text:match("^post (%d+)$")
      if k then posts[#posts + 1] = tonumber(k) end
    end
    assert.are.same({ "START_PENDING", "RUNNING", "STOP_PENDING", "STOPPED" }, states)
    local want = {}
    for i = 1, 20 do want[i] = i end
    assert.are.same(want, posts)

    eventually(function() return read(reader.err):find("reader waits", 1, true) end, 10000,
      "the reader to have it all: " .. read(reader.err))
    local got = {}
    for v in read(reader.err):gmatch("got:([^\n]*)") do got[#got + 1] = v end
    want = {}
    for i = 1, 20 do want[i] = "msg " .. i end
    want[#want + 1] = "#65536"
    assert.are.same(want, got)
    local plog = read(log)
    assert.truthy(plog:find("write:over=nil|message of 65537 bytes exceeds the 65536-byte slot limit|toolarge", 1, true), plog)
  end)

  it("goes on when nobody reads, the write saying so", function()
    local log = logfile()
    local out, rc = luasvc("install", FIX .. "slot_poster.lua", "--log-file", log)
    assert.are.equal(0, rc, out)
    installed[#installed + 1] = "slot_poster"
    luasvc("start", "slot_poster", "3", "spec-nobody") -- as above
    eventually(function() return read(log):find("slot_poster: done", 1, true) end, 10000,
      "the service to be done:\n" .. read(log))
    eventually(function() return stopped("slot_poster") end, 10000, "slot_poster to stop")
    local plog = read(log)
    assert.truthy(plog:find("write:3=nil|no reader for slot spec-nobody|noreader", 1, true), plog)
    assert.truthy(plog:find("slot_poster: done", 1, true), plog)
  end)
end)
