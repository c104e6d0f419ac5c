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
  { "a controls key outside 128-255", "controls.lua", "spec/fixtures/bad/controls.lua:5: controls key 300 is outside the user range 128..255" },
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
        assert.truthy(out:find(c[3], 1, true), "expected: " .. c[3] .. "\ngot: " .. out)
        assert.falsy(out:find("RUNNING", 1, true), out)
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
