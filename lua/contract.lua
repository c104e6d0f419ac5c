--[[
contract.lua - checks a service script's table against the script contract
(v1) and returns what the runtime needs from it. Compiled into the binary;
runs in the service's own Lua state on its worker thread.

The chunk is called with the accepts table (name -> bit, as
luasvc.accepts). Returns a function(script, path, name_valid) -> info, raising
"path:line: message" for every violation. name_valid(name) -> true | nil,
rule is the runtime's name rule (util.c), shared with the C side. The
line is found by looking for the offending key in the source; when it cannot be found the message names the file alone.

What is allowed but probably a mistake is a warning: a field the contract
does not know (with the nearest known name when one is close), a handler for
a control the script does not accept, an accepted control that needs a
handler and has none, a controls key outside 128..255 (never called). Each
goes to warn() as "file:line: message" (the runtime logs it at level
warning; `luasvc check` collects it) and into info.warnings as
{file = , line = , message = }. A field whose name starts with "_" is the
script's own and never warned about.
]]

-- The accepts names and their bits (luasvc.accepts), given by the runtime
-- (reload.c): a script that does not require "luasvc" never pays for
-- opening it.
local ACCEPTS = ...

local HANDLERS = {
  "start", "run", "stop", "pause", "continue", "shutdown", "preshutdown",
  "paramchange", "sessionchange", "powerevent", "reload",
}
local FIELDS = {
  name = "string", display_name = "string", description = "string",
  accepts = "table", stop_timeout = "number", controls = "table", watchdog = "number",
  status_slot = "string", handler_timeout = "number", memory_limit = "number",
  console = "boolean",
}
local DEFAULT_ACCEPTS = { "stop", "shutdown" }
-- The accepts entry that lets a manager send each handler's control; stop
-- is absent: its handler runs on every stop, accepted or not.
local HANDLER_ACCEPT = {
  pause = "pause_continue", continue = "pause_continue", shutdown = "shutdown",
  preshutdown = "preshutdown", paramchange = "paramchange",
  sessionchange = "sessionchange", powerevent = "powerevent",
}
-- Accepted controls that do nothing without a handler (the others have a
-- default: pause holds run's sleep, paramchange reloads, shutdown and
-- preshutdown stop).
local NEEDS_HANDLER = { sessionchange = "sessionchange(ctx, type, session_id)",
  powerevent = "powerevent(ctx, type, setting)" }
local KNOWN = {}
for k in pairs(FIELDS) do KNOWN[#KNOWN + 1] = k end
for _, h in ipairs(HANDLERS) do KNOWN[#KNOWN + 1] = h end
table.sort(KNOWN)

-- Levenshtein distance, case-insensitive.
local function distance(a, b)
  a, b = a:lower(), b:lower()
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- The known name nearest to key, when near enough to be what was meant.
local function suggest(key)
  local best, bd = nil, math.huge
  for _, k in ipairs(KNOWN) do
    local d = distance(key, k)
    if d < bd then best, bd = k, d end
  end
  if bd <= math.max(1, math.min(2, #key // 3)) then return best end
end

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

local HANDLER_SET = {}
for _, h in ipairs(HANDLERS) do HANDLER_SET[h] = true end

-- Where a Lua function was defined: file, line (nil for anything else).
local function fn_where(v)
  if type(v) ~= "function" then return nil end
  local d = debug.getinfo(v, "S")
  if d.what ~= "Lua" or d.source:sub(1, 1) ~= "@" or d.linedefined <= 0 then return nil end
  return d.source:sub(2), d.linedefined
end


-- A string quoted for a message, its control characters written as Lua
-- escapes, so that a message never carries them.
local CTRL = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ['"'] = '\\"', ["\\"] = "\\\\" }
local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return CTRL[c] or string.format("\\%03d", c:byte()) end) .. '"'
end

return function(script, path, name_valid)
  local lines
  local warnings = {}
  local function fail(line, fmt, ...)
    local where = line and (path .. ":" .. line) or path
    error(where .. ": " .. string.format(fmt, ...), 0)
  end
  local function warning(file, line, fmt, ...)
    warnings[#warnings + 1] = { file = file, line = line, message = string.format(fmt, ...) }
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
    local bit = ACCEPTS[a]
    if not bit then
      lines = lines or read_lines(path)
      local known = {}
      for n in pairs(ACCEPTS) do known[#known + 1] = n end
      table.sort(known)
      fail(type(a) == "string" and find_line(lines, '["\']' .. esc(a) .. '["\']') or key_line("accepts"),
        "unknown accepts entry %s (#%d); known: %s", type(a) == "string" and ("'" .. a .. "'") or tostring(a), i,
        table.concat(known, ", "))
    end
    mask = mask | bit
  end

  -- nil: the runtime's default (LSVC_STOP_TIMEOUT_DEFAULT_MS, supervisor.h)
  local stop_timeout = script.stop_timeout
  if stop_timeout ~= nil and (stop_timeout ~= math.floor(stop_timeout) or stop_timeout < 1 or stop_timeout > 3600000) then
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

  -- handler_timeout: ms a control's handler may run (or wait) before it is
  -- interrupted; memory_limit: bytes the service's Lua state may hold.
  local handler_timeout = script.handler_timeout or 30000
  if handler_timeout ~= math.floor(handler_timeout) or handler_timeout < 1 or handler_timeout > 86400000 then
    fail(key_line("handler_timeout"), "handler_timeout must be a whole number of ms in 1..86400000 (got %s)", tostring(handler_timeout))
  end
  local memory_limit = script.memory_limit
  if memory_limit ~= nil and (memory_limit ~= math.floor(memory_limit) or memory_limit < 1048576 or memory_limit > 2 ^ 48) then
    fail(key_line("memory_limit"), "memory_limit must be a whole number of bytes, at least 1048576 (got %s)", tostring(memory_limit))
  end

  local user = {}
  for k, v in pairs(script.controls or {}) do
    if math.type(k) ~= "integer" or k < 128 or k > 255 then
      lines = lines or read_lines(path)
      local file, line = fn_where(v)
      if not line then
        file, line = path, math.type(k) == "integer" and find_line(lines, "%[%s*" .. k .. "%s*%]") or key_line("controls")
      end
      warning(file, line, "controls key %s is outside the user range 128..255: it is never called",
        type(k) == "string" and ("'" .. k .. "'") or tostring(k))
      goto next
    end
    if type(v) ~= "function" then
      lines = lines or read_lines(path)
      fail(find_line(lines, "%[%s*" .. k .. "%s*%]") or key_line("controls"),
        "controls[%d] must be a function (got %s)", k, type(v))
    end
    user[#user + 1] = k
    ::next::
  end
  table.sort(user)

  -- Fields nobody reads, and handlers and controls that do not meet.
  for k, v in pairs(script) do
    if type(k) ~= "string" then
      warning(path, nil, "[%s]: not a field of the contract (a script's fields have names)", tostring(k))
    elseif not FIELDS[k] and not HANDLER_SET[k] and k:sub(1, 1) ~= "_" then
      local file, line = fn_where(v)
      if not line then file, line = path, key_line(k) end
      local near = suggest(k)
      if near then
        warning(file, line, "`%s`: not a field of the contract; did you mean `%s`?", k, near)
      else
        warning(file, line, "`%s`: not a field of the contract (a name starting with _ is the script's own)", k)
      end
    end
  end
  local accepted = {}
  for _, a in ipairs(accepts) do accepted[a] = true end
  for _, h in ipairs(HANDLERS) do
    local need = HANDLER_ACCEPT[h]
    local v = rawget(script, h)
    if need and v ~= nil and not accepted[need] then
      local file, line = fn_where(v)
      if not line then file, line = path, key_line(h) end
      warning(file, line, "`%s`: the script does not accept %s, so this handler is never called; add \"%s\" to accepts",
        h, need, need)
    end
  end
  for a, sig in pairs(NEEDS_HANDLER) do
    if accepted[a] and rawget(script, a) == nil then
      lines = lines or read_lines(path)
      warning(path, find_line(lines, '["\']' .. esc(a) .. '["\']') or key_line("accepts"),
        "accepts \"%s\" but has no %s handler: the control does nothing (function S.%s)", a, a, sig)
    end
  end
  table.sort(warnings, function(a, b)
    if a.file ~= b.file then return a.file < b.file end
    return (a.line or 0) < (b.line or 0)
  end)
  for _, w in ipairs(warnings) do
    warn(w.line and (w.file .. ":" .. w.line .. ": " .. w.message) or (w.file .. ": " .. w.message))
  end

  return {
    script = script,
    name = name,
    display_name = script.display_name or name,
    accepts = mask,
    stop_timeout = stop_timeout and math.tointeger(stop_timeout),
    watchdog = watchdog and math.tointeger(watchdog) or 0,
    description = script.description or "",
    user = user,
    status_slot = slot,
    handler_timeout = math.tointeger(handler_timeout),
    memory_limit = memory_limit and math.tointeger(memory_limit) or 0,
    console = script.console ~= false, -- false: luasvc eval and attach are refused
    warnings = warnings,
  }
end
