--[[
usage.lua - reading the command line's one table as `luasvc help` prints
it, and the README's command reference, so that specs can hold them
against each other (spec/help_spec.lua on Linux, spec/wine/help_spec.lua
for luasvc.exe).
--]]
local U = {}

local function lines(s)
  local t = {}
  for l in (s .. "\n"):gmatch("(.-)\r?\n") do t[#t + 1] = l end
  return t
end

local function options_in(s, into)
  into = into or {}
  for o in s:gmatch("%-%-[%w][%w%-]*") do into[o] = true end
  return into
end
U.options_in = options_in

-- `luasvc help`: the verb entries, as printed ("stop|pause|...").
function U.verbs(overview)
  local t = {}
  for _, l in ipairs(lines(overview)) do
    local v = l:match("^  luasvc (%S+)")
    if v then t[#t + 1] = v end
  end
  return t
end

-- `luasvc help VERB`: its synopsis (continuation lines joined) and the
-- set of options its option list gives.
function U.verb_help(text)
  local ls, syn, opts = lines(text), nil, {}
  local i = 1
  while ls[i] and not ls[i]:match("^usage: luasvc ") do i = i + 1 end
  assert(ls[i], "no usage line in:\n" .. text)
  syn = ls[i]
  i = i + 1
  while ls[i] and ls[i]:match("^%s") do
    syn = syn .. " " .. ls[i]:gsub("^%s+", "")
    i = i + 1
  end
  for _, l in ipairs(ls) do
    local o = l:match("^  (%-%-[%w][%w%-]*)")
    if o then opts[o] = true end
  end
  return syn, opts
end

-- The README's code block under the heading (a line equal to heading):
-- entry name ("run", "stop|pause") -> the set of options in its lines.
function U.readme_entries(readme, heading)
  local ls, i = lines(readme), 1
  while ls[i] and ls[i] ~= heading do i = i + 1 end
  assert(ls[i], "README has no heading " .. heading)
  while ls[i] and not ls[i]:match("^```") do i = i + 1 end
  i = i + 1
  local entries, order, cur = {}, {}, nil
  while ls[i] and not ls[i]:match("^```") do
    local v, rest = ls[i]:match("^luasvc (%S+)(.*)")
    if v then
      cur = v
      entries[v] = entries[v] or {}
      order[#order + 1] = v
      options_in(rest, entries[v])
    elseif cur then
      options_in(ls[i], entries[cur])
    end
    i = i + 1
  end
  return entries, order
end

-- Sorted keys of a set, for messages.
function U.keys(set)
  local t = {}
  for k in pairs(set) do t[#t + 1] = k end
  table.sort(t)
  return t
end

return U
