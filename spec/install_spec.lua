-- install_spec.lua - `cmake --install` into a temporary prefix, and luasvc
-- run from there: the binary, the examples, the editor types `luasvc new`
-- points at, the man page made from the usage text, the docs.
local build = os.getenv("LUASVC_BUILD_DIR") or "build"

describe("an install into a prefix", function()
  after_each(H.cleanup)
  local prefix

  before_each(function()
    prefix = H.tmpdir() .. "/prefix"
    local rc, out = H.sh("cmake --install " .. H.q(build) .. " --prefix " .. H.q(prefix))
    assert.equal(0, rc, out)
  end)

  it("lays out the binary, examples, types, man page and docs", function()
    for _, f in ipairs({ "bin/luasvc", "share/luasvc/examples/heartbeat.lua",
      "share/luasvc/examples/status_poster.lua", "share/luasvc/types/luasvc.lua",
      "share/man/man1/luasvc.1", "share/doc/luasvc/README.md", "share/doc/luasvc/API.md" }) do
      assert.truthy(H.read(prefix .. "/" .. f), "missing: " .. f)
    end
    assert.equal(H.read("lua/types/luasvc.lua"), H.read(prefix .. "/share/luasvc/types/luasvc.lua"))
    local rc, out = H.sh(H.q(prefix .. "/bin/luasvc") .. " version")
    assert.equal(0, rc, out)
    assert.truthy(out:match("^luasvc %d+%.%d+%.%d+"), out)
  end)

  it("has a man page with every line of the usage text", function()
    local page = H.read(prefix .. "/share/man/man1/luasvc.1")
    assert.truthy(page:find("^%.TH LUASVC 1"), page)
    local _, help = H.sh(H.q(prefix .. "/bin/luasvc") .. " --help")
    for line in help:gmatch("[^\n]+") do
      local roff = line:gsub("\\", "\\e"):gsub("^([.'])", "\\&%1")
      assert.truthy(page:find("\n" .. roff .. "\n", 1, true), "not in the man page: " .. line)
    end
  end)

  it("runs an installed example with the installed binary", function()
    local bin = prefix .. "/bin/luasvc"
    local p = H.start { bin = bin, scripts = { prefix .. "/share/luasvc/examples/heartbeat.lua" }, args = { "50" } }
    H.wait_log(p, "heartbeat: beat 2\n")
    local rc, out = H.sh(string.format("LUASVC_RUNTIME_DIR=%s %s control heartbeat 200", H.q(p.rt), H.q(bin)))
    assert.equal(0, rc, out)
    H.wait_log(p, "control 200: %d+ beats so far")
    rc, out = H.sh(string.format("LUASVC_RUNTIME_DIR=%s %s stop heartbeat", H.q(p.rt), H.q(bin)))
    assert.equal(0, rc, out)
    assert.equal(0, H.wait_exit(p))
    rc, out = H.sh(H.q(bin) .. " check --strict " .. H.q(prefix .. "/share/luasvc/examples/heartbeat.lua")
      .. " " .. H.q(prefix .. "/share/luasvc/examples/status_poster.lua"))
    assert.equal(0, rc, out)
  end)

  it("scaffolds a typed script and a .luarc.json pointing at the installed types", function()
    local json = require "dkjson"
    local d = H.tmpdir()
    local rc, out = H.sh("cd " .. H.q(d) .. " && " .. H.q(prefix .. "/bin/luasvc") .. " new hello")
    assert.equal(0, rc, out)
    assert.truthy(H.read(d .. "/hello.lua"):find("\n---@type luasvc.Script\nlocal S = {", 1, true))
    local rc2, real = H.sh("realpath " .. H.q(prefix .. "/share/luasvc/types"))
    assert.equal(0, rc2)
    local rc_ = json.decode(H.read(d .. "/.luarc.json"))
    assert.same({ (real:gsub("\n$", "")) }, rc_["workspace.library"])
    assert.equal("Lua 5.4", rc_["runtime.version"])
    rc, out = H.sh(H.q(prefix .. "/bin/luasvc") .. " check --strict " .. H.q(d .. "/hello.lua"))
    assert.equal(0, rc, out)
    -- an existing .luarc.json is the user's: kept as it is
    H.write(d .. "/.luarc.json", "{}\n")
    rc, out = H.sh("cd " .. H.q(d) .. " && " .. H.q(prefix .. "/bin/luasvc") .. " new other")
    assert.equal(0, rc, out)
    assert.equal("{}\n", H.read(d .. "/.luarc.json"))
  end)
end)
