--[[
api.lua - the Lua API reference, kept as data. scripts/gendoc turns it into
lua/API.md; spec/lua_api_spec.lua fails when the live module or ctx has a
function this table does not document (or documents one that is gone), or
when lua/contract.lua checks a script field this table does not document.
]]
return {
  module = {
    { name = "luasvc.version", kind = "string", doc = "The runtime's version, e.g. \"0.1.0\"." },
    { name = "luasvc.states", kind = "table", doc = "State names to the SCM's numbers: STOPPED=1, START_PENDING=2, STOP_PENDING=3, RUNNING=4, CONTINUE_PENDING=5, PAUSE_PENDING=6, PAUSED=7." },
    { name = "luasvc.controls", kind = "table", doc = "Control names to the SCM's numbers: stop=1, pause=2, continue=3, interrogate=4, shutdown=5, paramchange=6, powerevent=13, sessionchange=14, preshutdown=15. User controls are 128-255." },
    { name = "luasvc.accepts", kind = "table", doc = "Names usable in a script's `accepts` list, to the SCM's SERVICE_ACCEPT_* bits." },
    { name = "luasvc.now", kind = "function", sig = "luasvc.now() -> seconds", doc = "Seconds on the monotonic clock, as a float: for measuring intervals, not the time of day." },
  },
  ctx = {
    { name = "ctx.name", kind = "string", doc = "The service's name (the script's `name`, or its file name without .lua)." },
    { name = "ctx.data", kind = "table", doc = "A table of the script's own, the same for every handler for the life of the service." },
    { name = "ctx:sleep", kind = "function", sig = "ctx:sleep(ms) -> boolean", doc = "Yields for ms milliseconds, letting controls be delivered meanwhile. Returns true after the time, false as soon as the service must wind down (a stop was asked for, or ctx:exit was called). While the service is PAUSED, run's sleep does not return until it continues or stops. Raises for a negative or non-number ms." },
    { name = "ctx:progress", kind = "function", sig = "ctx:progress([wait_hint_ms [, text]]) -> boolean", doc = "In a pending state (START_PENDING, STOP_PENDING, PAUSE_PENDING, CONTINUE_PENDING): moves the checkpoint by one and sets the wait hint (default 2000 ms); during start, the next progress is then due within the wait hint or the start is interrupted. text, when given, becomes the status text (as ctx:status). Under systemd, during start and stop, each progress extends the unit's timeout by the wait hint (EXTEND_TIMEOUT_USEC). Returns false, and does nothing, in other states. Checkpoints move only through this call." },
    { name = "ctx:status", kind = "function", sig = "ctx:status([text])", doc = "Sets a one-line status text for service managers, shown until the next state change: under systemd in the unit's status (STATUS=, after the state), and as `status_text` in `luasvc status --json`. No argument clears it." },
    { name = "ctx:state", kind = "function", sig = "ctx:state() -> string", doc = "The service's state name, e.g. \"RUNNING\"." },
    { name = "ctx:stopping", kind = "function", sig = "ctx:stopping() -> boolean", doc = "True once a stop was asked for (STOP, SHUTDOWN, PRESHUTDOWN, ctx:exit, run returning)." },
    { name = "ctx:reloading", kind = "function", sig = "ctx:reloading() -> boolean", doc = "True while the running version winds down because an edited script is taking over (ctx:sleep returns false then, as for a stop, but ctx:stopping() stays false). Return from run to let the new version's run start; ctx.data carries over." },
    { name = "ctx:log", kind = "function", sig = "ctx:log(level, fmt, ...)", doc = "Logs string.format(fmt, ...) at level \"debug\", \"info\", \"notice\", \"warning\" or \"error\"; with one argument after level, logs it as is (tostring). Raises for an unknown level." },
    { name = "ctx:exit", kind = "function", sig = "ctx:exit([code])", doc = "Asks the service to wind down and stop with code as its service-specific exit code (default 0: a clean stop). ctx:sleep returns false from then on; stop runs after run returns. An error raised later in start or run keeps this code." },
  },
  contract = {
    { name = "name", kind = "string", doc = "The service's name (1-80 characters, no `/`, `\\` or control characters); default: the file name without .lua." },
    { name = "display_name", kind = "string", doc = "For service managers; default: `name`." },
    { name = "description", kind = "string", doc = "What the service does, in one line: `luasvc install --systemd` writes it as the unit's Description= (`--description` overrides it; without either, `display_name`)." },
    { name = "accepts", kind = "table", doc = "Controls a service manager may send: \"stop\", \"pause_continue\", \"shutdown\", \"paramchange\", \"preshutdown\", \"sessionchange\", \"powerevent\"; default { \"stop\", \"shutdown\" }." },
    { name = "stop_timeout", kind = "number", doc = "ms the stop may take before it is forced (1-3600000); default 20000. Under systemd the unit's TimeoutStopSec is this plus 3 s." },
    { name = "watchdog", kind = "number", doc = "ms (100-3600000): asks for a health watchdog. `luasvc install --systemd` writes it as WatchdogSec; under it luasvc sends WATCHDOG=1 every quarter period, but only while the service's worker has come back to its scheduler within the last half period, so a Lua loop that never yields (or a stuck C call) lets systemd's watchdog end the service (Result=watchdog). Default: none." },
    { name = "controls", kind = "table", doc = "User-defined controls: { [128..255] = function(ctx, code) end }." },
  },
}
