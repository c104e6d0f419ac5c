--[[
systemd.lua - what the specs under scripts/systemd-harness share: luasvc
run with the harness's environment (its default runtime dir), systemctl
--user, a unit's property, and a test unit's install, script and removal.
]]
local S = {}

S.unit_dir = (os.getenv("XDG_CONFIG_HOME") or "") .. "/systemd/user"
S.installed = {} -- the units a spec installed (S.cleanup removes them)

function S.lsvc(...)
  local args = {}
  for _, a in ipairs({ ... }) do args[#args + 1] = H.q(a) end
  return H.sh(H.q(H.bin) .. " " .. table.concat(args, " "))
end

function S.sctl(...)
  return H.sh("systemctl --user " .. table.concat({ ... }, " "))
end

function S.show(unit, prop)
  local _, out = S.sctl("show", H.q(unit .. ".service"), "-p", prop, "--value")
  return (out:gsub("%s+$", ""))
end

-- Write a script, install it as a user unit, and add a test drop-in: the
-- service's stderr to a file (no journald in the harness), no core dumps,
-- extra [Service] lines. Returns the script path and the log path.
function S.install(name, text, service_extra, install_args)
  local d = H.tmpdir()
  local path, log = d .. "/" .. name .. ".lua", d .. "/service.log"
  H.write(path, text)
  local args = { "install", path, "--systemd", "--user" }
  for _, a in ipairs(install_args or {}) do args[#args + 1] = a end
  local rc, out = S.lsvc(table.unpack(args))
  assert(rc == 0, "install failed: " .. out)
  S.installed[#S.installed + 1] = name
  H.sh("mkdir -p " .. H.q(S.unit_dir .. "/" .. name .. ".service.d"))
  H.write(S.unit_dir .. "/" .. name .. ".service.d/spec.conf",
    "[Service]\nStandardOutput=append:" .. log .. "\nStandardError=append:" .. log ..
    "\nLimitCORE=0\n" .. H.sanitizer_unit_lines() .. (service_extra or ""))
  rc, out = S.sctl("daemon-reload")
  assert(rc == 0, out)
  return path, log
end

function S.uninstall(name)
  os.remove(S.unit_dir .. "/" .. name .. ".service.d/spec.conf")
  os.remove(S.unit_dir .. "/" .. name .. ".service.d")
  return S.lsvc("uninstall", name, "--systemd", "--user")
end

-- A service script: name, the controls the specs send, body, more fields.
function S.script(name, body, fields)
  return "local S = { name = '" .. name .. "', accepts = { 'stop', 'pause_continue', 'paramchange' },\n" ..
      "  stop_timeout = 3000, description = 'luasvc systemd spec: " .. name .. "'" ..
      (fields and (", " .. fields) or "") .. " }\n" .. body .. "\nreturn S\n"
end

-- after_each: every unit installed is removed and reset.
function S.cleanup()
  for _, name in ipairs(S.installed) do
    if H.read(S.unit_dir .. "/" .. name .. ".service") then S.uninstall(name) end
    S.sctl("reset-failed", H.q(name .. ".service"))
  end
  S.installed = {}
  H.cleanup()
end

return S
