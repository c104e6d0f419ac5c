--[[
help_spec.lua - luasvc.exe's command line table (runtime/front/usage.c, the
Windows verbs): `help`, `help VERB` and `VERB --help` agree, and the
README's Windows command reference ("### Managing services") has every
verb and option of the table, and no other.
--]]
local W = require "spec.wine.helper"
local U = require "spec.support.usage"

local function help(...)
  local out, rc = W.luasvc(...)
  assert.are.equal(0, rc, table.concat({ ... }, " ") .. ": " .. out)
  return out
end

describe("luasvc.exe help", function()
  it("matches the README's Windows command reference, both ways", function()
    local entries = U.readme_entries(W.read("README.md"), "### Managing services")
    local overview = help("help")
    assert.are.equal(overview, help("--help"))
    local seen = {}
    for _, names in ipairs(U.verbs(overview)) do
      seen[names] = true
      local name = names:match("^[^|]+")
      local text = help("help", name)
      assert.are.equal(text, help(name, "--help"))
      local syn, opts = U.verb_help(text)
      assert.are.same(U.keys(opts), U.keys(U.options_in(syn)), names .. ": " .. syn)
      assert.truthy(entries[names], "README's Windows commands lack `luasvc " .. names .. "`")
      assert.are.same(U.keys(opts), U.keys(entries[names]), "the options of " .. names)
    end
    assert.truthy(seen.install and seen.run, overview)
    for names in pairs(entries) do
      assert.truthy(seen[names], "README lists `luasvc " .. names .. "`, luasvc.exe does not")
    end
  end)
end)
