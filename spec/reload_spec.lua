-- reload_spec.lua - hot editing on the console host: a running service
-- takes up its edited script without a restart, never leaving RUNNING.

-- A service script at version v. opts: accepts, name, broken (a syntax
-- error at line 3), reload_error, module (require "helper_mod").
local function script(v, opts)
  opts = opts or {}
  local lines = {
    "-- version " .. v,
    "local S = { name = " .. string.format("%q", opts.name or "hot") .. ", stop_timeout = 2000,",
    opts.broken and "  accepts = { 'stop' " or "  accepts = " .. (opts.accepts or "{ 'stop', 'paramchange' }") .. " }",
    opts.module and "local mod = require 'helper_mod'" or "local mod = nil",
    "S.version = " .. v,
    "function S.start(ctx) ctx.data.count = 0; ctx.data.first = " .. v .. " end",
    "function S.run(ctx)",
    "  ctx:log('info', 'BEGIN:v%d count=%d first=%d%s', " .. v .. ", ctx.data.count, ctx.data.first, mod and (' mod=' .. mod.word) or '')",
    "  local begin = ctx.data.count",
    "  while ctx:sleep(10) do",
    "    ctx.data.count = ctx.data.count + 1",
    "    if ctx.data.count == begin + 1 then ctx:log('info', 'TICKED:v%d', " .. v .. ") end",
    "  end",
    "  ctx:log('info', 'END:v%d reloading=%s stopping=%s', " .. v .. ", tostring(ctx:reloading()), tostring(ctx:stopping()))",
    "end",
    "function S.reload(ctx, previous)",
    opts.reload_error and "  error('reload refuses')" or "",
    "  ctx:log('info', 'RELOAD:v%d previous=v%d', " .. v .. ", previous.version)",
    "end",
    "S.controls = {}",
    "for c = 128, 255 do S.controls[c] = function(ctx, code) ctx:log('info', 'SEQ:%d v%d', code, " .. v .. ") end end",
    "return S",
  }
  return table.concat(lines, "\n") .. "\n"
end

local function save_rename(path, text)
  H.write(path .. ".tmp", text)
  assert(os.rename(path .. ".tmp", path))
end

local function setup_service(text, extra)
  local d = H.tmpdir()
  local path = d .. "/hot.lua"
  H.write(path, text)
  local opts = { scripts = { path } }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local p = H.start(opts)
  H.wait_state(p, "hot", "RUNNING")
  return p, path, d
end

describe("hot editing", function()
  after_each(H.cleanup)

  it("takes up edits by rename and in place within 1 s: same pid, always RUNNING, data kept", function()
    local p, path = setup_service(script(1))
    H.wait_log(p, "BEGIN:v1 count=0 first=1")
    local system = require "system"
    for v = 2, 5 do
      -- the running version has counted once (edits are taken up in
      -- milliseconds: without this, no version might ever count)
      H.wait_log(p, "TICKED:v" .. (v - 1))
      local t0 = system.monotime()
      if v % 2 == 0 then save_rename(path, script(v)) else H.write(path, script(v)) end
      local states = {}
      H.wait_for(function()
        local st = H.status(p, "hot")
        states[#states + 1] = st and st.state
        assert.equal(p.pid, st.pid)
        return H.log(p):find("BEGIN:v" .. v .. " ", 1, true)
      end, 1, "version " .. v .. " to take over")
      assert.is_true(system.monotime() - t0 < 1, "took over in under 1 s")
      for _, s in ipairs(states) do assert.equal("RUNNING", s) end
    end
    local log = H.log(p)
    assert.truthy(log:find("END:v1 reloading=true stopping=false", 1, true))
    assert.truthy(log:find("RELOAD:v2 previous=v1", 1, true))
    -- ctx.data survived every version: the count carried on, start ran once
    local counts = {}
    for v, c, first in log:gmatch("BEGIN:v(%d) count=(%d+) first=(%d)") do
      counts[#counts + 1] = tonumber(c)
      assert.equal("1", first)
    end
    assert.equal(5, #counts)
    -- (a reload can come within one 10 ms tick of the last: not always more)
    for i = 2, #counts do assert.is_true(counts[i] >= counts[i - 1]) end
    assert.is_true(counts[#counts] > 0)
    local st = H.status(p, "hot")
    assert.equal(4, st.reloads)
    assert.is_nil(st.last_reload_error)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("keeps the old version on a syntax error, names the line, and takes up the fix", function()
    local p, path = setup_service(script(1))
    save_rename(path, script(2, { broken = true }))
    H.wait_log(p, "reload refused")
    local st = H.wait_for(function()
      local s = H.status(p, "hot")
      return s.last_reload_error and s
    end)
    assert.truthy(st.last_reload_error:find(path .. ":4:", 1, true), st.last_reload_error)
    assert.equal("RUNNING", st.state)
    assert.equal(0, st.reloads)
    assert.equal(0, (H.client(p, "control", "hot", "200")))
    H.wait_log(p, "SEQ:200 v1")
    assert.equal(1, H.count(p, "reload refused")) -- tried once, not at every poll
    save_rename(path, script(3))
    H.wait_log(p, "BEGIN:v3")
    st = H.status(p, "hot")
    assert.equal(1, st.reloads)
    assert.is_nil(st.last_reload_error)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("keeps the old version when the new reload() fails", function()
    local p, path = setup_service(script(1))
    save_rename(path, script(2, { reload_error = true }))
    H.wait_log(p, "reload refuses")
    local st = H.wait_for(function()
      local s = H.status(p, "hot")
      return s.last_reload_error and s
    end)
    assert.truthy(st.last_reload_error:find("reload() failed", 1, true), st.last_reload_error)
    assert.equal(0, (H.client(p, "control", "hot", "201")))
    H.wait_log(p, "SEQ:201 v1")
    assert.falsy(H.log(p):find("END:v1", 1, true))
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("takes up an edit to a module the script required from its directory", function()
    local d = H.tmpdir()
    H.write(d .. "/helper_mod.lua", "return { word = 'alpha' }\n")
    local path = d .. "/hot.lua"
    H.write(path, script(1, { module = true }))
    local p = H.start { scripts = { path } }
    H.wait_log(p, "BEGIN:v1 count=0 first=1 mod=alpha")
    save_rename(d .. "/helper_mod.lua", "return { word = 'beta' }\n")
    H.wait_log(p, "BEGIN:v1 count=%d+ first=1 mod=beta")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("reports a change of accepts and refuses a change of name", function()
    local p, path = setup_service(script(1))
    assert.same({ "stop", "paramchange" }, H.status(p, "hot").controls_accepted)
    save_rename(path, script(2, { accepts = "{ 'stop', 'pause_continue' }" }))
    H.wait_log(p, "BEGIN:v2")
    assert.same({ "stop", "pause_continue" }, H.status(p, "hot").controls_accepted)
    assert.equal(0, (H.client(p, "pause", "hot")))
    H.wait_state(p, "hot", "PAUSED")
    assert.equal(0, (H.client(p, "continue", "hot")))
    H.wait_state(p, "hot", "RUNNING")
    save_rename(path, script(3, { name = "other" }))
    local st = H.wait_for(function()
      local s = H.status(p, "hot")
      return s.last_reload_error and s
    end)
    assert.truthy(st.last_reload_error:find("the service's name cannot change while it runs (was 'hot', now 'other')", 1, true))
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("reloads on PARAMCHANGE (luasvc reload, SIGHUP) with the watch off", function()
    local p, path = setup_service(script(1), { options = { "--no-watch" } })
    H.write(path, script(2))
    assert.equal(0, (H.client(p, "reload", "hot")))
    H.wait_log(p, "BEGIN:v2")
    H.write(path, script(3))
    H.kill(p, "HUP")
    H.wait_log(p, "BEGIN:v3")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("delivers a control storm during repeated edits once each, in order, to the code in place", function()
    local p, path = setup_service(script(1), { options = { "--watch-interval", "20" } })
    local cmds, sent = {}, {}
    for i = 1, 150 do
      local code = 128 + (i * 53) % 128
      sent[#sent + 1] = code
      cmds[#cmds + 1] = string.format("%s control hot %d || echo FAILED", H.q(H.bin), code)
    end
    local shell = io.popen("LUASVC_RUNTIME_DIR=" .. H.q(p.rt) .. " sh -c " .. H.q(table.concat(cmds, "; ")) .. " 2>&1")
    for v = 2, 6 do
      save_rename(path, script(v))
      H.wait_log(p, "BEGIN:v" .. v)
    end
    local out = shell:read("a")
    shell:close()
    assert.falsy(out:find("FAILED"), out)
    H.wait_for(function() return #H.tagged(p, "SEQ") >= #sent end, 20, "every control delivered")
    local got, versions = {}, {}
    for code, v in H.log(p):gmatch("SEQ:(%d+) v(%d)") do
      got[#got + 1] = tonumber(code)
      versions[#versions + 1] = tonumber(v)
    end
    assert.same(sent, got)
    for i = 2, #versions do assert.is_true(versions[i] >= versions[i - 1]) end
    assert.equal(5, H.status(p, "hot").reloads)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  -- A save that holds still mid-way: the half alone is a valid script
  -- (version 2), the whole one is version 3 (its last line "return S"
  -- becomes "return S_whole"). Only the whole version may load.
  local function halves()
    local half = "local S_whole = (function()\n" .. script(3) .. "end)()\n" ..
      script(2):gsub("\n$", "")
    return half, "_whole\n"
  end

  it("never loads a half-written file: a writer that pauses mid-save, then closes", function()
    local p, path = setup_service(script(1))
    H.wait_log(p, "BEGIN:v1 ")
    local half, rest = halves()
    local f = assert(io.open(path, "w"))
    f:write(half)
    f:flush()
    -- the writer holds still, far longer than the settle rule's two looks
    -- 20 ms apart (which would take the half as stable), shorter than the
    -- hold of a writer that has not closed
    require("system").sleep(0.3)
    f:write(rest)
    f:close()
    H.wait_log(p, "BEGIN:v3 ")
    assert.equal(0, H.count(p, "BEGIN:v2 "), H.log(p))
    assert.equal(0, H.count(p, "reload refused"), H.log(p))
    assert.truthy(H.log(p):find("RELOAD:v3 previous=v1", 1, true))
    assert.equal(1, H.status(p, "hot").reloads)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("takes up a file whose writer never closes it, once the writer has held still", function()
    local p, path = setup_service(script(1))
    H.wait_log(p, "BEGIN:v1 ")
    local f = assert(io.open(path, "w"))
    f:write(script(2))
    f:flush()
    H.wait_log(p, "BEGIN:v2 ", 10) -- the hold (1 s), then the settle rule
    f:close()
    assert.equal(1, H.status(p, "hot").reloads)
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("takes up an edit of a symlinked script where the file really is", function()
    local real, link = H.tmpdir(), H.tmpdir()
    H.write(real .. "/hot.lua", script(1))
    H.sh("ln -s " .. H.q(real .. "/hot.lua") .. " " .. H.q(link .. "/hot.lua"))
    local p = H.start { scripts = { link .. "/hot.lua" } }
    H.wait_state(p, "hot", "RUNNING")
    H.wait_log(p, "BEGIN:v1 ")
    H.write(real .. "/hot.lua", script(2))
    H.wait_log(p, "BEGIN:v2 ")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("takes up a new release when a symlinked directory is re-pointed", function()
    local d = H.tmpdir()
    H.sh("mkdir " .. H.q(d .. "/r1") .. " " .. H.q(d .. "/r2"))
    H.write(d .. "/r1/hot.lua", script(1))
    H.write(d .. "/r2/hot.lua", script(2))
    H.sh("ln -s r1 " .. H.q(d .. "/current"))
    local p = H.start { scripts = { d .. "/current/hot.lua" } }
    H.wait_state(p, "hot", "RUNNING")
    H.wait_log(p, "BEGIN:v1 ")
    -- the atomic switch of a deploy: a new link renamed over the old
    H.sh("ln -s r2 " .. H.q(d .. "/next") .. " && mv -T " .. H.q(d .. "/next") .. " " .. H.q(d .. "/current"))
    H.wait_log(p, "BEGIN:v2 ")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)
end)

describe("script security", function()
  after_each(H.cleanup)

  it("refuses to start a script others can write, says how to fix it, and allows it when told", function()
    local d = H.tmpdir()
    local path = d .. "/hot.lua"
    H.write(path, script(1))
    H.sh("chmod 666 " .. H.q(path))
    local rc, out = H.run_sync({ "run", path })
    assert.equal(2, rc)
    assert.truthy(out:find("script " .. path .. " is writable by group and others (mode 666)", 1, true), out)
    assert.truthy(out:find("chmod go-w", 1, true), out)
    local p = H.start { scripts = { path }, options = { "--allow-insecure-script" } }
    H.wait_state(p, "hot", "RUNNING")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("refuses a reload of a file that became writable by others", function()
    local p, path = setup_service(script(1))
    -- the new version arrives already writable by others (a rename), so
    -- no version of it is ever safe to load
    H.write(path .. ".tmp", script(2))
    H.sh("chmod 646 " .. H.q(path .. ".tmp"))
    assert(os.rename(path .. ".tmp", path))
    local st = H.wait_for(function()
      local s = H.status(p, "hot")
      return s.last_reload_error and s
    end)
    assert.truthy(st.last_reload_error:find("is writable by others", 1, true), st.last_reload_error)
    assert.falsy(H.log(p):find("BEGIN:v2", 1, true))
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
  end)

  it("refuses a script owned by another user", function()
    local _, uid = H.sh("id -u")
    if uid:gsub("%s", "") ~= "0" then
      pending("needs root to own a file as another user")
      return
    end
    local d = H.tmpdir()
    local path = d .. "/hot.lua"
    H.write(path, script(1))
    H.sh("chown 65534 " .. H.q(path))
    local rc, out = H.run_sync({ "run", path })
    assert.equal(2, rc)
    assert.truthy(out:find("is owned by uid 65534, neither root nor the service's user", 1, true), out)
  end)
end)
