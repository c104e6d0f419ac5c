-- startup_spec.lua - what a start opens and what it leaves for a script's
-- first use: the preloaded modules (lfs, cjson, luv), and on Linux the C
-- library's libm (runtime/primitives/lazymath.c).
local F = H.fixtures

local function run_fixture()
  local p = H.start { scripts = { F .. "startup.lua" } }
  H.wait_log(p, "MATH ")
  assert.equal(0, H.wait_exit(p))
  return H.log(p)
end

describe("a start", function()
  after_each(H.cleanup)

  it("opens lfs, cjson and luv only when a script requires them; luv is bound to the loop", function()
    local log = run_fixture()
    assert.truthy(log:find("LOADED lfs=false cjson=false luv=false", 1, true), log)
    assert.truthy(log:find("LUV same=true bound=true", 1, true), log)
  end)

  it("computes with the C library's math functions, found at their first use", function()
    local log = run_fixture()
    local x = 0.7
    local want = {
      2 ^ x, 7.5 % 2, -7.5 % 2, math.fmod(7.5, 2), math.sin(x), math.cos(x), math.tan(x),
      math.asin(x), math.acos(x), math.atan(x, 2), math.exp(x), math.log(x), math.log(x, 2),
      math.log(x, 10), math.sqrt(x),
    }
    for i, v in ipairs(want) do want[i] = string.format("%.17g", v) end
    assert.equal(table.concat(want, " "), log:match("MATH ([^\n]*)"))
  end)

  it("does not load libm at exec (Linux): the binary does not need it", function()
    local uname = io.popen("uname -s"):read("l")
    local readelf = io.popen("command -v readelf"):read("l")
    if uname ~= "Linux" or not readelf then
      pending("Linux with readelf only")
      return
    end
    local dyn = io.popen("readelf -d " .. H.q(H.bin)):read("a")
    if dyn:find("lib[at]san", 1) then
      pending("a sanitizer's runtime brings its own libraries")
      return
    end
    assert.truthy(dyn:find("NEEDED", 1, true), dyn)
    assert.falsy(dyn:find("libm.so", 1, true), dyn)
  end)
end)
