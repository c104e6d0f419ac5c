--[[
log_file_spec.lua - `luasvc run --log-file PATH [--log-max-size SIZE]
[--log-keep N]` (log.c through logfile.c): the log's lines go to the file
instead of stderr, rotated by rename before a line would take it past
SIZE, never a line lost or split (counted across every file, from a real
host with two services logging at once), and reopened on SIGHUP after an
outside logrotate moved it away.
--]]
local H = require "spec.helper"

-- The files of a rotated log, newest last: PATH.K ... PATH.1, PATH.
local function log_files(path)
  local files = {}
  local k = 1
  while H.read(path .. "." .. k) do k = k + 1 end
  for i = k - 1, 1, -1 do files[#files + 1] = path .. "." .. i end
  if H.read(path) then files[#files + 1] = path end
  return files
end

local PREFIX = "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d%d%d %a+%s+"

describe("--log-file", function()
  after_each(H.cleanup)

  it("rotates a burst from two services, losing and splitting no line", function()
    local d = H.tmpdir()
    local src = assert(H.read(H.fixtures .. "log_burst.lua"))
    H.write(d .. "/burst_a.lua", src)
    H.write(d .. "/burst_b.lua", src)
    local path, N, MAX = d .. "/host.log", 3000, 16384
    local p = H.start { scripts = { d .. "/burst_a.lua", d .. "/burst_b.lua" }, args = { tostring(N) },
      options = { "--log-file", path, "--log-max-size", "16k", "--log-keep", "1000" } }
    assert.are.equal(0, H.wait_exit(p, 60), H.log(p))
    assert.are.equal("", H.log(p)) -- nothing on stderr: it all went to the file

    local files = log_files(path)
    assert.is_true(#files > 10, "only " .. #files .. " files")
    local seen = { burst_a = {}, burst_b = {} }
    local second = { burst_a = 0, burst_b = 0 }
    local last_a = 0
    for fi, f in ipairs(files) do
      local text = H.read(f)
      assert.is_true(#text <= MAX, f .. " has " .. #text .. " bytes")
      assert.are.equal("\n", text:sub(-1), f .. " ends inside a line")
      local first, prev = true, nil
      for line in text:gmatch("([^\n]*)\n") do
        assert.matches(PREFIX, line)
        local svc, rest = line:match(PREFIX .. "(burst_[ab]): (.*)$")
        if svc then
          local n, fill = rest:match("^BURST:burst_[ab]:(%d+):(.*)$")
          if n then
            n = tonumber(n)
            if fill == "second" then
              -- the second line of a message: right after its first, in its file
              assert.is_false(first, f .. " begins with the second half of message " .. n)
              assert.are.equal(svc .. ":" .. n, prev, "message " .. n .. " split")
              second[svc] = second[svc] + 1
            else
              assert.are.equal(string.rep("x", n % 97), fill, "line " .. n .. " cut")
              assert.is_nil(seen[svc][n], "line " .. n .. " twice")
              seen[svc][n] = true
              prev = svc .. ":" .. n
              -- one service's lines stay in order across the files
              if svc == "burst_a" then
                assert.are.equal(last_a + 1, n, "burst_a " .. n .. " after " .. last_a .. " in " .. f)
                last_a = n
              end
            end
          else
            prev = nil
          end
        else
          prev = nil
        end
        first = false
      end
      if fi < #files then -- a rotated file was full: the next line did not fit
        assert.is_true(#text > MAX - 300, f .. " rotated at " .. #text .. " bytes")
      end
    end
    for _, svc in ipairs({ "burst_a", "burst_b" }) do
      local count = 0
      for _ in pairs(seen[svc]) do count = count + 1 end
      assert.are.equal(N, count, svc .. "'s lines")
      assert.are.equal(N // 100, second[svc], svc .. "'s two-line messages")
    end
  end)

  it("keeps --log-keep rotated files and drops the oldest", function()
    local d = H.tmpdir()
    local path = d .. "/host.log"
    local p = H.start { scripts = { H.fixtures .. "log_burst.lua" }, args = { "2000" },
      options = { "--log-file", path, "--log-max-size", "4k", "--log-keep", "2" } }
    assert.are.equal(0, H.wait_exit(p, 30), H.log(p))
    assert.is_truthy(H.read(path .. ".1"))
    assert.is_truthy(H.read(path .. ".2"))
    assert.is_nil(H.read(path .. ".3"))
    assert.matches("STOPPED", H.read(path))
  end)

  it("reopens on SIGHUP after the file was moved away, with no line lost", function()
    local d = H.tmpdir()
    local path = d .. "/ticker.log"
    local p = H.start { scripts = { H.fixtures .. "log_ticker.lua" },
      options = { "--log-file", path } }
    H.wait_for(function() return (H.read(path) or ""):find("TICK:20\n", 1, true) end, 5, "TICK:20")
    assert(os.rename(path, path .. ".moved"))
    -- lines go on into the moved file until the signal
    local function last_tick(f)
      local last
      for n in (H.read(f) or ""):gmatch("TICK:(%d+)\n") do last = tonumber(n) end
      return last
    end
    local before = last_tick(path .. ".moved")
    H.wait_for(function() return last_tick(path .. ".moved") > before end, 5,
      "lines in the moved file")
    assert.is_nil(H.read(path))
    H.kill(p, "HUP")
    H.wait_for(function() return (H.read(path) or ""):find("TICK:", 1, true) end, 5,
      "a new " .. path)
    H.wait_for(function() return (H.read(path) or ""):find("PARAMCHANGE", 1, true) end, 5,
      "the paramchange the signal also is")
    H.kill(p, "TERM")
    assert.are.equal(0, H.wait_exit(p))
    -- every tick once, in one of the two files, the new one's after the old one's
    local old, new = H.read(path .. ".moved"), H.read(path)
    local n = 0
    for t in (old .. new):gmatch("TICK:(%d+)\n") do
      n = n + 1
      assert.are.equal(n, tonumber(t))
    end
    assert.is_true(n > 20)
    assert.is_nil(old:find("PARAMCHANGE", 1, true))
    assert.matches("STOPPED", new)
  end)

  it("refuses what is not a size, a count or a usable file, naming it", function()
    local script = H.fixtures .. "basic.lua"
    local cases = {
      { { "--log-file", "x.log", "--log-max-size", "0" }, "--log-max-size needs a size above 0" },
      { { "--log-file", "x.log", "--log-max-size", "10X" }, "--log-max-size needs a size" },
      { { "--log-file", "x.log", "--log-keep", "-1" }, "--log-keep needs a number of files in 0..1000" },
      { { "--log-file", "x.log", "--log-keep", "1001" }, "--log-keep needs a number" },
      { { "--log-max-size", "1M" }, "--log-max-size and --log-keep go with --log-file" },
      { { "--log-keep", "3" }, "--log-max-size and --log-keep go with --log-file" },
    }
    for _, c in ipairs(cases) do
      local args = { "run" }
      for _, a in ipairs(c[1]) do args[#args + 1] = a end
      args[#args + 1] = script
      local rc, out = H.run_sync(args)
      assert.are.equal(2, rc, table.concat(args, " ") .. ": " .. out)
      assert.matches(c[2], out, 1, true)
    end
    assert.is_nil(H.read("x.log"))
    local rc, out = H.run_sync({ "run", "--log-file", "/nonexistent/dir/x.log", script })
    assert.are.equal(1, rc, out)
    assert.matches("--log-file /nonexistent/dir/x.log: No such file or directory", out, 1, true)
  end)
end)
