--[[
help_spec.lua - the command line's one table (runtime/front/usage.c): `luasvc
help`, `luasvc help VERB`, `luasvc VERB --help` and `luasvc --help` print
from it; each verb's synopsis names exactly the options it lists; the
console's parser takes exactly those; the README's command reference
("## Command line") has every verb and option of the table, and no other.
--]]
local H = require "spec.helper"
local U = require "spec.support.usage"

local function help(...)
  local rc, out = H.run_sync({ ... })
  assert.are.equal(0, rc, table.concat({ ... }, " ") .. ": " .. out)
  return out
end

local function first(names) return names:match("^[^|]+") end

describe("the usage table", function()
  after_each(H.cleanup)

  it("prints help for every verb the same four ways", function()
    local overview = help("help")
    assert.are.equal(overview, help("--help"))
    local verbs = U.verbs(overview)
    assert.is_true(#verbs >= 10, overview)
    for _, names in ipairs(verbs) do
      for name in names:gmatch("[^|]+") do
        local text = help("help", name)
        assert.truthy(text:find("usage: luasvc " .. name, 1, true), text)
        assert.are.equal(text, help(name, "--help"))
      end
    end
    local rc, out = H.run_sync({ "help", "frobnicate" })
    assert.are.equal(2, rc, out)
    assert.truthy(out:find("unknown verb 'frobnicate'", 1, true), out)
  end)

  it("lists in each synopsis exactly the options a verb describes", function()
    local verbs = U.verbs(help("help"))
    assert.is_true(#verbs >= 10)
    for _, names in ipairs(verbs) do
      local syn, opts = U.verb_help(help("help", first(names)))
      assert.are.same(U.keys(opts), U.keys(U.options_in(syn)), names .. ": " .. syn)
    end
  end)

  it("is what run and check parse: every listed option is taken, others refused", function()
    local values = { ["--log-level"] = "info", ["--watch-interval"] = "100",
      ["--log-file"] = "x.log", ["--log-max-size"] = "1M", ["--log-keep"] = "3",
      ["--metrics"] = "127.0.0.1:0" }
    for _, verb in ipairs({ "run", "check" }) do
      local _, opts = U.verb_help(help("help", verb))
      for o in pairs(opts) do
        local args = { verb, o }
        if values[o] then args[#args + 1] = values[o] end
        local rc, out = H.run_sync(args)
        assert.are.equal(2, rc, out)
        assert.truthy(out:find("no script given", 1, true), verb .. " " .. o .. ": " .. out)
      end
      local rc, out = H.run_sync({ verb, "--bogus", "x.lua" })
      assert.are.equal(2, rc, out)
      assert.truthy(out:find("unknown option '--bogus'", 1, true), out)
      assert.truthy(out:find("usage: luasvc " .. verb, 1, true), out)
    end
  end)

  it("matches the README's command reference, both ways", function()
    local readme = assert(H.read("README.md"))
    local entries = U.readme_entries(readme, "## Command line")
    local table_verbs = {}
    for _, names in ipairs(U.verbs(help("help"))) do
      table_verbs[names] = true
      local _, opts = U.verb_help(help("help", first(names)))
      local doc = entries[names]
      assert.truthy(doc, "README's command line lacks `luasvc " .. names .. "`")
      assert.are.same(U.keys(opts), U.keys(doc), "the options of " .. names)
    end
    for names in pairs(entries) do
      assert.truthy(table_verbs[names], "README lists `luasvc " .. names .. "`, the table does not")
    end
  end)
end)

describe("luasvc new", function()
  after_each(H.cleanup)

  it("prints a command that runs as printed, whatever the name", function()
    local d = H.tmpdir()
    local rc, out = H.sh("cd " .. H.q(d) .. " && " .. H.q(H.bin) .. " new 'a b'")
    assert.are.equal(0, rc, out)
    local cmd = out:match("run it with: luasvc (run .-)\n")
    assert.are.equal("run 'a b.lua'", cmd, out)
    rc, out = H.sh("cd " .. H.q(d) .. " && " .. H.q(H.bin) .. " " .. cmd:gsub("^run", "check"))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("a b.lua: ok", 1, true), out)
  end)
end)
