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

describe("an empty JSON array", function()
  after_each(H.cleanup)

  it("comes out as [] with the README's way, which the service runs as written", function()
    local readme = assert(H.read("README.md"))
    local code = readme:match("### JSON: an empty array.-```lua\n(.-)```")
    assert.truthy(code, "the README's JSON: an empty array block")
    assert.truthy(code:find("print(encode(", 1, true), code)
    local script = H.script("local OUT = {}\nlocal function print(s) OUT[#OUT + 1] = s end\n" .. code ..
      [[
local cjson = require "cjson"
assert(cjson.encode({}) == "{}", "cjson still writes {} for an empty table")
local tricky = encode({ s = 'a "\\u0000luasvc:empty-array\\u0000" b', list = array({}), nested = { array({}) } })
return { name = "emptyarray", run = function(ctx)
  ctx:log("info", "OUT:%s", OUT[1])
  ctx:log("info", "TRICKY:%s", tricky)
end }
]], "emptyarray.lua")
    local p = H.start { scripts = { script } }
    assert.equal(0, H.wait_exit(p), H.log(p))
    local out = H.log(p):match("OUT:([^\n]*)")
    assert.same({ items = {}, tags = { "a" }, meta = {} }, json.decode(out))
    assert.truthy(out:find('"items":[]', 1, true), out)
    assert.truthy(out:find('"meta":{}', 1, true), out)
    local tricky = json.decode(H.log(p):match("TRICKY:([^\n]*)"))
    -- a string that only looks like the mark's encoding is left alone
    assert.equal('a "\\u0000luasvc:empty-array\\u0000" b', tricky.s)
    assert.truthy(H.log(p):find('"list":[]', 1, true), H.log(p))
    assert.truthy(H.log(p):find('"nested":[[]]', 1, true), H.log(p))
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
