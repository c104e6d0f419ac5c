/*
 * ctxstats.c - ctx:stats(): what `luasvc status --json` shows of the
 * service, as a Lua table under the same field names, plus the Lua
 * state's memory, the live tasks and children, and the uptime. The
 * numbers come from the supervisor (lsvc_service_get_stats), read
 * together under its lock; the Lua memory is read from the state itself.
 * Called only on the worker thread that owns the lua_State.
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#ifdef _WIN32
#include <process.h>
#define lsvc_getpid() ((lua_Integer)_getpid())
#else
#include <unistd.h>
#define lsvc_getpid() ((lua_Integer)getpid())
#endif

#include "private.h"

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void set_num(lua_State *L, const char *k, lua_Number v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

/* k = s, or nothing (nil) when s is empty: status --json's null. */
static void set_text(lua_State *L, const char *k, const char *s)
{
    if (!s[0])
        return;
    lua_pushstring(L, s);
    lua_setfield(L, -2, k);
}

/* k = the names of mask's bits ("stop", "pause_continue"), a list in
 * their order, as status --json's. */
static void set_accepts(lua_State *L, const char *k, uint32_t mask)
{
    lua_newtable(L);
    lua_Integer n = 0;
    for (uint32_t bit = 1; bit <= LSVC_ACCEPT_PRESHUTDOWN; bit <<= 1)
        if ((mask & bit) && lsvc_accept_name(bit)) {
            lua_pushstring(L, lsvc_accept_name(bit));
            lua_rawseti(L, -2, ++n);
        }
    lua_setfield(L, -2, k);
}

/* ctx:stats() -> table. [-0, +1, m]: raises for a self that is not ctx. */
int lsvc__ctx_stats(lua_State *L)
{
    int same = 0;
    if (lua_istable(L, 1) && lua_getmetatable(L, 1)) {
        luaL_getmetatable(L, "luasvc.Context");
        same = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    if (!same)
        luaL_typeerror(L, 1, "luasvc context");
    lsvc_service_stats s;
    lsvc_service_get_stats(lsvc__service(L), &s);
    lua_createtable(L, 0, 29);
    lua_pushstring(L, s.name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, s.display_name[0] ? s.display_name : s.name);
    lua_setfield(L, -2, "display_name");
    lua_pushstring(L, lsvc_service_script(lsvc__service(L)));
    lua_setfield(L, -2, "script");
    lua_pushstring(L, lsvc_state_name(s.status.state));
    lua_setfield(L, -2, "state");
    set_int(L, "state_code", (lua_Integer)s.status.state);
    set_accepts(L, "controls_accepted", s.status.controls_accepted);
    set_accepts(L, "accepts", s.accepts);
    set_int(L, "stop_timeout", s.stop_timeout_ms);
    set_int(L, "win32_exit_code", s.status.exit.win32);
    set_int(L, "service_exit_code", s.status.exit.service_specific);
    set_int(L, "checkpoint", s.status.checkpoint);
    set_int(L, "wait_hint", s.status.wait_hint);
    set_int(L, "pid", lsvc_getpid());
    set_int(L, "controls_delivered", (lua_Integer)s.controls_delivered);
    set_num(L, "control_latency_us", (lua_Number)s.last_latency_ns / 1000.0);
    set_num(L, "control_latency_avg_us",
            s.controls_delivered
                ? (lua_Number)s.latency_sum_ns / 1000.0 / (lua_Number)s.controls_delivered
                : 0.0);
    set_int(L, "reloads", s.reloads);
    set_int(L, "reload_errors", s.reload_errors);
    set_text(L, "last_reload_error", s.last_reload_error);
    set_text(L, "status_text", s.status_text);
    /* the state's own count: the gauge the worker publishes is a turn old */
    set_int(L, "lua_bytes",
            (lua_Integer)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + lua_gc(L, LUA_GCCOUNTB, 0));
    set_int(L, "tasks", s.gauges.tasks);
    set_int(L, "children", s.gauges.children);
    set_num(L, "uptime", (lua_Number)(lsvc_now_ns() - s.created_ns) / 1e9);
    return 1;
}
