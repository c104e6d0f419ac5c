--[[
api.lua - the Lua API reference, kept as data. scripts/gendoc turns it into
lua/API.md and into LuaLS (lua-language-server) definitions,
lua/types/luasvc.lua; spec/lua_api_spec.lua fails when the live module or
ctx has a function this table does not document (or documents one that is
gone), when lua/contract.lua checks a script field or knows a handler this
table does not document, or when the definitions miss a documented name.

Types are LuaLS's: a value's `type`; a function's `params` ({name, type},
"name?" when optional, "..." for the rest) and `returns` ({type, name}).
]]
return {
  module = {
    { name = "luasvc.version", kind = "string", type = "string", doc = "The runtime's version, e.g. \"0.1.0\"." },
    { name = "luasvc.states", kind = "table", type = "table<luasvc.StateName, integer>", doc = "State names to the SCM's numbers: STOPPED=1, START_PENDING=2, STOP_PENDING=3, RUNNING=4, CONTINUE_PENDING=5, PAUSE_PENDING=6, PAUSED=7." },
    { name = "luasvc.controls", kind = "table", type = "table<string, integer>", doc = "Control names to the SCM's numbers: stop=1, pause=2, continue=3, interrogate=4, shutdown=5, paramchange=6, powerevent=13, sessionchange=14, preshutdown=15. User controls are 128-255." },
    { name = "luasvc.accepts", kind = "table", type = "table<luasvc.AcceptName, integer>", doc = "Names usable in a script's `accepts` list, to the SCM's SERVICE_ACCEPT_* bits." },
    { name = "luasvc.now", kind = "function", params = {}, returns = { { "number", "seconds" } }, sig = "luasvc.now() -> seconds", doc = "Seconds on the monotonic clock, as a float: for measuring intervals, not the time of day." },
    { name = "luasvc.mailslot", kind = "table", type = "luasvc.mailslot", doc = "Mailslots: named one-reader message channels, for a service to tell a client or a monitor what it is doing (see below). Windows: real mailslots, `\\\\.\\mailslot\\NAME`. POSIX: AF_UNIX SOCK_SEQPACKET sockets (message boundaries kept, connection-oriented: not datagrams, whose small queue loses bursts) at RUNTIME_DIR/slots/NAME (RUNTIME_DIR is $LUASVC_RUNTIME_DIR, else $XDG_RUNTIME_DIR/luasvc, else /run/luasvc), owner-only. A slot name follows the service names' rule: 1-80 characters without '/', '\\' or control characters, not starting with '-', not starting or ending with a space. Messages keep their boundaries and their order, up to 65536 bytes each on both platforms." },
  },
  mailslot = {
    { name = "luasvc.mailslot.max_message", kind = "number", type = "integer", doc = "65536: the largest message, in bytes, on every platform." },
    { name = "luasvc.mailslot.create", kind = "function", params = { { "name", "string" }, { "opts?", "{group: string}" } }, returns = { { "luasvc.Reader?", "reader" }, { "string?", "message" }, { "luasvc.SlotCode?", "code" } }, sig = "luasvc.mailslot.create(name [, {group = G}]) -> reader | nil, message, code", doc = "Creates the slot and returns its reader. There is one reader per slot: code \"exists\" when another live reader has it (a socket left by a crashed reader is taken over). POSIX: the slot is open to its user (and root) only; `{group = G}` makes it writable by group G too (mode 0660), which then needs a runtime directory the group can reach. Codes: \"exists\", \"denied\", \"error\". Raises for an invalid name." },
    { name = "luasvc.mailslot.open", kind = "function", params = { { "name", "string" } }, returns = { { "luasvc.Writer?", "writer" }, { "string?", "message" }, { "luasvc.SlotCode?", "code" } }, sig = "luasvc.mailslot.open(name) -> writer | nil, message, code", doc = "A writer to the slot name. Succeeds without a reader: each write looks for the reader there is at that time, so a client that starts later, or restarts, is found. Raises for an invalid name." },
    { name = "reader:read", kind = "function", params = { { "timeout_ms?", "integer" } }, returns = { { "string?", "message" }, { "(\"timeout\"|\"stopping\")?", "why" } }, sig = "reader:read([timeout_ms]) -> message | nil, \"timeout\" | nil, \"stopping\"", doc = "The next message, waiting up to timeout_ms (default: until one comes; 0: just look). It waits in slices of 50 ms and yields to the scheduler between them, as ctx:sleep does: controls are delivered while it waits (in run, a PAUSE holds the read until CONTINUE), and it returns nil, \"stopping\" within a slice of a stop or a reload. Called inside a coroutine of the script's own, it cannot yield and blocks the service's worker instead, still noticing a stop or reload within a slice. A message is never given altered: one that cannot be given whole (POSIX: over max_message from a writer of its own, or without the header luasvc's writers put on every message) is dropped and read returns nil, message, \"truncated\" | \"malformed\" for it; the next read goes on. Raises on a closed reader." },
    { name = "reader:close", kind = "function", params = {}, sig = "reader:close()", doc = "Removes the slot. Also run by `__gc` and `__close` (`local r <close> = ...`); safe to call twice. Using a closed reader raises." },
    { name = "writer:write", kind = "function", params = { { "msg", "string" } }, returns = { { "true?", "ok" }, { "string?", "message" }, { "luasvc.SlotCode?", "code" } }, sig = "writer:write(msg) -> true | nil, message, code", doc = "Posts msg (a string) as one message. Never blocks: code \"noreader\" (\"no reader for slot NAME\") when nobody has the slot, \"full\" when its reader does not keep up, \"toolarge\" (\"message of N bytes exceeds the 65536-byte slot limit\") past the limit, \"denied\" when the slot belongs to another user, \"error\" otherwise." },
    { name = "writer:close", kind = "function", params = {}, sig = "writer:close()", doc = "Closes the writer. Also run by `__gc` and `__close`; safe to call twice. Using a closed writer raises." },
  },
  ctx = {
    { name = "ctx.name", kind = "string", type = "string", doc = "The service's name (the script's `name`, or its file name without .lua)." },
    { name = "ctx.data", kind = "table", type = "table", doc = "A table of the script's own, the same for every handler for the life of the service." },
    { name = "ctx:sleep", kind = "function", params = { { "ms", "integer" } }, returns = { { "boolean" } }, sig = "ctx:sleep(ms) -> boolean", doc = "Yields for ms milliseconds, letting controls be delivered meanwhile. Returns true after the time, false as soon as the service must wind down (a stop was asked for, or ctx:exit was called). While the service is PAUSED, run's sleep does not return until it continues or stops. Raises for a negative or non-number ms." },
    { name = "ctx:progress", kind = "function", params = { { "wait_hint_ms?", "integer" }, { "text?", "string" } }, returns = { { "boolean" } }, sig = "ctx:progress([wait_hint_ms [, text]]) -> boolean", doc = "In a pending state (START_PENDING, STOP_PENDING, PAUSE_PENDING, CONTINUE_PENDING): moves the checkpoint by one and sets the wait hint (default 2000 ms); during start, the next progress is then due within the wait hint or the start is interrupted. text, when given, becomes the status text (as ctx:status). Under systemd, during start and stop, each progress extends the unit's timeout by the wait hint (EXTEND_TIMEOUT_USEC). Returns false, and does nothing, in other states. Checkpoints move only through this call." },
    { name = "ctx:status", kind = "function", params = { { "text?", "string" } }, sig = "ctx:status([text])", doc = "Sets a one-line status text for service managers, shown until the next state change: under systemd in the unit's status (STATUS=, after the state), and as `status_text` in `luasvc status --json`. No argument clears it." },
    { name = "ctx:state", kind = "function", params = {}, returns = { { "luasvc.StateName" } }, sig = "ctx:state() -> string", doc = "The service's state name, e.g. \"RUNNING\"." },
    { name = "ctx:stopping", kind = "function", params = {}, returns = { { "boolean" } }, sig = "ctx:stopping() -> boolean", doc = "True once a stop was asked for (STOP, SHUTDOWN, PRESHUTDOWN, ctx:exit, run returning)." },
    { name = "ctx:reloading", kind = "function", params = {}, returns = { { "boolean" } }, sig = "ctx:reloading() -> boolean", doc = "True while the running version winds down because an edited script is taking over (ctx:sleep returns false then, as for a stop, but ctx:stopping() stays false). Return from run to let the new version's run start; ctx.data carries over." },
    { name = "ctx:log", kind = "function", params = { { "level", "luasvc.LogLevel" }, { "fmt", "any" }, { "...", "any" } }, sig = "ctx:log(level, fmt, ...)", doc = "Logs string.format(fmt, ...) at level \"debug\", \"info\", \"notice\", \"warning\" or \"error\"; with one argument after level, logs it as is (tostring). Raises for an unknown level." },
    { name = "ctx:exit", kind = "function", params = { { "code?", "integer" } }, sig = "ctx:exit([code])", doc = "Asks the service to wind down and stop with code as its service-specific exit code (default 0: a clean stop). ctx:sleep returns false from then on; stop runs after run returns. An error raised later in start or run keeps this code." },
  },
  -- The names of values the API takes or gives, as LuaLS aliases.
  aliases = {
    { name = "luasvc.LogLevel", values = { "debug", "info", "notice", "warning", "error" }, doc = "A ctx:log level; any other name raises." },
    { name = "luasvc.AcceptName", values = { "stop", "pause_continue", "shutdown", "paramchange", "preshutdown", "sessionchange", "powerevent" }, doc = "An entry of a script's `accepts`." },
    { name = "luasvc.StateName", values = { "STOPPED", "START_PENDING", "STOP_PENDING", "RUNNING", "CONTINUE_PENDING", "PAUSE_PENDING", "PAUSED" }, doc = "A state of the SCM's model." },
    { name = "luasvc.SlotCode", values = { "exists", "denied", "noreader", "full", "toolarge", "truncated", "malformed", "error" }, doc = "Why a mailslot call failed: the same string on every platform." },
  },
  contract = {
    { name = "name", kind = "string", type = "string", doc = "The service's name (1-80 characters, no `/`, `\\` or control characters); default: the file name without .lua." },
    { name = "display_name", kind = "string", type = "string", doc = "For service managers; default: `name`." },
    { name = "description", kind = "string", type = "string", doc = "What the service does, in one line: `luasvc install --systemd` writes it as the unit's Description= (`--description` overrides it; without either, `display_name`)." },
    { name = "accepts", kind = "table", type = "luasvc.AcceptName[]", doc = "Controls a service manager may send: \"stop\", \"pause_continue\", \"shutdown\", \"paramchange\", \"preshutdown\", \"sessionchange\", \"powerevent\"; default { \"stop\", \"shutdown\" }." },
    { name = "stop_timeout", kind = "number", type = "integer", doc = "ms the stop may take before it is forced (1-3600000); default 20000. Under systemd the unit's TimeoutStopSec is this plus 3 s." },
    { name = "watchdog", kind = "number", type = "integer", doc = "ms (100-3600000): asks for a health watchdog. `luasvc install --systemd` writes it as WatchdogSec; under it luasvc sends WATCHDOG=1 every quarter period, but only while the service's worker has come back to its scheduler within the last half period, so a Lua loop that never yields (or a stuck C call) lets systemd's watchdog end the service (Result=watchdog). Default: none." },
    { name = "controls", kind = "table", type = "table<integer, fun(ctx: luasvc.Context, code: integer)>", doc = "User-defined controls: { [128..255] = function(ctx, code) end }." },
    { name = "status_slot", kind = "string", type = "string", doc = "A mailslot (1-80 characters, no `/`, `\\` or control characters) the runtime posts the service's states and log lines to; see the README's Status channel. Default: none." },
  },
  -- A script's handlers: every one is optional but run.
  handlers = {
    { name = "start", kind = "function", params = { { "ctx", "luasvc.Context" }, { "args", "string[]" } }, doc = "Runs first, in START_PENDING; `args` are the start arguments (`luasvc run S.lua -- a b`). An error stops the service with exit code 1." },
    { name = "run", kind = "function", params = { { "ctx", "luasvc.Context" } }, doc = "Required. Runs after start, in RUNNING, as a coroutine; when it returns the service stops. `ctx:sleep` yields and gives false once the service must wind down." },
    { name = "stop", kind = "function", params = { { "ctx", "luasvc.Context" } }, doc = "Runs after run has returned, in STOP_PENDING, on every stop." },
    { name = "shutdown", kind = "function", params = { { "ctx", "luasvc.Context" } }, doc = "Instead of stop on a system shutdown (accepts \"shutdown\")." },
    { name = "preshutdown", kind = "function", params = { { "ctx", "luasvc.Context" } }, doc = "On PRESHUTDOWN (accepts \"preshutdown\"), before run winds down; STOP_PENDING." },
    { name = "pause", kind = "function", params = { { "ctx", "luasvc.Context" } }, doc = "On PAUSE (accepts \"pause_continue\"): PAUSE_PENDING, then PAUSED; an error keeps the old state." },
    { name = "continue", kind = "function", params = { { "ctx", "luasvc.Context" } }, doc = "On CONTINUE (accepts \"pause_continue\"): CONTINUE_PENDING, then RUNNING; an error keeps the old state." },
    { name = "paramchange", kind = "function", params = { { "ctx", "luasvc.Context" } }, doc = "On PARAMCHANGE (accepts \"paramchange\"; SIGHUP, `luasvc reload`). Without it, PARAMCHANGE reloads the script." },
    { name = "sessionchange", kind = "function", params = { { "ctx", "luasvc.Context" }, { "type", "integer" }, { "session_id", "integer" } }, doc = "On SESSIONCHANGE (Windows; accepts \"sessionchange\"): `type` is the WTS_* event, `session_id` the session it is about." },
    { name = "powerevent", kind = "function", params = { { "ctx", "luasvc.Context" }, { "type", "integer" }, { "setting?", "{setting: string, data: string}" } }, doc = "On POWEREVENT (Windows; accepts \"powerevent\"): `type` is the PBT_* event; for PBT_POWERSETTINGCHANGE `setting` is `{ setting = \"{GUID}\", data = bytes }`, else nil." },
    { name = "reload", kind = "function", params = { { "ctx", "luasvc.Context" }, { "previous", "luasvc.Script" } }, doc = "On the new version of an edited script, before it takes over; `previous` is the old script table. An error refuses the edit." },
  },
}
