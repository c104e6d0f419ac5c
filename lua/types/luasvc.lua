---@meta luasvc
-- Generated from lua/api.lua by scripts/gendoc; do not edit by hand.
-- LuaLS (lua-language-server) definitions of the luasvc Lua API: the
-- module (require "luasvc"), ctx, mailslot readers and writers, and the
-- script table (annotate it with ---@type luasvc.Script). Point
-- workspace.library at this file's directory (luasvc new does, in .luarc.json).

--- A ctx:log level; any other name raises.
---@alias luasvc.LogLevel "debug"|"info"|"notice"|"warning"|"error"

--- An entry of a script's `accepts`.
---@alias luasvc.AcceptName "stop"|"pause_continue"|"shutdown"|"paramchange"|"preshutdown"|"sessionchange"|"powerevent"

--- A state of the SCM's model.
---@alias luasvc.StateName "STOPPED"|"START_PENDING"|"STOP_PENDING"|"RUNNING"|"CONTINUE_PENDING"|"PAUSE_PENDING"|"PAUSED"

--- Why a mailslot call failed: the same string on every platform.
---@alias luasvc.SlotCode "exists"|"denied"|"noreader"|"full"|"toolarge"|"truncated"|"malformed"|"error"

--- The luasvc module: `local luasvc = require "luasvc"`.
---@class luasvc
---@field version string The runtime's version, e.g. "0.1.0".
---@field states table<luasvc.StateName, integer> State names to the SCM's numbers: STOPPED=1, START_PENDING=2, STOP_PENDING=3, RUNNING=4, CONTINUE_PENDING=5, PAUSE_PENDING=6, PAUSED=7.
---@field controls table<string, integer> Control names to the SCM's numbers: stop=1, pause=2, continue=3, interrogate=4, shutdown=5, paramchange=6, powerevent=13, sessionchange=14, preshutdown=15. User controls are 128-255.
---@field accepts table<luasvc.AcceptName, integer> Names usable in a script's `accepts` list, to the SCM's SERVICE_ACCEPT_* bits.
---@field mailslot luasvc.mailslot Mailslots: named one-reader message channels, for a service to tell a client or a monitor what it is doing (see below). Windows: real mailslots, `\\.\mailslot\NAME`. POSIX: AF_UNIX SOCK_SEQPACKET sockets (message boundaries kept, connection-oriented: not datagrams, whose small queue loses bursts) at RUNTIME_DIR/slots/NAME (RUNTIME_DIR is $LUASVC_RUNTIME_DIR, else $XDG_RUNTIME_DIR/luasvc, else /run/luasvc), owner-only. A slot name follows the service names' rule: 1-80 characters without '/', '\' or control characters, not starting with '-', not starting or ending with a space. Messages keep their boundaries and their order, up to 65536 bytes each on both platforms.
local luasvc = {}

--- Seconds on the monotonic clock, as a float: for measuring intervals, not the time of day.
---@return number seconds
function luasvc.now() end

--- Mailslots: named one-reader message channels (luasvc.mailslot).
---@class luasvc.mailslot
---@field max_message integer 65536: the largest message, in bytes, on every platform.
local mailslot = {}

--- Creates the slot and returns its reader. There is one reader per slot: code "exists" when another live reader has it (a socket left by a crashed reader is taken over). POSIX: the slot is open to its user (and root) only; `{group = G}` makes it writable by group G too (mode 0660), which then needs a runtime directory the group can reach. Codes: "exists", "denied", "error". Raises for an invalid name.
---@param name string
---@param opts? {group: string}
---@return luasvc.Reader? reader
---@return string? message
---@return luasvc.SlotCode? code
function mailslot.create(name, opts) end

--- A writer to the slot name. Succeeds without a reader: each write looks for the reader there is at that time, so a client that starts later, or restarts, is found. Raises for an invalid name.
---@param name string
---@return luasvc.Writer? writer
---@return string? message
---@return luasvc.SlotCode? code
function mailslot.open(name) end

--- A mailslot's reader (luasvc.mailslot.create).
---@class luasvc.Reader
local Reader = {}

--- The next message, waiting up to timeout_ms (default: until one comes; 0: just look). It suspends the task as ctx:sleep does, so controls, other tasks and luv callbacks go on meanwhile: on POSIX it waits on the service's loop until the slot is readable (no polling), on Windows in slices of 50 ms; it returns nil, "stopping" as soon as the task must wind down (a stop; run's reload), also from inside a coroutine of the script's own (the wait passes up to the task). Where no task can wait (a luv callback, a metamethod) it blocks the service's worker in slices of 50 ms instead, still noticing a stop or reload within a slice. A message is never given altered: one that cannot be given whole (POSIX: over max_message from a writer of its own, or without the header luasvc's writers put on every message) is dropped and read returns nil, message, "truncated" | "malformed" for it; the next read goes on. Raises on a closed reader.
---@param timeout_ms? integer
---@return string? message
---@return ("timeout"|"stopping")? why
function Reader:read(timeout_ms) end

--- Removes the slot. Also run by `__gc` and `__close` (`local r <close> = ...`); safe to call twice. Using a closed reader raises.
function Reader:close() end

--- A writer to a mailslot (luasvc.mailslot.open).
---@class luasvc.Writer
local Writer = {}

--- Posts msg (a string) as one message. Never blocks: code "noreader" ("no reader for slot NAME") when nobody has the slot, "full" when its reader does not keep up, "toolarge" ("message of N bytes exceeds the 65536-byte slot limit") past the limit, "denied" when the slot belongs to another user, "error" otherwise.
---@param msg string
---@return true? ok
---@return string? message
---@return luasvc.SlotCode? code
function Writer:write(msg) end

--- Closes the writer. Also run by `__gc` and `__close`; safe to call twice. Using a closed writer raises.
function Writer:close() end

--- ctx: what every handler receives; one per service, kept across reloads.
---@class luasvc.Context
---@field name string The service's name (the script's `name`, or its file name without .lua).
---@field data table A table of the script's own, the same for every handler for the life of the service.
local Context = {}

--- Suspends the task that calls it (start, run, stop, a handler, a ctx:spawn task, also from inside a coroutine of the script's own that the task resumed) for ms milliseconds on a timer of the service's loop; controls, other tasks and luv callbacks go on meanwhile. Returns true after the time, false as soon as the task must wind down: run, start, control handlers and tasks spawned before the stop, once a stop was asked for (or ctx:exit was called), and run while an edited version takes over. stop, shutdown, preshutdown (and tasks they spawn) sleep their full time, within stop_timeout. While the service is PAUSED, run is held at this and every other wait (ctx:sleep(0) too, q:get, ctx:await): it does not return until the service continues or stops. Raises at a new version's top level (it cannot wait), for a negative or non-number ms, and where no task can wait (in a luv callback, a metamethod, a C function's callback such as table.sort's).
---@param ms number
---@return boolean
function Context:sleep(ms) end

--- Runs fn(...) as a task: a coroutine the scheduler owns, which may wait (ctx:sleep, q:get, ctx:await) and runs beside run and the handlers, also while PAUSED. An error in it is logged with a traceback; the service goes on. Tasks spawned before a stop see their waits end (ctx:sleep false, q:get nil, "stopping") when it comes; those spawned by stop wait as stop does. Every task still alive when the service reaches STOPPED is ended (its to-be-closed variables closed). Raises once the service has stopped. Callable from a luv callback: the usual way to serve a connection sequentially.
---@param fn function
---@param ... any
function Context:spawn(fn, ...) end

--- A queue of values between callbacks and tasks. `q(...)` (q is callable, so it can be given to luv as a callback) appends its arguments as one item and wakes the task waiting on it; `q:get([ms])` returns true and the oldest item's values, waiting up to ms (default: until one comes); `#q` is the number of items waiting. One task waits on a queue at a time.
---@return luasvc.Queue
function Context:queue() end

--- Calls fn(..., cb) and waits until cb is called; returns true and what cb was called with: the coroutine form of a luv call that takes a callback last. `local _, err = ctx:await(uv.write, sock, data)`, `local _, err = ctx:await(uv.tcp_connect, sock, host, port)`, `local _, err, data = ctx:await(uv.fs_read, fd, 4096, 0)`. When fn itself fails (returns nil, message, name, as luv does), await returns that at once. Waits end early as q:get's do (nil, "stopping").
---@param fn function
---@param ... any
---@return true? ok
---@return any ...
function Context:await(fn, ...) end

--- In a pending state (START_PENDING, STOP_PENDING, PAUSE_PENDING, CONTINUE_PENDING): moves the checkpoint by one and sets the wait hint (default 2000 ms); during start, the next progress is then due within the wait hint or the start is interrupted. text, when given, becomes the status text (as ctx:status). Under systemd, during start and stop, each progress extends the unit's timeout by the wait hint (EXTEND_TIMEOUT_USEC). Returns false, and does nothing, in other states. Checkpoints move only through this call.
---@param wait_hint_ms? integer
---@param text? string
---@return boolean
function Context:progress(wait_hint_ms, text) end

--- Sets a one-line status text for service managers, shown beside the state until the script changes it (state changes keep it: `PAUSED: text`): under systemd in the unit's status (STATUS=, after the state), and as `status_text` in `luasvc status --json`. No argument clears it.
---@param text? string
function Context:status(text) end

--- The service's state name, e.g. "RUNNING".
---@return luasvc.StateName
function Context:state() end

--- Every field `luasvc status --json` shows of the service, read at once, under the same names and with the same values: `name`, `display_name` (the script's, else `name`), `script` (the script's path as the host was given it), `state` ("RUNNING"), `state_code`, `controls_accepted` (a list of names, "stop", "pause_continue", ...: the controls accepted now, as reported to a manager; empty while starting or stopping), `accepts` (the script's `accepts`, as a list of names in the same order), `win32_exit_code`, `service_exit_code`, `checkpoint`, `wait_hint`, `stop_timeout` (ms), `pid`, `controls_delivered`, `control_latency_us` (the last control's, from acceptance to its Lua handler), `reloads` (hot reloads taken up), `last_reload_error` (nil, or the last refused edit's message), `status_text` (nil, or the text), `children` (the live processes of the service's tree: its children and all their descendants; refreshed every 0.5 s while there are any); and besides: `control_latency_avg_us`, `reload_errors` (edits refused), `lua_bytes` (the Lua state's memory now), `tasks` (live tasks: run, handlers, ctx:spawn) and `uptime` (seconds since the service was created, a float). A fresh table each call.
---@return table
function Context:stats() end

--- True once a stop was asked for (STOP, SHUTDOWN, PRESHUTDOWN, ctx:exit, run returning).
---@return boolean
function Context:stopping() end

--- True while the running version winds down because an edited script is taking over (ctx:sleep returns false then, as for a stop, but ctx:stopping() stays false). Return from run to let the new version's run start; ctx.data carries over.
---@return boolean
function Context:reloading() end

--- Runs a command (argv[1], found on the host's PATH, with argv[2..] as its arguments; no shell; on Linux started with `posix_spawn` in a session of its own and waited for on a pidfd, elsewhere with uv.spawn) and waits for it, from any task, start, run, stop or a handler: as Go's exec.CommandContext. Each line it writes to stdout and stderr goes to `opts.on_line(stream, line)` (which runs in the caller's task and may wait), else to the log (stdout at "info", stderr at "warning", as `NAME: line`, NAME `opts.name` or the program's file name); `opts.capture` keeps them instead in `result.stdout` and `result.stderr` (up to `opts.max_capture` bytes, default 1 MiB). `opts.stdin` is written to its stdin, then closed; `opts.cwd` and `opts.env` (a list of "K=V") as uv.spawn's. `opts.timeout` (ms) ends the command's whole tree (the command, its group and session, their descendants; on Windows the command alone: the rest of its tree ends with the service): SIGTERM, then SIGKILL after `opts.grace` ms (default 2000); `result.timed_out` says so. When the command exits, what is left of its tree is killed and its output read for 0.2 s more. `result.code` is its exit code (nil when a signal ended it), `result.signal` the signal (0: none). A stop ends the wait of a task that winds down (run, handlers, ctx:spawn tasks): the tree gets SIGTERM, `result.stopped` is true, and the stop ends the rest (its grace, SIGKILL, reaped); in stop itself it waits normally. `opts.on_start(pid)` is called once it runs. A program that cannot start gives nil and a message ("ctx:exec: cannot start prog: ENOENT: ..."); bad argv or opts raise.
---@param argv string[]
---@param opts? {timeout?: integer, grace?: integer, cwd?: string, env?: string[], stdin?: string, on_line?: fun(stream: "stdout"|"stderr", line: string), on_start?: fun(pid: integer), capture?: boolean, max_capture?: integer, name?: string}
---@return {code: integer?, signal: integer, timed_out: boolean, stopped: boolean, stdout: string?, stderr: string?}? result
---@return string? message
function Context:exec(argv, opts) end

--- Logs string.format(fmt, ...) at level "debug", "info", "notice", "warning" or "error"; with one argument after level, logs it as is (tostring). Raises for an unknown level.
---@param level luasvc.LogLevel
---@param fmt any
---@param ... any
function Context:log(level, fmt, ...) end

--- Asks the service to wind down and stop with code as its service-specific exit code (default 0: a clean stop). ctx:sleep returns false from then on; stop runs after run returns. An error raised later in start or run keeps this code.
---@param code? integer
function Context:exit(code) end

--- A queue between luv callbacks and tasks (ctx:queue); callable: q(...) pushes.
---@class luasvc.Queue
local Queue = {}

--- true and the values of the oldest item (the first value tells an item, whatever it holds, from a timeout or a stop), waiting up to ms for one (default: until one comes; 0: just look). Returns nil, "timeout" when none came in time, nil, "stopping" when the task must wind down (as ctx:sleep returns false). Raises where no task can wait, and when another task already waits on q.
---@param ms? number
---@return true? ok
---@return any ...
function Queue:get(ms) end

--- The HTTP module: `local http = require "luasvc.http"`.
---@class luasvc.http
---@field defaults table<string, any> The server's options and their defaults (listen's opts).
---@field reasons table<integer, string> Status codes to their reason phrases, as the server writes them (200 = "OK").
---@field llhttp_version string The version of llhttp the runtime was built with.
local http = {}

--- An HTTP/1.1 server on the service's loop, listening on opts.host (default "127.0.0.1") and opts.port (required; 0: any, then `server.port` says which; `server.host` too). opts.handler is the handler: a function, or the name of a field of ctx.data looked up at each request (set it in start and in reload, and a hot edit answers the next request with the new code). Each connection is served by a task (ctx:spawn) and its requests are answered in order (pipelining); the handler runs in that task as `handler(ctx, req)` and may wait (ctx:sleep, ctx:await, q:get, a request of its own), so a slow request holds only its connection. It returns `status [, body [, headers]]` (an integer 100-599, a string, a table of header names to strings): the answer gets Content-Length, Date, and Connection as keep-alive allows; or it calls req:stream and req:write, and returns. A handler that raises is logged with its traceback, one that returns something else with what it returned; both are answered 500, and the connection and the service go on. One that runs past handler_timeout without waiting is interrupted and its connection closed. A request: `req.method`, `req.target` (as sent), `req.path`, `req.query` (after `?`, or nil), `req.version` ("1.1"), `req.headers` (names lower-cased, repeats joined with ", "), `req.body` (decoded: Content-Length or chunked), `req.keep_alive`. Limits (opts, with their defaults in luasvc.http.defaults): max_line 8192 bytes of request target (414), max_header 16384 bytes of head (431), max_headers 100 lines (431), max_body 1048576 bytes (413); malformed input gets 400; each of these closes the connection. header_timeout 10000 ms for a request's head to arrive (408, closed), idle_timeout 5000 ms for a quiet keep-alive connection or a stalled body (closed), send_timeout 30000 ms for a client that does not take its answer (closed), max_connections 512 (more wait in the kernel's accept queue, accepted as others close), backlog 511. "Expect: 100-continue" is answered. An unknown option or a bad value raises; a socket that cannot listen returns nil, message, code (luv's, e.g. "EADDRINUSE").
---@param ctx luasvc.Context
---@param opts luasvc.HttpOptions
---@return luasvc.HttpServer? server
---@return string? message
---@return string? code
function http.listen(ctx, opts) end

--- One request to an `http://HOST[:PORT]/PATH` URL (no TLS), waiting for the whole answer within timeout ms (default 10000), on a connection of its own (closed after). Waits as q:get does: call it from a task (start, run, a handler, a ctx:spawn task, an HTTP handler). method defaults to "POST" with a body, else "GET". The response: `{status, reason, version, headers, body}` (headers as a request's; body decoded, up to max_body, default 16 MiB), whatever the status. Failures: nil, message, code, with code "timeout", "stopping" (the task must wind down), luv's error name ("ECONNREFUSED", ...), "dns", "closed" (the server closed before the answer was complete) or "bad_response". A bad URL or option raises.
---@param ctx luasvc.Context
---@param opts {url: string, method?: string, headers?: table<string, string>, body?: string, timeout?: number, max_body?: integer}
---@return luasvc.HttpResponse? response
---@return string? message
---@return string? code
function http.request(ctx, opts) end

--- luasvc.http.request with method "GET" and url; opts as request's (timeout, headers, max_body).
---@param ctx luasvc.Context
---@param url string
---@param opts? table
---@return luasvc.HttpResponse? response
---@return string? message
---@return string? code
function http.get(ctx, url, opts) end

--- luasvc.http.request with method "POST", url and body; opts as request's.
---@param ctx luasvc.Context
---@param url string
---@param body string
---@param opts? table
---@return luasvc.HttpResponse? response
---@return string? message
---@return string? code
function http.post(ctx, url, body, opts) end

--- What luasvc.http.listen returns; `server.port` and `server.host` are where it listens.
---@class luasvc.HttpServer
local HttpServer = {}

--- Replaces the handler: a function, or the name of a field of ctx.data. (A name in ctx.data, set by each version's start and reload, needs no call.)
---@param handler function|string
function HttpServer:handle(handler) end

--- Stops accepting connections without closing the listening socket: new ones wait in the kernel's accept queue (none is refused or reset), open ones go on. For a script's S.pause.
function HttpServer:pause() end

--- Accepts again, first what waited meanwhile. For a script's S.continue.
function HttpServer:resume() end

--- Open connections, requests answered so far, and whether it is paused or closing.
---@return {connections: integer, requests: integer, paused: boolean, closing: boolean}
function HttpServer:stats() end

--- Closes the listener and every idle connection at once, lets the requests in flight finish and their answers reach the clients, reporting progress meanwhile (ctx:progress, in a pending state such as STOP_PENDING), up to timeout_ms (default 10000); then closes what is left (nil, "timeout"). Waits: call it from a task, typically S.stop. A stop ends the waits of requests in flight as it ends any task's (ctx:sleep returns false), so their handlers answer promptly. Safe to call twice.
---@param timeout_ms? number
---@return true? ok
---@return string? why
function HttpServer:close(timeout_ms) end

--- A request as a handler gets it: handler(ctx, req).
---@class luasvc.HttpRequest
---@field method string
---@field target string
---@field path string
---@field query string?
---@field version string
---@field headers table<string, string>
---@field body string
---@field keep_alive boolean
---@field upgrade boolean
--- Its methods, for streamed answers.
---@class luasvc.HttpRequest
local HttpRequest = {}

--- Begins an answer whose body follows in req:write calls: chunked to an HTTP/1.1 client, ended by the connection's close for HTTP/1.0. The handler returns when the body is complete (the server ends it). nil, message when the client is gone.
---@param status integer
---@param headers? table<string, string>
---@return true? ok
---@return string? message
function HttpRequest:stream(status, headers) end

--- Sends a piece of a streamed answer; waits while the client is more than 64 KiB behind (up to send_timeout). nil, message when the client is gone.
---@param data string
---@return true? ok
---@return string? message
function HttpRequest:write(data) end

--- The client's address and port.
---@return string? address
---@return integer? port
function HttpRequest:peer() end

--- What luasvc.http.request returns.
---@class luasvc.HttpResponse
---@field status integer
---@field reason string
---@field version string
---@field headers table<string, string>
---@field body string

--- luasvc.http.listen's options; see luasvc.http.defaults.
---@class luasvc.HttpOptions
---@field port integer
---@field handler (fun(ctx: luasvc.Context, req: luasvc.HttpRequest): integer?, string?, table?)|string
---@field host? string
---@field backlog? integer
---@field max_connections? integer
---@field header_timeout? integer
---@field idle_timeout? integer
---@field send_timeout? integer
---@field max_line? integer
---@field max_header? integer
---@field max_headers? integer
---@field max_body? integer

--- A service script's table: `---@type luasvc.Script` on `local S = { ... }`.
---@class luasvc.Script
---@field name? string The service's name (1-80 characters, no `/`, `\` or control characters); default: the file name without .lua.
---@field display_name? string For service managers; default: `name`.
---@field description? string What the service does, in one line: `luasvc install --systemd` writes it as the unit's Description= (`--description` overrides it; without either, `display_name`).
---@field accepts? luasvc.AcceptName[] Controls a service manager may send: "stop", "pause_continue", "shutdown", "paramchange", "preshutdown", "sessionchange", "powerevent"; default { "stop", "shutdown" }.
---@field stop_timeout? integer ms the stop may take before it is forced (1-3600000); default 20000. Under systemd the unit's TimeoutStopSec is this plus 3 s.
---@field watchdog? integer ms (100-3600000): asks for a health watchdog. `luasvc install --systemd` writes it as WatchdogSec; under it luasvc sends WATCHDOG=1 every quarter period, but only while the service's worker has come back to its scheduler within the last half period, so a Lua loop that never yields (or a stuck C call) lets systemd's watchdog end the service (Result=watchdog). Default: none.
---@field handler_timeout? integer ms (1-86400000) a control's handler (user controls, sessionchange, powerevent, paramchange; pause and continue are held to stop_timeout as every pending state) may run, or wait, before it is interrupted: the error is logged, the service goes on and the next control is delivered. A luv callback, and a ctx:spawn task from one wait to the next, may run that long: past it the code is interrupted (its own pcall cannot catch that) and logged with its traceback; the task ends, the callback's call ends (its handle stays), and the service goes on. An edited version's top level must also finish within it (its own time: the running version's controls, which it pauses for, do not count), or the edit is refused. While code overruns, the systemd watchdog is not pinged. Default 30000.
---@field memory_limit? integer Bytes (at least 1048576) the service's Lua state may hold: past it an allocation fails with Lua's "not enough memory" error in that service only (catchable with pcall; in start or run it stops the service with an error). Once the service is stopping, 1 MiB more is allowed so that stop still runs. Set again on every reload. Default: none.
---@field console? boolean false: `luasvc eval` and `luasvc attach` are refused for this service (with a message saying so, and a log line). Default: true (the host's own user and root may run Lua inside the service). Set again on every reload.
---@field controls? table<integer, fun(ctx: luasvc.Context, code: integer)> User-defined controls: { [128..255] = function(ctx, code) end }.
---@field status_slot? string A mailslot (1-80 characters, no `/`, `\` or control characters) the runtime posts the service's states and log lines to; see the README's Status channel. Default: none.
---@field start? fun(ctx: luasvc.Context, args: string[]) Runs first, in START_PENDING; `args` are the start arguments (`luasvc run S.lua -- a b`). An error stops the service with exit code 1.
---@field run? fun(ctx: luasvc.Context) Required. Runs after start, in RUNNING, as a coroutine; when it returns the service stops. `ctx:sleep` yields and gives false once the service must wind down.
---@field stop? fun(ctx: luasvc.Context) Runs after run has returned, in STOP_PENDING, on every stop.
---@field shutdown? fun(ctx: luasvc.Context) Instead of stop on a system shutdown (accepts "shutdown").
---@field preshutdown? fun(ctx: luasvc.Context) On PRESHUTDOWN (accepts "preshutdown"), before run winds down; STOP_PENDING.
---@field pause? fun(ctx: luasvc.Context) On PAUSE (accepts "pause_continue"): PAUSE_PENDING, then PAUSED; an error keeps the old state.
---@field continue? fun(ctx: luasvc.Context) On CONTINUE (accepts "pause_continue"): CONTINUE_PENDING, then RUNNING; an error keeps the old state.
---@field paramchange? fun(ctx: luasvc.Context) On PARAMCHANGE (accepts "paramchange"; SIGHUP, `luasvc reload`). Without it, PARAMCHANGE reloads the script.
---@field sessionchange? fun(ctx: luasvc.Context, type: integer, session_id: integer) On SESSIONCHANGE (Windows; accepts "sessionchange"): `type` is the WTS_* event, `session_id` the session it is about.
---@field powerevent? fun(ctx: luasvc.Context, type: integer, setting?: {setting: string, data: string}) On POWEREVENT (Windows; accepts "powerevent"): `type` is the PBT_* event; for PBT_POWERSETTINGCHANGE `setting` is `{ setting = "{GUID}", data = bytes }`, else nil.
---@field reload? fun(ctx: luasvc.Context, previous: luasvc.Script) On the new version of an edited script, before it takes over; `previous` is the old script table. An error refuses the edit.

return luasvc
