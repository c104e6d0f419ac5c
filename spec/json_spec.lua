-- json_spec.lua - lua-cjson preloaded as cjson in every service, the
-- example that speaks JSON with it, and warn() routed to the log.
local json = require "dkjson"
local F = H.fixtures

describe("cjson", function()
  after_each(H.cleanup)

  it("is preloaded in every service", function()
    -- no cjson.so on the C path: only the runtime's own can answer
    local p = H.start { scripts = { F .. "json.lua" }, env = "LUA_CPATH_5_4=/nonexistent/?.so" }
    assert.equal(0, H.wait_exit(p), H.log(p))
    local v = {}
    for k, val in H.log(p):gmatch("JSON:(%w+)=([^\n]*)") do v[k] = val end
    assert.same({ list = { 1, 2, "three" }, s = "q\"\n" }, json.decode(v.enc))
    assert.equal("20,true,\u{e9}", v.dec)
    assert.equal("true", v.null)
    assert.equal("false,true", v.bad)
    assert.equal("true", v.preloaded)
  end)

  it("lets examples/status_poster.lua post JSON a client can read", function()
    local reader = H.start { scripts = { F .. "slot_reader.lua" }, args = { "status_client" } }
    H.wait_log(reader, "reader ready on status_client")
    local poster = H.start { scripts = { "examples/status_poster.lua" }, args = { "20", "4" }, rt = reader.rt }
    assert.equal(0, H.wait_exit(poster))
    H.wait_log(reader, "job done")
    local got = H.tagged(reader, "slot_reader: got")
    local last = json.decode(got[#got])
    assert.same({ service = "status_poster", text = "job done" }, last)
    local step = json.decode(got[#got - 1])
    assert.same({ service = "status_poster", step = 4, of = 4, percent = 100, text = "working: 100%" }, step)
    H.kill(reader, "TERM")
    assert.equal(0, H.wait_exit(reader))
  end)
end)

describe("warn()", function()
  after_each(H.cleanup)

  it("logs at level warning under the service's name", function()
    local p = H.start { scripts = { F .. "json.lua" } }
    assert.equal(0, H.wait_exit(p))
    local log = H.log(p)
    assert.truthy(log:find("warning json: a warning in pieces\n", 1, true), log)
    assert.truthy(log:find("warning json: still logged\n", 1, true), log)
    assert.falsy(log:find("@off", 1, true), log)
  end)
end)
