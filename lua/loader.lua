--[[
loader.lua - loads a service's script (first time and on every hot reload)
and watches it and the modules it required from its own directory.
Compiled into the binary; runs in the service's Lua state on its worker.

The chunk returns function(contract, guard, sig, path) -> L, a table
(guard: runtime/fileguard.c's checks, guard.secure(file [, what]) -> true |
nil, message and guard.name_valid(name); sig(file) -> signature | nil):
  L.load(first, current_name) -> info | nil, message
      Loads and validates the script. Modules the script requires from its
      own directory are loaded afresh; on failure the previous ones are put
      back, so a bad edit changes nothing. info is contract()'s table plus
      `modules` (the files watched).
  L.commit(info)   the new version is in place: watch its files from now on
  L.rollback()     the new version was refused: after load (its reload failed,
                   its top level was interrupted), or a load that failed
  L.pause(), L.unpause()
      A hot reload's load runs as a coroutine that the runtime suspends
      when a control arrives, so that the running version handles it:
      pause() puts back what the top level changed so far (kept aside),
      unpause() takes the world as the running version left it and puts
      the top level's changes back in place before it goes on.
      A refused version leaves no trace: what its top level changed in the
      global table, package, package.loaded and the standard libraries'
      tables (os, string, ...) is put back as it was.
  L.poll([told]) -> "changed" | "settling" | "writing" | nil
      Compares the signature (times, size, inode) of every watched file with the
      version in place. told, where the kernel tells of changes (inotify:
      runtime/fswatch.c), is asked after the look: "complete" (every change
      ended in a whole save: a close after writing, a rename into place)
      makes a change "changed" at once; "writing" (a writer has not closed)
      holds it. Else a change is "settling" until two polls see the same
      signature, so a half-written file is never loaded; a file that is
      missing for a moment (a save by rename) is settling, not deleted.
]]
return function(contract, guard, sig, path)
  local secure = guard.secure
  local load_file
  local L = {}
  local dir = path:match("^(.*)[/\\]") or "."
  local sep = package.config:sub(1, 1)
  local prefix = dir .. sep

  --[[ The search paths hold only what the service's owner controls: the
  script's own directory first, then the paths Lua was built with minus
  their relative entries ("./?.lua": the current directory, which anyone
  may own). LUA_PATH and LUA_CPATH from the environment are not taken;
  LUASVC_LUA_PATH and LUASVC_LUA_CPATH, when set, replace the built-in
  paths (";;" in them stands for those, as in LUA_PATH). ]]
  local function absolute(entry)
    return entry:sub(1, 1) == "/" or entry:match("^%a:[/\\]") ~= nil or entry:sub(1, 2) == "\\\\"
  end
  local function search_path(default, env)
    local kept = {}
    for entry in default:gmatch("[^;]+") do
      if absolute(entry) then kept[#kept + 1] = entry end
    end
    default = table.concat(kept, ";")
    local configured = os.getenv(env)
    if not configured or configured == "" then return default end
    configured = configured:gsub(";;", ";\1;")
    return (configured:gsub("\1", function() return default end):gsub(";;+", ";"):gsub("^;", ""):gsub(";$", ""))
  end
  package.path = prefix .. "?.lua;" .. prefix .. "?" .. sep .. "init.lua;" ..
    search_path(guard.default_path, "LUASVC_LUA_PATH")
  package.cpath = search_path(guard.default_cpath, "LUASVC_LUA_CPATH")

  --[[ package.searchpath as Lua's, but each candidate opened without
  blocking (guard.readable): Lua's fopen would block the worker on a FIFO
  planted in a module's place; that one is then refused by guard.secure. ]]
  local readable = guard.readable
  local function searchpath(name, spath, s, rep)
    s, rep = s or ".", rep or sep
    if s ~= "" then name = name:gsub(s:gsub("%p", "%%%0"), (rep:gsub("%%", "%%%%"))) end
    local tried = {}
    for template in spath:gmatch("[^;]+") do
      local file = template:gsub("%?", (name:gsub("%%", "%%%%")))
      if readable(file) then return file end
      tried[#tried + 1] = "no file '" .. file .. "'"
    end
    return nil, table.concat(tried, "\n\t")
  end
  package.searchpath = searchpath

  --[[ The searchers for files (Lua and C) are the runtime's own: each file
  found is checked as the script is (secure) *before* it is loaded or run,
  so a module another user could change never runs. ]]
  --[[ A file's chunk as loadfile would give it (a leading BOM and "#" line
  skipped, lines kept), read by guard.read: never blocking, and only from
  a regular file. ]]
  local read = guard.read
  load_file = function(file)
    local src, err = read(file)
    if not src then return nil, err end
    src = src:gsub("^\239\187\191", ""):gsub("^#[^\n]*", "")
    return load(src, "@" .. file)
  end

  local passed = {} -- files checked during this load
  local function check(file)
    local ok, err = secure(file, "module")
    if not ok then error(err, 0) end
    passed[file] = true
  end
  local function lua_searcher(name)
    local file, err = searchpath(name, package.path)
    if not file then return err end
    check(file)
    local chunk, lerr = load_file(file)
    if not chunk then
      error(string.format("error loading module '%s' from file '%s':\n\t%s", name, file, lerr), 0)
    end
    return chunk, file
  end
  -- Lua's loadfunc: "a.b-v2" opens luaopen_a_b, else luaopen_v2.
  local function loadfunc(file, name)
    local modname = name:gsub("%.", "_")
    local mark = modname:find("-", 1, true)
    if mark then
      local f, err, where = package.loadlib(file, "luaopen_" .. modname:sub(1, mark - 1))
      if f or where ~= "init" then return f, err, where end
      modname = modname:sub(mark + 1)
    end
    return package.loadlib(file, "luaopen_" .. modname)
  end
  local function c_load(name, file)
    local f, err, where = loadfunc(file, name)
    if f then return f, file end
    if where == "init" then return string.format("no module '%s' in file '%s'", name, file) end
    error(string.format("error loading module '%s' from file '%s':\n\t%s", name, file, err), 0)
  end
  local function c_searcher(name)
    local file, err = searchpath(name, package.cpath)
    if not file then return err end
    check(file)
    return c_load(name, file)
  end
  local function croot_searcher(name)
    local root = name:match("^([^.]+)%.")
    if not root then return nil end
    local file, err = searchpath(root, package.cpath)
    if not file then return err end
    check(file)
    return c_load(name, file)
  end
  package.searchers[2], package.searchers[3], package.searchers[4] = lua_searcher, c_searcher, croot_searcher

  --[[ require as Lua 5.4's, written in Lua so that a module's top level
  is called from Lua: a yield reaches through it, and a new version's
  load is sliced inside the modules it requires as in its own top level
  (Lua's require calls the module from C, where no yield reaches: a slow
  module top level froze the running version for as long). ]]
  local pkg, tostring_, type_ = package, tostring, type
  function require(name)
    if type_(name) == "number" then name = tostring_(name) end
    if type_(name) ~= "string" then
      error("bad argument #1 to 'require' (string expected, got " .. type_(name) .. ")", 2)
    end
    local have = pkg.loaded[name]
    if have ~= nil then return have end
    local searchers = pkg.searchers
    if type_(searchers) ~= "table" then error("'package.searchers' must be a table", 2) end
    local msg = {}
    for i = 1, #searchers do
      local loader, data = searchers[i](name)
      if type_(loader) == "function" then
        local r = loader(name, data)
        if r ~= nil then pkg.loaded[name] = r end
        if pkg.loaded[name] == nil then pkg.loaded[name] = true end
        return pkg.loaded[name], data
      elseif type_(loader) == "string" then
        msg[#msg + 1] = loader
      end
    end
    error("module '" .. name .. "' not found:\n\t" .. table.concat(msg, "\n\t"), 0)
  end

  --[[ What a new version's top level may change in the running version's
  world: the global table, package and its tables, the standard
  libraries' tables and the string metatable. A load takes a shallow
  snapshot of them (raw keys); a refused load puts back every key whose
  value differs. After a load that finished, only what that top level
  changed is put back (`undo`), so the running version's own changes made
  meanwhile (while the new version's reload runs) stay. ]]
  local shared = { _G, package, package.loaded, package.preload, package.searchers }
  for _, name in ipairs({ "os", "io", "string", "table", "math", "coroutine", "debug", "utf8" }) do
    if type(_G[name]) == "table" then shared[#shared + 1] = _G[name] end
  end
  shared[#shared + 1] = getmetatable("")
  -- the loader's own references: a top level that replaces the globals
  -- cannot change how its changes are put back
  local rawnext, rawset_, rawget_, setmt, getmt = next, rawset, rawget, debug.setmetatable, debug.getmetatable
  local ipairs = ipairs
  local before, undo = nil, nil
  local function take_snapshot()
    local snap = {}
    for i, t in ipairs(shared) do
      local copy = {}
      for k, v in rawnext, t do copy[k] = v end
      snap[i] = { copy = copy, mt = getmt(t) }
    end
    return snap
  end
  -- The changes since snap, as a list of { table, key, old value }.
  local function changes(snap)
    local list = {}
    for i, t in ipairs(shared) do
      local copy = snap[i].copy
      for k, v in rawnext, t do
        if copy[k] ~= v then list[#list + 1] = { t, k, copy[k] } end
      end
      for k, v in rawnext, copy do
        if rawget_(t, k) == nil then list[#list + 1] = { t, k, v } end
      end
      if getmt(t) ~= snap[i].mt then list[#list + 1] = { t, nil, snap[i].mt } end
    end
    return list
  end
  local function put_back(list)
    for _, c in ipairs(list) do
      if c[2] == nil then setmt(c[1], c[3]) else rawset_(c[1], c[2], c[3]) end
    end
  end

  local warn_ = warn
  local watched = {}     -- file -> signature of the version in place
  local candidate = nil  -- signatures seen at the last poll, while settling
  local attempted = nil  -- signatures of the last version tried and refused
  local saved = nil      -- package.loaded entries replaced by a load
  local stash = nil      -- a paused load's changes: { table, key, old, new }

  -- What was loaded before any script (the standard libraries, luasvc,
  -- lfs) is never the script's own: no need to look for it on disk.
  local builtin = {}
  for name in pairs(package.loaded) do builtin[name] = true end
  builtin.lfs, builtin.luasvc = true, true

  -- Modules currently loaded from the script's directory: name -> file.
  local function own_modules()
    local mods = {}
    for name in pairs(package.loaded) do
      if type(name) == "string" and not builtin[name] then
        local file = searchpath(name, prefix .. "?.lua;" .. prefix .. "?" .. sep .. "init.lua")
        if file then mods[name] = file end
      end
    end
    return mods
  end

  local function traceback(e)
    return debug.traceback(tostring(e), 2)
  end

  local function snapshot()
    local now = {}
    for file in pairs(watched) do now[file] = sig(file) or "missing" end
    return now
  end

  local function same(a, b)
    if not a or not b then return false end
    for k, v in pairs(a) do if b[k] ~= v then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
  end

  function L.load(first, current_name)
    -- A refused version is not tried again until one of its files changes.
    attempted = snapshot()
    passed = {}
    local ok, err = secure(path)
    if not ok then return nil, err end
    undo, stash = nil, nil
    before = not first and take_snapshot() or nil
    saved = {}
    for name in pairs(own_modules()) do
      saved[name] = package.loaded[name]
      package.loaded[name] = nil
    end
    local function restore()
      for name in pairs(own_modules()) do package.loaded[name] = nil end
      for name, v in pairs(saved) do package.loaded[name] = v end
      saved = nil
      if before then put_back(changes(before)) before = nil end
    end
    local chunk, lerr = load_file(path)
    if not chunk then restore() return nil, lerr end
    local okc, script = xpcall(chunk, traceback)
    if not okc then restore() return nil, script end
    local oki, info = pcall(contract, script, path, guard.name_valid)
    if not oki then restore() return nil, info end
    if not first and info.name ~= current_name then
      restore()
      return nil, string.format("%s: the service's name cannot change while it runs (was '%s', now '%s'); restart it to rename it",
        path, current_name, info.name)
    end
    info.modules = { path }
    for _, file in pairs(own_modules()) do
      if not passed[file] then -- loaded some other way: checked now
        local okm, merr = secure(file, "module")
        if not okm then restore() return nil, merr end
      end
      info.modules[#info.modules + 1] = file
    end
    table.sort(info.modules, function(a, b) return a == path or (b ~= path and a < b) end)
    if before then undo = changes(before) before = nil end
    return info
  end

  function L.commit(info)
    saved = nil
    before, undo = nil, nil
    attempted = nil
    watched = {}
    for _, file in ipairs(info.modules) do watched[file] = sig(file) or "missing" end
    candidate = nil
  end

  function L.pause()
    if not before then return end
    local list = changes(before)
    for _, c in ipairs(list) do
      if c[2] == nil then c[4] = getmt(c[1]) else c[4] = rawget_(c[1], c[2]) end
    end
    put_back(list)
    stash, before = list, nil
  end

  function L.unpause()
    if not stash then return end
    before = take_snapshot()
    for _, c in ipairs(stash) do
      if c[2] == nil then setmt(c[1], c[4]) else rawset_(c[1], c[2], c[4]) end
    end
    stash = nil
  end

  function L.rollback()
    -- a load cut short (interrupted): everything since it began
    stash = nil -- paused: its changes are aside already
    if before then put_back(changes(before)) before = nil end
    if undo then put_back(undo) undo = nil end
    if not saved then return end
    for name in pairs(own_modules()) do package.loaded[name] = nil end
    for name, v in pairs(saved) do package.loaded[name] = v end
    saved = nil
  end

  function L.poll(told)
    local now, differs = {}, false
    for file, old in pairs(watched) do
      local s = sig(file)
      now[file] = s or "missing"
      if s ~= old then differs = true end
    end
    -- asked after the look: every write that made what was seen is told
    local how = told and told()
    if not differs or same(now, attempted) then candidate = nil return nil end
    if how == "writing" then candidate = nil return "writing" end
    local whole = how == "complete"
    for _, s in pairs(now) do
      if s == "missing" then whole = false break end
    end
    if whole then candidate = nil return "changed" end
    -- A file missing at two looks in a row was deleted: said once, and not
    -- looked at again until a file changes (no settling poll after poll).
    for file, s in pairs(now) do
      if s == "missing" and candidate and candidate[file] == "missing" then
        candidate, attempted = nil, now
        warn_(file .. ": deleted; the running version goes on (a file saved there is loaded)")
        return nil
      end
    end
    local stable = candidate ~= nil
    if stable then
      for file, s in pairs(now) do
        if s == "missing" or candidate[file] ~= s then stable = false break end
      end
    end
    candidate = now
    if stable then
      candidate = nil
      return "changed"
    end
    return "settling"
  end

  function L.files()
    local list = {}
    for file in pairs(watched) do list[#list + 1] = file end
    table.sort(list)
    return list
  end

  return L
end
