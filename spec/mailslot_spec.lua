-- mailslot_spec.lua - status channels end to end on POSIX: luasvc.mailslot
-- readers and writers in services, a script's status_slot, `luasvc listen`,
-- a write with no reader, the size limit, and another user's reader.
local json = require "dkjson"
local F = H.fixtures

local listeners = {}

-- Start `luasvc listen SLOT [--json]` against runtime dir rt, as `as` (a
-- command prefix such as setpriv ..., or nil). Returns once it listens.
local function listen(rt, slot, opts)
  opts = opts or {}
  local d = H.tmpdir()
  local l = { out = d .. "/out", err = d .. "/err", rcfile = d .. "/rc", pidfile = d .. "/pid" }
  local cmd = string.format(
    "(LUASVC_RUNTIME_DIR=%s %s %s listen %s %s >%s 2>%s & echo $! >%s; wait $!; echo $? >%s) >/dev/null 2>&1 &",
    H.q(rt), opts.as or "", H.q(H.bin), H.q(slot), opts.json and "--json" or "", H.q(l.out),
    H.q(l.err), H.q(l.pidfile), H.q(l.rcfile))
  os.execute(cmd)
  l.pid = tonumber(H.wait_for(function()
    local s = H.read(l.pidfile)
    return s and s:match("%d+")
  end, 5, "listen to start"))
  listeners[#listeners + 1] = l
  if opts.wait ~= false then
    H.wait_for(function()
      local e = H.read(l.err) or ""
      return e:find("listening on slot", 1, true) or H.read(l.rcfile)
    end, 5, "listen to listen")
  end
  return l
end

local function listen_rc(l)
  local s = H.read(l.rcfile)
  return s and tonumber(s:match("%d+"))
end

local function stop_listen(l)
  os.execute("kill -INT " .. l.pid .. " 2>/dev/null")
  return H.wait_for(function() return listen_rc(l) end, 5, "listen to exit")
end

local function lines(s)
  local t = {}
  for l in (s or ""):gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

local function writes(p)
  local t = {}
  for what, res in H.log(p):gmatch("write:([%w]+)=([^\n]*)") do t[what] = res end
  return t
end

describe("mailslots", function()
  after_each(function()
    for _, l in ipairs(listeners) do
      if not listen_rc(l) then
        os.execute("kill -KILL " .. l.pid .. " 2>/dev/null")
        pcall(H.wait_for, function() return listen_rc(l) end, 5)
      end
    end
    listeners = {}
    H.cleanup()
  end)

  it("carry a service's states and log lines to `luasvc listen --json`, in order", function()
    local rt = H.tmpdir() .. "/rt"
    os.execute("mkdir -m 700 " .. H.q(rt))
    local l = listen(rt, "spec-status", { json = true })
    local n = 50
    local p = H.start { scripts = { F .. "slot_poster.lua" }, rt = rt, args = { tostring(n), "spec-nobody" } }
    assert.equal(0, H.wait_exit(p))
    -- the last message is STOPPED: everything before it has arrived
    H.wait_for(function() return (H.read(l.out) or ""):find('"state":"STOPPED"', 1, true) end, 5,
      "STOPPED at the listener")
    assert.equal(0, stop_listen(l))
    local msgs = {}
    for _, line in ipairs(lines(H.read(l.out))) do msgs[#msgs + 1] = assert(json.decode(line), line) end
    local states, posts = {}, {}
    for _, m in ipairs(msgs) do
      assert.equal("slot_poster", m.service)
      assert.truthy(m.time:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"), m.time)
      if m.event == "state" then states[#states + 1] = m.state end
      local k = m.text:match("^post (%d+)$")
      if k then
        posts[#posts + 1] = tonumber(k)
        assert.equal("RUNNING", m.state)
        assert.equal("info", m.level)
      end
    end
    assert.same({ "START_PENDING", "RUNNING", "STOP_PENDING", "STOPPED" }, states)
    local want = {}
    for i = 1, n do want[i] = i end
    assert.same(want, posts)
    -- notice lines (the writes' results) are posted too, debug lines never
    assert.truthy((H.read(l.out)):find('"level":"notice"', 1, true))
    -- each state change once (the console's own log line is not posted again)
    assert.equal(4, #states)
    assert.falsy(os.execute("test -e " .. H.q(rt .. "/slots/spec-status")))
  end)

  it("pass a writer's JSON object through `listen --json` as that object, other text as {text}", function()
    local rt = H.tmpdir() .. "/rt"
    os.execute("mkdir -m 700 " .. H.q(rt))
    local l = listen(rt, "spec-json", { json = true })
    local script = H.script([[
local luasvc, cjson = require "luasvc", require "cjson"
return { name = "jsonwriter", run = function(ctx)
  local w <close> = assert(luasvc.mailslot.open("spec-json"))
  assert(w:write(cjson.encode({ job = "backup", percent = 40, tags = { "a", "b" } })))
  assert(w:write('{\n  "pretty": true,\n  "s": "two\\nlines"\n}\n'))
  assert(w:write('{"broken": '))
  assert(w:write('[1, 2]'))
  assert(w:write("plain text"))
  assert(w:write('{"end":true}'))
end }
]], "jsonwriter.lua")
    local p = H.start { scripts = { script }, rt = rt }
    assert.equal(0, H.wait_exit(p), H.log(p))
    H.wait_for(function() return (H.read(l.out) or ""):find('{"end":true}', 1, true) end, 5, "the last message")
    assert.equal(0, stop_listen(l))
    local out = lines(H.read(l.out))
    assert.equal(6, #out, H.read(l.out))
    local m = {}
    for i, line in ipairs(out) do m[i] = assert(json.decode(line), line) end
    assert.same({ job = "backup", percent = 40, tags = { "a", "b" } }, m[1]) -- not {"text": "{...}"}
    assert.same({ pretty = true, s = "two\nlines" }, m[2])                    -- one line, same object
    assert.same({ text = '{"broken": ' }, m[3])                                -- not JSON: wrapped
    assert.same({ text = "[1, 2]" }, m[4])                                     -- JSON, not an object
    assert.same({ text = "plain text" }, m[5])
    assert.same({ ["end"] = true }, m[6])
  end)

  it("print human-readable lines by default", function()
    local rt = H.tmpdir() .. "/rt"
    os.execute("mkdir -m 700 " .. H.q(rt))
    local l = listen(rt, "spec-status")
    local p = H.start { scripts = { F .. "slot_poster.lua" }, rt = rt, args = { "2", "spec-nobody" } }
    assert.equal(0, H.wait_exit(p))
    H.wait_for(function() return (H.read(l.out) or ""):find("STOPPED\n", 1, true) end, 5, "STOPPED")
    assert.equal(0, stop_listen(l))
    local out = lines(H.read(l.out))
    assert.truthy(out[1]:match("^%d+%-%d+%-%d+T[%d:%.]+Z slot_poster %[START_PENDING%] info: START_PENDING$"), out[1])
    assert.truthy((H.read(l.out)):find("slot_poster [RUNNING] info: post 2\n", 1, true))
    -- the slot is gone once listen has ended
    assert.falsy(os.execute("test -e " .. H.q(rt .. "/slots/spec-status")))
  end)

  it("reach a Lua reader in another service, every message in order, up to 64 KiB", function()
    local rt = H.tmpdir() .. "/rt"
    local r = H.start { scripts = { F .. "slot_reader.lua" }, rt = rt, args = { "spec-client" } }
    H.wait_log(r, "reader ready on spec%-client")
    local p = H.start { scripts = { F .. "slot_poster.lua" }, rt = rt, args = { "40", "spec-client" } }
    assert.equal(0, H.wait_exit(p))
    H.wait_log(r, "reader waits")
    local got = H.tagged(r, "got")
    local want = {}
    for i = 1, 40 do want[i] = "msg " .. i end
    want[#want + 1] = "#65536"
    assert.same(want, got)
    local w = writes(p)
    assert.equal("true|nil|nil", w["1"])
    assert.equal("true|nil|nil", w.max)
    assert.equal("nil|message of 65537 bytes exceeds the 65536-byte slot limit|toolarge", w.over)
    -- the caller's mistakes raise; one reader per slot; closed is closed
    assert.truthy(H.log(r):find("bad name: false [^\n]*invalid slot name"))
    assert.truthy(H.log(r):find("dup: nil|slot spec-dup already has a reader (" .. rt .. "/slots/spec-dup)|exists", 1, true))
    assert.truthy(H.log(r):find("closed: [^\n]*attempt to use a closed mailslot reader"))
    -- a read waiting lets controls through
    assert.equal(0, (H.client(r, "control", "slot_reader", "200")))
    H.wait_log(r, "control 200 during read")
    assert.equal(0, (H.client(r, "pause", "slot_reader")))
    H.wait_state(r, "slot_reader", "PAUSED")
    assert.equal(0, (H.client(r, "continue", "slot_reader")))
    H.wait_state(r, "slot_reader", "RUNNING")
    -- a read with no timeout still gives way to a stop at once
    local t0 = require("system").monotime()
    H.kill(r, "TERM")
    assert.equal(0, H.wait_exit(r))
    assert.truthy(require("system").monotime() - t0 < 2)
    H.wait_log(r, "read returned nil stopping")
    assert.falsy(os.execute("test -e " .. H.q(rt .. "/slots/spec-client")))
  end)

  it("let a service go on when nobody reads, the write saying so", function()
    local rt = H.tmpdir() .. "/rt"
    local p = H.start { scripts = { F .. "slot_poster.lua" }, rt = rt, args = { "3", "spec-client" } }
    assert.equal(0, H.wait_exit(p))
    local w = writes(p)
    for _, k in ipairs({ "1", "2", "3", "max", "end" }) do
      assert.equal("nil|no reader for slot spec-client|noreader", w[k])
    end
    assert.equal("nil|message of 65537 bytes exceeds the 65536-byte slot limit|toolarge", w.over)
    H.wait_log(p, "slot_poster: done")
    -- no status_slot reader either: not worth a warning, the service is fine
    assert.falsy(H.log(p):find("status_slot", 1, true))
  end)

  it("fail fast with \"full\" when the reader does not keep up", function()
    local rt = H.tmpdir() .. "/rt"
    os.execute("mkdir -m 700 " .. H.q(rt))
    local l = listen(rt, "spec-client")
    os.execute("kill -STOP " .. l.pid)
    local p = H.start { scripts = { F .. "slot_poster.lua" }, rt = rt, args = { "3000", "spec-client" } }
    local ok = pcall(H.wait_exit, p, 20)
    os.execute("kill -CONT " .. l.pid)
    assert.truthy(ok, "the service was held up by a reader that does not read")
    local w = writes(p)
    assert.equal("true|nil|nil", w["1"])
    assert.equal("nil|slot spec-client is full: its reader is not keeping up|full", w["3000"])
    assert.equal(0, stop_listen(l))
  end)

  it("have one reader each; a reader killed leaves a socket the next one takes over", function()
    local rt = H.tmpdir() .. "/rt"
    os.execute("mkdir -m 700 " .. H.q(rt))
    local first = listen(rt, "spec-one")
    local second = listen(rt, "spec-one", { wait = false })
    assert.equal(1, H.wait_for(function() return listen_rc(second) end, 5, "the second listen to end"))
    assert.truthy((H.read(second.err) or ""):find("slot spec-one already has a reader", 1, true))
    os.execute("kill -KILL " .. first.pid)
    H.wait_for(function() return listen_rc(first) end, 5, "the first listen to die")
    assert.truthy(os.execute("test -S " .. H.q(rt .. "/slots/spec-one"))) -- left behind
    local third = listen(rt, "spec-one")
    assert.equal(0, stop_listen(third))
    assert.falsy(os.execute("test -e " .. H.q(rt .. "/slots/spec-one")))
  end)

  it("follow a hot edit of status_slot to the new slot", function()
    local d = H.tmpdir()
    local rt = d .. "/rt"
    os.execute("mkdir -m 700 " .. H.q(rt))
    local function text(slot, v)
      return string.format([[
local S = { name = "hot_slot", status_slot = %q }
function S.run(ctx)
  ctx:log("info", "VERSION %d")
  while ctx:sleep(20) do end
end
return S
]], slot, v)
    end
    local path = d .. "/hot_slot.lua"
    H.write(path, text("spec-a", 1))
    local a = listen(rt, "spec-a")
    local b = listen(rt, "spec-b")
    local p = H.start { scripts = { path }, rt = rt }
    H.wait_for(function() return (H.read(a.out) or ""):find("VERSION 1", 1, true) end, 5, "v1 at spec-a")
    H.write(path .. ".tmp", text("spec-b", 2))
    assert(os.rename(path .. ".tmp", path))
    H.wait_for(function() return (H.read(b.out) or ""):find("VERSION 2", 1, true) end, 5,
      "v2 at spec-b; log:\n" .. H.log(p))
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    H.wait_for(function() return (H.read(b.out) or ""):find("[STOPPED]", 1, true) end, 5, "STOPPED at spec-b")
    assert.equal(0, stop_listen(a))
    assert.equal(0, stop_listen(b))
    assert.falsy((H.read(a.out)):find("VERSION 2", 1, true))
    assert.falsy((H.read(a.out)):find("STOPPED", 1, true))
  end)

  it("refuse an invalid status_slot in the contract", function()
    local d = H.tmpdir()
    H.write(d .. "/bad.lua", 'return { status_slot = "a/b", run = function() end }\n')
    local rc, out = H.run_sync({ "check", d .. "/bad.lua" })
    assert.equal(2, rc)
    assert.truthy(out:find("bad.lua:1: error: invalid status_slot \"a/b\"", 1, true), out)
    H.write(d .. "/bad2.lua", 'return { status_slot = 7, run = function() end }\n')
    rc, out = H.run_sync({ "check", d .. "/bad2.lua" })
    assert.equal(2, rc)
    assert.truthy(out:find("field 'status_slot' must be a string", 1, true), out)
  end)

  it("keep another user's reader out", function()
    local _, uid = H.sh("id -u")
    if tonumber(uid) ~= 0 then
      pending("needs root, to run a reader as another user (uid 65534)")
      return
    end
    local _, which = H.sh("command -v setpriv")
    if not which:find("setpriv") then
      pending("needs setpriv (util-linux)")
      return
    end
    -- a directory everyone may traverse, holding the owner-only runtime dir
    local d = H.tmpdir()
    os.execute("chmod 755 " .. H.q(d))
    local rt = d .. "/rt"
    os.execute("mkdir -m 700 " .. H.q(rt))
    local as = "setpriv --reuid=65534 --regid=65534 --clear-groups"
    -- before any slot exists, and once the owner's reader has the slot
    for round = 1, 2 do
      local l = listen(rt, "spec-status", { as = as, wait = false })
      local rc = H.wait_for(function() return listen_rc(l) end, 5, "the other user's listen to end")
      assert.equal(1, rc)
      assert.truthy((H.read(l.err) or ""):find("Permission denied", 1, true), H.read(l.err))
      if round == 1 then listen(rt, "spec-status") end
    end
    local _, mode = H.sh("stat -c %a " .. H.q(rt .. "/slots/spec-status"))
    assert.equal("600", mode:match("%d+"))
    local _, dmode = H.sh("stat -c %a " .. H.q(rt .. "/slots"))
    assert.equal("700", dmode:match("%d+"))
  end)
end)
