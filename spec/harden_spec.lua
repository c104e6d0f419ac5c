-- harden_spec.lua - what a hostile script, client or sink cannot do to a
-- host: names that read as options, forged log lines, invalid JSON, a
-- stderr nobody reads, silent clients, a stopped host, children with the
-- host's signal state, code others can change, altered messages.
local json = require "dkjson"
local system = require "system"

-- A script in a fresh private directory; returns its path.
local function script(text, name)
  local d = H.tmpdir()
  local path = d .. "/" .. (name or "svc.lua")
  H.write(path, text)
  return path, d
end

local RUN = [[
function S.run(ctx) while ctx:sleep(1000) do end end
return S
]]

describe("names", function()
  after_each(H.cleanup)

  for _, c in ipairs({ { "-x", "a leading dash" }, { " ", "a space" }, { " svc", "a leading space" },
    { "svc ", "a trailing space" } }) do
    it("refuses " .. c[2] .. " in a service name at check time", function()
      local path = script("local S = { name = " .. string.format("%q", c[1]) .. " }\n" .. RUN)
      local rc, out = H.run_sync({ "check", path })
      assert.equal(2, rc, out)
      assert.truthy(out:find(path .. ":1: invalid service name " .. string.format("%q", c[1]), 1, true), out)
      assert.truthy(out:find("not starting with '-'", 1, true), out)
    end)
  end

  it("refuses a file name that makes an invalid service name", function()
    local path = script(RUN:gsub("^", "local S = {}\n"), "-x.lua")
    local rc, out = H.run_sync({ "check", path })
    assert.equal(2, rc, out)
    assert.truthy(out:find("invalid service name \"-x\"", 1, true), out)
  end)

  it("refuses an invalid status_slot by the same rule", function()
    local path = script('local S = { status_slot = "-slot" }\n' .. RUN)
    local rc, out = H.run_sync({ "check", path })
    assert.equal(2, rc, out)
    assert.truthy(out:find(path .. ":1: invalid status_slot \"-slot\"", 1, true), out)
  end)

  it("refuses a display_name with a control character", function()
    local path = script('local S = {\n  display_name = "Nice\\nFAKE luasvc: RUNNING",\n}\n' .. RUN)
    local rc, out = H.run_sync({ "check", path })
    assert.equal(2, rc, out)
    assert.truthy(out:find(path .. ":2: display_name \"Nice\\nFAKE luasvc: RUNNING\" has a control character", 1, true), out)
  end)

  it("still takes a name with inner spaces and dashes", function()
    local path = script('local S = { name = "my svc-1" }\n' .. RUN)
    local rc, out = H.run_sync({ "check", path })
    assert.equal(0, rc, out)
  end)
end)
