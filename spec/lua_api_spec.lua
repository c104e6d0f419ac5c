-- lua_api_spec.lua - the luasvc module and ctx as a script sees them, and
-- the API reference (lua/api.lua) kept true to them.
local F = H.fixtures

local function api_values(p)
  local v = {}
  for k, val in H.log(p):gmatch("API:([%w_%.]+)=([^\n]*)") do
    if v[k] then
      if type(v[k]) ~= "table" then v[k] = { v[k] } end
      table.insert(v[k], val)
    else
      v[k] = val
    end
  end
  return v
end

describe("the Lua API", function()
  after_each(H.cleanup)
  local v, log

  setup(function()
    local p = H.start { scripts = { F .. "api.lua" } }
    H.wait_state(p, "api", "RUNNING")
    H.wait_log(p, "API:sleep_in_own_coroutine")
    assert.equal(0, (H.client(p, "pause", "api")))
    H.wait_state(p, "api", "PAUSED")
    H.kill(p, "TERM")
    assert.equal(0, H.wait_exit(p))
    v, log = api_values(p), H.log(p)
  end)

  it("gives the module its documented fields", function()
    assert.equal("accepts,controls,mailslot,now,states,version", v.module)
    assert.truthy(v.version:match("^%d+%.%d+%.%d+$"))
    assert.equal("4", v["states.RUNNING"])
    assert.equal("15", v["controls.preshutdown"])
    assert.equal("2", v["accepts.pause_continue"])
    assert.equal("directory", v.lfs_dir)
  end)

  it("gives ctx its name, data and methods", function()
    assert.equal("await,exec,exit,log,progress,queue,reloading,sleep,spawn,state,stats,status,stopping", v.ctx_methods)
    assert.equal("data,name", v.ctx_fields)
    assert.equal("api", v.name)
    assert.equal("kept", v.data_kept)
  end)

  it("reports states and progress as the phases go", function()
    assert.equal("START_PENDING", v.state_in_start)
    assert.equal("RUNNING", v.state_in_run)
    assert.equal("PAUSE_PENDING", v.state_in_pause)
    assert.equal("STOP_PENDING", v.state_in_stop)
    assert.equal("true", v.progress_in_start)
    assert.equal("false", v.progress_in_run)
    assert.equal("true", v.progress_in_stop)
  end)

  it("sleeps, and wakes with false on a stop", function()
    assert.equal("true", v.sleep_true)
    assert.equal("true", v.slept_enough)
    assert.equal("true", v.sleep_in_own_coroutine)
    assert.equal("true", v.sleep_false_on_stop)
    assert.equal("false", v.stopping_in_start)
    assert.equal("true", v.stopping_in_run)
  end)

  it("raises for a caller's mistakes with the standard message", function()
    assert.same({ "number expected, got string", "out of range",
      "unknown level 'loud' (debug, info, notice, warning, error)",
      "unknown level 'warn' (debug, info, notice, warning, error)",
      "luasvc context expected, got table", "out of range" }, v.bad_arg)
  end)

  it("logs at the levels asked, filtering debug by default", function()
    assert.truthy(log:find("warning +api: 42\n"))
    assert.falsy(log:find("not shown", 1, true))
  end)
end)

describe("Lua C modules", function()
  after_each(H.cleanup)

  it("load with require, taking the Lua API from the luasvc binary", function()
    local p = H.start { scripts = { F .. "c_module.lua" } }
    assert.equal(0, H.wait_exit(p))
    assert.truthy(H.log(p):find("CMOD:monotime=number", 1, true), H.log(p))
  end)
end)

describe("the API reference", function()
  after_each(H.cleanup)

  it("documents exactly what the module and ctx have", function()
    local api = dofile("lua/api.lua")
    local p = H.start { scripts = { F .. "api.lua" } }
    H.wait_log(p, "API:req_methods", 10) -- logged after ctx_fields (a request to itself first)
    H.kill(p, "TERM")
    H.wait_exit(p)
    local vals = api_values(p)
    H.cleanup()
    local live, documented = {}, {}
    for k in vals.module:gmatch("[^,]+") do live[#live + 1] = "luasvc." .. k end
    for k in vals.ctx_fields:gmatch("[^,]+") do live[#live + 1] = "ctx." .. k end
    for k in vals.ctx_methods:gmatch("[^,]+") do live[#live + 1] = "ctx:" .. k end
    for k in vals.mailslot_fns:gmatch("[^,]+") do live[#live + 1] = "luasvc.mailslot." .. k end
    for k in vals.reader_methods:gmatch("[^,]+") do live[#live + 1] = "reader:" .. k end
    for k in vals.writer_methods:gmatch("[^,]+") do live[#live + 1] = "writer:" .. k end
    for k in vals.queue_methods:gmatch("[^,]+") do live[#live + 1] = "queue:" .. k end
    for k in vals.http_fns:gmatch("[^,]+") do live[#live + 1] = "luasvc.http." .. k end
    for k in vals.server_methods:gmatch("[^,]+") do live[#live + 1] = "server:" .. k end
    for k in vals.req_methods:gmatch("[^,]+") do live[#live + 1] = "req:" .. k end
    for _, e in ipairs(api.http) do documented[#documented + 1] = e.name end
    for _, e in ipairs(api.module) do documented[#documented + 1] = e.name end
    for _, e in ipairs(api.mailslot) do documented[#documented + 1] = e.name end
    for _, e in ipairs(api.ctx) do documented[#documented + 1] = e.name end
    for _, e in ipairs(api.queue) do documented[#documented + 1] = e.name end
    table.sort(live)
    table.sort(documented)
    assert.same(live, documented)
  end)

  it("documents every script field the contract checks", function()
    local src = H.read("lua/contract.lua")
    local block = assert(src:match("local FIELDS = (%b{})"), "no FIELDS table in lua/contract.lua")
    local checked, documented = {}, {}
    for k in block:gmatch("([%w_]+) = \"") do checked[#checked + 1] = k end
    for _, e in ipairs(dofile("lua/api.lua").contract) do documented[#documented + 1] = e.name end
    table.sort(checked)
    table.sort(documented)
    assert.same(checked, documented)
  end)

  it("documents every handler the contract knows", function()
    local src = H.read("lua/contract.lua")
    local block = assert(src:match("local HANDLERS = (%b{})"), "no HANDLERS table in lua/contract.lua")
    local known, documented = {}, {}
    for k in block:gmatch('"([%w_]+)"') do known[#known + 1] = k end
    for _, e in ipairs(dofile("lua/api.lua").handlers) do documented[#documented + 1] = e.name end
    table.sort(known)
    table.sort(documented)
    assert.same(known, documented)
  end)

  it("has LuaLS definitions (lua/types/luasvc.lua) for every documented name", function()
    local api = dofile("lua/api.lua")
    local rc, out = H.sh("luac5.4 -p lua/types/luasvc.lua")
    assert.equal(0, rc, out)
    -- what the file defines: class -> member -> {kind, params}
    local defs, var_class, class, params = {}, {}, nil, {}
    local aliases = {}
    for line in H.read("lua/types/luasvc.lua"):gmatch("[^\n]+") do
      local c = line:match("^%-%-%-@class ([%w_.]+)")
      if c then class = c; defs[c] = defs[c] or {} end
      local f, ft = line:match("^%-%-%-@field ([%w_]+)%??%s+(.*)$")
      if f and class then defs[class][f] = { kind = "field", type = ft } end
      local v = line:match("^local ([%w_]+) = {}$")
      if v and class then var_class[v] = class end
      local p = line:match("^%-%-%-@param ([%w_.]+)%??%s")
      if p then params[#params + 1] = p end
      local var, sep, name, args = line:match("^function ([%w_]+)([.:])([%w_]+)%((.-)%) end$")
      if var then
        defs[var_class[var]][name] = { kind = sep == ":" and "method" or "function", params = params, args = args }
      end
      if line:match("^function") or line == "" then params = {} end
      local an, av = line:match("^%-%-%-@alias ([%w_.]+) (.*)$")
      if an then
        aliases[an] = {}
        for x in av:gmatch('"([^"]+)"') do aliases[an][#aliases[an] + 1] = x end
        table.sort(aliases[an])
      end
    end
    local CLASS = { { "^luasvc%.mailslot%.", "luasvc.mailslot" }, { "^luasvc%.http%.", "luasvc.http" },
      { "^server[.:]", "luasvc.HttpServer" }, { "^req[.:]", "luasvc.HttpRequest" }, { "^luasvc%.", "luasvc" },
      { "^ctx[.:]", "luasvc.Context" }, { "^reader[.:]", "luasvc.Reader" }, { "^writer[.:]", "luasvc.Writer" } }
    local missing = {}
    for _, list in ipairs({ api.module, api.mailslot, api.ctx, api.http }) do
      for _, e in ipairs(list) do
        local cls, member
        for _, c in ipairs(CLASS) do
          if e.name:find(c[1]) then cls, member = c[2], e.name:gsub(c[1], "") break end
        end
        local d = defs[cls] and defs[cls][member]
        if not d then
          missing[#missing + 1] = e.name
        elseif e.kind == "function" then
          assert.equal(e.name:find(":", 1, true) and "method" or "function", d.kind, e.name)
          local want = {}
          for _, p in ipairs(e.params) do want[#want + 1] = (p[1]:gsub("%?$", "")) end
          assert.same(want, d.params, e.name)
        else
          assert.equal("field", d.kind, e.name)
          assert.equal(e.type .. " ", d.type:sub(1, #e.type + 1), e.name)
        end
      end
    end
    for _, list in ipairs({ api.contract, api.handlers }) do
      for _, e in ipairs(list) do
        if not defs["luasvc.Script"][e.name] then missing[#missing + 1] = "S." .. e.name end
      end
    end
    assert.same({}, missing)
    -- the aliases name what the live module has
    local p = H.start { scripts = { F .. "api.lua" } }
    H.wait_log(p, "API:ctx_fields")
    H.kill(p, "TERM")
    H.wait_exit(p)
    local live = api_values(p)
    local function sorted(csv)
      local l = {}
      for k in csv:gmatch("[^,]+") do l[#l + 1] = k end
      table.sort(l)
      return l
    end
    assert.same(sorted(live.accepts_names), aliases["luasvc.AcceptName"])
    assert.same(sorted(live.state_names), aliases["luasvc.StateName"])
    assert.same(sorted("debug,info,notice,warning,error"), aliases["luasvc.LogLevel"])
  end)

  it("names the POSIX slots' socket type as the code makes them", function()
    local kind = assert(H.read("runtime/primitives/posix_mailslot.c"):match("socket%(AF_UNIX, (SOCK_%u+)"))
    local doc
    for _, e in ipairs(dofile("lua/api.lua").module) do
      if e.name == "luasvc.mailslot" then doc = e.doc end
    end
    assert.truthy(doc:find(kind, 1, true), doc)
    assert.falsy(doc:find("datagram sockets", 1, true), doc)
  end)

  it("lua/API.md and lua/types/luasvc.lua are generated from it", function()
    local rc, out = H.sh("lua5.4 scripts/gendoc --check")
    assert.equal(0, rc, out)
  end)
end)
