-- tail.lua - follows a file, across rotation by rename, and posts each new
-- line to a status slot (a mailslot).
--
--   luasvc run examples/tail.lua -- FILE SLOT
--   luasvc listen SLOT                     # elsewhere: prints the lines
--
-- Like `tail -F`: it starts at the file's end, reads what is appended, and
-- when the file is renamed away (logrotate's default) it reads what is
-- left in the old file, then follows the new one from its start; a
-- truncated file is read again from its start. It waits on fs events of
-- the file and of its directory (luv fs_events: no polling) and reads with
-- ctx:await. A line nobody listens to is dropped (the slot's writes never
-- block).
local uv = require "luv"
local luasvc = require "luasvc"

local S = { name = "tail", description = "Posts a file's new lines to a mailslot", stop_timeout = 3000 }

function S.start(ctx, args)
  if not args[1] or not args[2] then
    error("tail: luasvc run tail.lua -- FILE SLOT", 0)
  end
  ctx.data.path, ctx.data.slot = args[1], args[2]
  ctx.data.dir, ctx.data.base = args[1]:match("^(.*)/([^/]+)$")
  if not ctx.data.dir then ctx.data.dir, ctx.data.base = ".", args[1] end
  ctx.data.writer = assert(luasvc.mailslot.open(args[2]))
  ctx.data.posted = 0
end

-- The file now at the path: fd, inode (nil when there is none).
local function open(path)
  local fd = uv.fs_open(path, "r", 0)
  if not fd then return nil end
  return fd, uv.fs_fstat(fd).ino
end

-- Read what is new in f (fd, pos, rest) and post each complete line.
local function drain(ctx, f)
  while true do
    local ok, err, data = ctx:await(uv.fs_read, f.fd, 65536, f.pos)
    if not ok or err or not data or #data == 0 then return end
    f.pos = f.pos + #data
    local text = f.rest .. data
    for line in text:gmatch("([^\n]*)\n") do
      ctx.data.posted = ctx.data.posted + 1
      ctx.data.writer:write(line)
    end
    f.rest = text:match("([^\n]*)$")
  end
end

function S.run(ctx)
  local changed = ctx:queue()
  -- the directory: the file renamed away, or made again; the file itself
  -- (its inode): what is written to it, also after a rename
  local dir = uv.new_fs_event()
  assert(dir:start(ctx.data.dir, {}, function(err, name)
    if err or name == ctx.data.base then changed() end
  end))
  local file
  local function watch_file()
    if file then file:close() end
    file = uv.new_fs_event()
    if not file:start(ctx.data.path, {}, function() changed() end) then file:close() file = nil end
  end
  local f = { rest = "", pos = 0 }
  f.fd, f.ino = open(ctx.data.path)
  if f.fd then
    f.pos = uv.fs_fstat(f.fd).size -- from the end, as tail does
    watch_file()
  end
  ctx:log("info", "following %s", ctx.data.path)
  while changed:get() do
    while #changed > 0 do changed:get() end -- one look for a burst of events
    if f.fd then
      drain(ctx, f) -- what was written before and after a rename, too
      local st = uv.fs_fstat(f.fd)
      if st and st.size < f.pos then f.pos, f.rest = 0, "" drain(ctx, f) end -- truncated
    end
    local now = uv.fs_stat(ctx.data.path)
    if now and now.ino ~= f.ino then -- rotated: the new file, from its start
      if f.fd then uv.fs_close(f.fd) end
      f = { rest = "", pos = 0 }
      f.fd, f.ino = open(ctx.data.path)
      watch_file()
      ctx:log("info", "%s was rotated: following the new file", ctx.data.path)
      drain(ctx, f)
    end
  end
  dir:close()
  if file then file:close() end
  if f.fd then uv.fs_close(f.fd) end
end

function S.stop(ctx)
  ctx.data.writer:close()
  ctx:log("info", "posted %d lines", ctx.data.posted)
end

return S
