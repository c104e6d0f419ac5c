--[[
systemd.lua - what the specs under scripts/systemd-harness share: luasvc
run with the harness's environment (its default runtime dir), systemctl
--user, and a unit's property.
]]
local S = {}

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

return S
