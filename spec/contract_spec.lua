-- contract_spec.lua - the script contract: what `luasvc run` and `luasvc
-- check` say about a broken script. Each case: exit status 2, a message
-- naming the file and line, and nothing ever reports RUNNING.
local B = H.fixtures .. "bad/"

local cases = {
  { "a missing script", "missing.lua", "cannot open spec/fixtures/bad/missing.lua" },
  { "a syntax error", "syntax.lua", "spec/fixtures/bad/syntax.lua:6: 'end' expected (to close 'function' at line 2) near <eof>" },
  { "a script that returns no table", "notable.lua", "spec/fixtures/bad/notable.lua:3: the script returned string; a service script must return a table" },
  { "an unknown accepts entry", "accepts.lua", "spec/fixtures/bad/accepts.lua:3: unknown accepts entry 'pasue_continue' (#2); known: paramchange, pause_continue, powerevent, preshutdown, sessionchange, shutdown, stop" },
  { "a handler that is not a function", "handler.lua", "spec/fixtures/bad/handler.lua:3: handler 'pause' must be a function (got string)" },
  { "a field of the wrong type", "field.lua", "spec/fixtures/bad/field.lua:3: field 'stop_timeout' must be a number (got string)" },
  { "an error at the chunk's top level", "toplevel.lua", "spec/fixtures/bad/toplevel.lua:4: attempt to index a nil value (local 'cfg')" },
  { "a script without run", "norun.lua", "spec/fixtures/bad/norun.lua: the script has no run function" },
  { "a watchdog out of range", "watchdog.lua", "spec/fixtures/bad/watchdog.lua:3: watchdog must be a whole number of ms in 100..3600000 (got 50)" },
  { "an invalid name", "badname.lua", "spec/fixtures/bad/badname.lua:1: invalid service name \"a/b\"" },
}

describe("a broken script", function()
  after_each(H.cleanup)

  for _, c in ipairs(cases) do
    it("is refused by run and check: " .. c[1], function()
      for _, cmd in ipairs({ "run", "check" }) do
        local rc, out = H.run_sync({ cmd, B .. c[2] })
        assert.equal(2, rc, out)
        -- check: "FILE:LINE: error: message", as a compiler says it
        local want = cmd == "run" and c[3] or c[3]:gsub("^(spec/[%w_/]+%.lua:%d+): ", "%1: error: ")
          :gsub("^(spec/[%w_/]+%.lua): ", "%1: error: ")
        assert.truthy(out:find(want, 1, true), "expected: " .. want .. "\ngot: " .. out)
        assert.falsy(out:find("RUNNING", 1, true), out)
        if cmd == "check" then -- it started nothing: no state lines
          assert.falsy(out:find("STOPPED", 1, true), out)
          assert.falsy(out:find("PENDING", 1, true), out)
        end
      end
    end)
  end

  it("stops the whole host before anything runs when one of several scripts is broken", function()
    local rc, out = H.run_sync({ "run", H.fixtures .. "basic.lua", B .. "accepts.lua" })
    assert.equal(2, rc)
    assert.truthy(out:find("unknown accepts entry", 1, true))
    assert.truthy(out:find("basic: not started: another script failed to load", 1, true), out)
    assert.falsy(out:find("RUNNING", 1, true), out)
    assert.falsy(out:find("ARGS:", 1, true), out) -- basic's start never ran
  end)

  it("two scripts naming the same service are refused", function()
    local rc, out = H.run_sync({ "run", H.fixtures .. "basic.lua", H.fixtures .. "basic.lua" })
    assert.equal(2, rc)
    assert.truthy(out:find("both name their service 'basic'", 1, true), out)
  end)
end)

describe("luasvc check", function()
  after_each(H.cleanup)

  it("passes good scripts without starting them", function()
    local rc, out = H.run_sync({ "check", "examples/heartbeat.lua", H.fixtures .. "basic.lua" })
    assert.equal(0, rc, out)
    assert.truthy(out:find("examples/heartbeat.lua: ok (service 'heartbeat')", 1, true), out)
    assert.truthy(out:find("spec/fixtures/basic.lua: ok (service 'basic')", 1, true), out)
    assert.falsy(out:find("ARGS:", 1, true), out)
    -- nothing failed, nothing started: no state lines, no "not started"
    assert.falsy(out:find("START_PENDING", 1, true), out)
    assert.falsy(out:find("not started", 1, true), out)
  end)
end)

describe("luasvc check's warnings", function()
  after_each(H.cleanup)
  local T = H.fixtures .. "warn/typos.lua"
  local expected = {
    { 4, "`contrls`: not a field of the contract; did you mean `controls`?" },
    { 5, "accepts \"sessionchange\" but has no sessionchange handler: the control does nothing (function S.sessionchange(ctx, type, session_id))" },
    { 9, "`Stop`: not a field of the contract; did you mean `stop`?" },
    { 10, "`pause`: the script does not accept pause_continue, so this handler is never called; add \"pause_continue\" to accepts" },
    { 12, "controls key 300 is outside the user range 128..255: it is never called" },
  }

  it("names each with its file and line, and passes the script", function()
    local rc, out = H.run_sync({ "check", T })
    assert.equal(0, rc, out)
    for _, e in ipairs(expected) do
      local line = T .. ":" .. e[1] .. ": warning: " .. e[2]
      assert.truthy(out:find(line, 1, true), "expected: " .. line .. "\ngot: " .. out)
    end
    assert.equal(#expected, select(2, out:gsub(": warning: ", "")), out)
    assert.truthy(out:find(T .. ": ok (service 'typos'), 5 warnings", 1, true), out)
    assert.falsy(out:find("_own", 1, true), out)
    assert.falsy(out:find("STOPPED", 1, true), out)
  end)

  it("fails them with --strict, and passes a clean script", function()
    local rc, out = H.run_sync({ "check", "--strict", T })
    assert.equal(1, rc, out)
    assert.truthy(out:find(T .. ": 5 warnings, failed (--strict)", 1, true), out)
    rc, out = H.run_sync({ "check", "--strict", "examples/heartbeat.lua", "examples/status_poster.lua" })
    assert.equal(0, rc, out)
  end)

  it("prints them as JSON with --json, and nothing else", function()
    local json = require "dkjson"
    local rc, out = H.sh(string.format("LUASVC_RUNTIME_DIR=/nonexistent %s check --json %s %s 2>/dev/null",
      H.q(H.bin), H.q(T), H.q(B .. "syntax.lua")))
    assert.equal(2, rc, out)
    local list = assert(json.decode(out), out)
    local got = {}
    for _, f in ipairs(list) do
      if f.severity == "warning" then
        assert.equal(T, f.file)
        got[#got + 1] = { f.line, f.message }
      else
        assert.same({ file = B .. "syntax.lua", line = 6, severity = "error", script = B .. "syntax.lua",
          message = "'end' expected (to close 'function' at line 2) near <eof>" }, f)
      end
    end
    assert.same(expected, got)
    assert.equal(#expected + 1, #list)
    rc, out = H.sh(string.format("%s check --json examples/heartbeat.lua 2>&1", H.q(H.bin)))
    assert.equal(0, rc, out)
    assert.same({}, json.decode(out))
  end)

  it("are logged by run at start", function()
    local p = H.start { scripts = { T } }
    H.wait_exit(p)
    for _, e in ipairs(expected) do
      H.wait_log(p, "warning typos: " .. (T .. ":" .. e[1] .. ": " .. e[2]):gsub("%p", "%%%0"))
    end
  end)
end)

describe("the command line", function()
  after_each(H.cleanup)

  it("explains bad usage with exit status 2", function()
    for _, args in ipairs({ {}, { "run" }, { "run", "--bogus", "x.lua" }, { "frobnicate" },
      { "control", "x" }, { "control", "x", "999" }, { "stop" }, { "run", "--log-level", "loud", "x.lua" } }) do
      local rc, out = H.run_sync(args)
      assert.equal(2, rc, table.concat(args, " ") .. ": " .. out)
      assert.truthy(out:find("usage") or out:find("bad control") or out:find("unknown command"), out)
    end
  end)

  it("scaffolds a service that runs", function()
    local d = H.tmpdir()
    local rc, out = H.sh("cd " .. H.q(d) .. " && " .. H.q(H.bin) .. " new hello")
    assert.equal(0, rc, out)
    rc, out = H.run_sync({ "check", d .. "/hello.lua" })
    assert.equal(0, rc, out)
    rc, out = H.sh("cd " .. H.q(d) .. " && " .. H.q(H.bin) .. " new hello")
    assert.equal(1, rc, out) -- never overwrites
  end)
end)
