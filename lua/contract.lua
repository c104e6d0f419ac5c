--[[
contract.lua - checks a service script's table against the script contract
(v1) and returns what the runtime needs from it. Compiled into the binary;
runs in the service's own Lua state on its worker thread.

Returns a function(script, path, name_valid) -> info, raising
"path:line: message" for every violation. name_valid(name) -> true | nil,
rule is the runtime's name rule (util.c), shared with the C side. The line is found by looking for the offending key in the
source; when it cannot be found the message names the file alone.
]]

local luasvc = require "luasvc"

local HANDLERS = {
  "start", "run", "stop", "pause", "continue", "shutdown", "preshutdown",
  "paramchange", "sessionchange", "powerevent", "reload",
}
local FIELDS = {
  name = "string", display_name = "string", description = "string",
  accepts = "table", stop_timeout = "number", controls = "table", watchdog = "number",
  status_slot = "string",
}
local DEFAULT_ACCEPTS = { "stop", "shutdown" }

local function read_lines(path)
  local f = io.open(path, "rb")
  if not f then return {} end
  local lines = {}
  for l in f:lines() do lines[#lines + 1] = l end
  f:close()
  return lines
end

-- The first line matching any of the patterns, or nil.
local function find_line(lines, ...)
  local pats = { ... }
  for i, l in ipairs(lines) do
    for _, p in ipairs(pats) do
      if l:find(p) then return i end
    end
  end
end

local function esc(s) return (s:gsub("%p", "%%%0")) end

-- A string quoted for a message, its control characters written as Lua
-- escapes, so that a message never carries them.
local CTRL = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ['"'] = '\\"', ["\\"] = "\\\\" }
local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return CTRL[c] or string.format("\\%03d", c:byte()) end) .. '"'
end

return function(script, path, name_valid)
  local lines
  local function fail(line, fmt, ...)
    local where = line and (path .. ":" .. line) or path
    error(where .. ": " .. string.format(fmt, ...), 0)
  end
  local function key_line(key)
    lines = lines or read_lines(path)
    local k = esc(key)
    return find_line(lines, "%f[%w_]" .. k .. "%s*=", "[%.:]" .. k .. "%s*%(",
      "%.%s*" .. k .. "%f[^%w_]")
  end

  if type(script) ~= "table" then
    lines = read_lines(path)
    local last = #lines
    for i = #lines, 1, -1 do
      if lines[i]:find("^%s*return") then last = i break end
    end
    fail(last > 0 and last or nil,
      "the script returned %s; a service script must return a table (return S)",
      type(script))
  end

  for k, v in pairs(script) do
    if type(k) == "string" and FIELDS[k] and type(v) ~= FIELDS[k] then
      fail(key_line(k), "field '%s' must be a %s (got %s)", k, FIELDS[k], type(v))
    end
  end
  for _, h in ipairs(HANDLERS) do
    local v = rawget(script, h)
    if v ~= nil and type(v) ~= "function" then
      fail(key_line(h), "handler '%s' must be a function (got %s)", h, type(v))
    end
  end
  if type(script.run) ~= "function" then
    fail(nil, "the script has no run function (function S.run(ctx) ... end)")
  end

  local name = script.name
  if name == nil then
    name = path:match("([^/\\]+)$"):gsub("%.lua$", "")
  end
  local okn, rule = name_valid(name)
  if not okn then
    fail(key_line("name"), "invalid service name %s (%s)", quote(name), rule)
  end
  local display = script.display_name
  if display ~= nil and display:find("%c") then
    fail(key_line("display_name"), "display_name %s has a control character", quote(display))
  end

  local mask = 0
  local accepts = script.accepts or DEFAULT_ACCEPTS
  for i, a in ipairs(accepts) do
    local bit = luasvc.accepts[a]
    if not bit then
      lines = lines or read_lines(path)
      local known = {}
      for n in pairs(luasvc.accepts) do known[#known + 1] = n end
      table.sort(known)
      fail(type(a) == "string" and find_line(lines, '["\']' .. esc(a) .. '["\']') or key_line("accepts"),
        "unknown accepts entry %s (#%d); known: %s", type(a) == "string" and ("'" .. a .. "'") or tostring(a), i,
        table.concat(known, ", "))
    end
    mask = mask | bit
  end

  local stop_timeout = script.stop_timeout or 20000
  if stop_timeout ~= math.floor(stop_timeout) or stop_timeout < 1 or stop_timeout > 3600000 then
    fail(key_line("stop_timeout"), "stop_timeout must be a whole number of ms in 1..3600000 (got %s)", tostring(stop_timeout))
  end

  local slot = script.status_slot
  if slot ~= nil then
    local oks, srule = name_valid(slot)
    if not oks then
      fail(key_line("status_slot"), "invalid status_slot %s (%s)", quote(slot), srule)
    end
  end

  -- watchdog: under systemd, the unit's WatchdogSec (luasvc install); the
  -- runtime pings only while the service's worker is responsive.
  local watchdog = script.watchdog
  if watchdog ~= nil and (watchdog ~= math.floor(watchdog) or watchdog < 100 or watchdog > 3600000) then
    fail(key_line("watchdog"), "watchdog must be a whole number of ms in 100..3600000 (got %s)", tostring(watchdog))
  end

  local user = {}
  for k, v in pairs(script.controls or {}) do
    if math.type(k) ~= "integer" or k < 128 or k > 255 then
      lines = lines or read_lines(path)
      fail(math.type(k) == "integer" and find_line(lines, "%[%s*" .. k .. "%s*%]") or key_line("controls"),
        "controls key %s is outside the user range 128..255", tostring(k))
    end
    if type(v) ~= "function" then
      lines = lines or read_lines(path)
      fail(find_line(lines, "%[%s*" .. k .. "%s*%]") or key_line("controls"),
        "controls[%d] must be a function (got %s)", k, type(v))
    end
    user[#user + 1] = k
  end
  table.sort(user)

  return {
    script = script,
    name = name,
    display_name = script.display_name or name,
    accepts = mask,
    stop_timeout = math.tointeger(stop_timeout),
    watchdog = watchdog and math.tointeger(watchdog) or 0,
    description = script.description or "",
    user = user,
    status_slot = slot,
  }
end
