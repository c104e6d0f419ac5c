--[[
helper.lua - what the Windows suite's specs share: luasvc.exe under wine,
its output, status and polling. Required as "spec.wine.helper" by the
specs, which scripts/wine-test runs from the repository's root with
LUASVC_EXE and LUASVC_WINE_TMP set.
]]
local system = require "system"
local json = require "dkjson"

local W = {}
W.EXE = assert(os.getenv("LUASVC_EXE"), "run me through scripts/wine-test")
W.TMP = assert(os.getenv("LUASVC_WINE_TMP"))
W.FIX = os.getenv("PWD") .. "/spec/fixtures/"

function W.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- A file's bytes, "" when it is missing.
function W.read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- luasvc(args...) -> output (stdout and stderr, CRLF made LF), exit status
function W.luasvc(...)
  local words = { "LC_ALL=C.UTF-8 wine", W.q(W.EXE) }
  for _, a in ipairs({ ... }) do words[#words + 1] = W.q(a) end
  local out = W.TMP .. "/out.txt"
  local text, rc
  -- luasvc.exe prints something on every path that fails; a failure with
  -- no output at all is Wine's own (seen once under load: `run --help`,
  -- exit 1, nothing printed): tried again, at most twice, and said.
  for try = 1, 3 do
    local ok, _, code = os.execute(table.concat(words, " ") .. " >" .. W.q(out) .. " 2>&1")
    -- msvcrt's text-mode stdout writes CRLF
    text, rc = (W.read(out):gsub("\r\n", "\n")), ok and 0 or code
    if rc == 0 or text ~= "" then break end
    io.stderr:write(string.format("wine helper: `luasvc.exe %s` exited %s with no output (try %d)\n",
      table.concat({ ... }, " "), tostring(rc), try))
  end
  return text, rc
end

-- The service's `status --json` object; fails when status does.
function W.status(name)
  local out, rc = W.luasvc("status", name, "--json")
  assert(rc == 0, out)
  return assert(json.decode(out:match("{.*}")), out)
end

-- Poll until fn() is truthy and return that; fail after ms.
function W.eventually(fn, ms, what)
  local deadline = system.monotime() + (ms or 5000) / 1000
  while system.monotime() < deadline do
    local v = fn()
    if v then return v end
    system.sleep(0.05)
  end
  error("timed out waiting for " .. (what or "a condition"), 2)
end

return W
