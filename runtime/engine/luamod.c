/*
 * luamod.c - the luasvc Lua module and the ctx object a script's handlers
 * receive. Called only on the worker thread that owns the lua_State.
 *
 * Errors: a caller's mistake raises ("bad argument #1 to 'sleep'"); the
 * functions here have no system failures to return.
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h"

#define CTX_MT "luasvc.Context"

/* ctx is a table (so scripts may read ctx.name and keep ctx.data); its
 * metatable carries the methods. check_self accepts only that table. */
static void check_self(lua_State *L)
{
    if (!lua_istable(L, 1) || !lua_getmetatable(L, 1))
        luaL_typeerror(L, 1, "luasvc context");
    luaL_getmetatable(L, CTX_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (!same)
        luaL_typeerror(L, 1, "luasvc context");
}

/* ctx:sleep(ms) -> true after ms, false as soon as the task must wind
 * down. Suspends the task (task.c). */
static int ctx_sleep(lua_State *L)
{
    check_self(L);
    lua_Number ms = luaL_checknumber(L, 2);
    luaL_argcheck(L, ms >= 0 && ms <= 86400000.0 * 365, 2, "out of range");
    lua_settop(L, 2);
    return lsvc__ctx_sleep(L);
}

/* ctx:spawn(fn, ...) -> nothing: fn(...) runs as a task (task.c). */
static int ctx_spawn(lua_State *L)
{
    check_self(L);
    return lsvc__ctx_spawn(L);
}

/* ctx:queue() -> q (task.c) */
static int ctx_queue(lua_State *L)
{
    check_self(L);
    return lsvc__ctx_queue(L);
}

/* ctx:await(fn, ...) -> what fn's callback was called with (task.c) */
static int ctx_await(lua_State *L)
{
    check_self(L);
    return lsvc__ctx_await(L);
}

/* ctx:progress([wait_hint_ms [, text]]) -> true if a checkpoint was
 * reported (the service is in a pending state), false otherwise. text: what
 * the step is doing, for service managers (ctx:status). */
static int ctx_progress(lua_State *L)
{
    check_self(L);
    lua_Integer ms = luaL_optinteger(L, 2, 2000);
    luaL_argcheck(L, ms >= 0 && ms <= 0x7fffffff, 2, "out of range");
    const char *text = luaL_optstring(L, 3, NULL);
    lsvc_service *svc = lsvc__service(L);
    lsvc_status st;
    lsvc_service_get_status(svc, &st);
    if (text && lsvc_state_is_pending(st.state))
        lsvc_service_set_text(svc, text, false); /* the progress reports it */
    lua_pushboolean(L, lsvc_service_progress(svc, (uint32_t)ms));
    return 1;
}

/* ctx:status([text]) -> nothing; a one-line status for service managers
 * (systemd's STATUS=, `luasvc status --json`'s status_text), shown until
 * the next state change; nil or no argument clears it. */
static int ctx_status(lua_State *L)
{
    check_self(L);
    const char *text = luaL_optstring(L, 2, "");
    lsvc_service_set_text(lsvc__service(L), text, true);
    return 0;
}

/* ctx:state() -> "RUNNING", ... */
static int ctx_state(lua_State *L)
{
    check_self(L);
    lsvc_status st;
    lsvc_service_get_status(lsvc__service(L), &st);
    lua_pushstring(L, lsvc_state_name(st.state));
    return 1;
}

/* ctx:stopping() -> true once a stop was asked for */
static int ctx_stopping(lua_State *L)
{
    check_self(L);
    lua_pushboolean(L, lsvc_service_stopping(lsvc__service(L)));
    return 1;
}

/* ctx:reloading() -> true while the running version winds down for a new
 * one (ctx:sleep returns false then, as for a stop) */
static int ctx_reloading(lua_State *L)
{
    check_self(L);
    lsvc__worker *w = lsvc__of(L);
    /* run was asked to return for a reload (reload.c winds it), not a stop */
    lsvc__task *run = lsvc__main(w);
    lua_pushboolean(L, run && run->wind_asked && !lsvc_service_stopping(w->svc));
    return 1;
}

/* ctx:log(level, fmt, ...) -> nothing; fmt as string.format */
static int ctx_log(lua_State *L)
{
    check_self(L);
    const char *lvname = luaL_checkstring(L, 2);
    int lv = lsvc_level_from_name(lvname);
    if (lv < 0)
        return luaL_argerror(L, 2,
                             lua_pushfstring(L,
                                             "unknown level '%s' (debug, info, notice, "
                                             "warning, error)",
                                             lvname));
    luaL_checkany(L, 3);
    int n = lua_gettop(L);
    if (n == 3) {
        luaL_tolstring(L, 3, NULL);
    } else {
        lua_getglobal(L, "string");
        lua_getfield(L, -1, "format");
        lua_remove(L, -2);
        for (int i = 3; i <= n; i++)
            lua_pushvalue(L, i);
        lua_call(L, n - 2, 1);
    }
    lsvc_log_text((lsvc_level)lv, lsvc_service_name(lsvc__service(L)), lua_tostring(L, -1));
    return 0;
}

/* ctx:exit([code]) -> nothing; the service winds down and stops with code
 * as its service-specific exit code (0: a clean stop). */
static int ctx_exit(lua_State *L)
{
    check_self(L);
    lua_Integer code = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, code >= 0 && code <= 0x7fffffff, 2, "out of range");
    lsvc__exit(lsvc__of(L), (uint32_t)code);
    return 0;
}

extern const unsigned char lsvc_lua_exec[];
extern const size_t lsvc_lua_exec_len;

static char exec_key; /* registry: lua/exec.lua's function, once loaded */

static int exec_k(lua_State *L, int status, lua_KContext k)
{
    (void)status;
    (void)k;
    return lua_gettop(L);
}

/* ctx:exec(argv [, opts]): lua/exec.lua's, loaded at its first call. */
static int ctx_exec(lua_State *L)
{
    check_self(L);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &exec_key) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        if (luaL_loadbuffer(L, (const char *)lsvc_lua_exec, lsvc_lua_exec_len,
                            "=[luasvc.exec]") != LUA_OK)
            return lua_error(L);
        lsvc__spawn_push_core(L); /* spawn.c */
        lua_call(L, 1, 1);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &exec_key);
    }
    lua_insert(L, 1);
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, exec_k); /* it waits: a yield */
    return lua_gettop(L);
}

static const luaL_Reg ctx_methods[] = {
    {"sleep", ctx_sleep}, {"progress", ctx_progress}, {"status", ctx_status},
    {"state", ctx_state}, {"stopping", ctx_stopping}, {"reloading", ctx_reloading},
    {"log", ctx_log},     {"exit", ctx_exit},         {"spawn", ctx_spawn},
    {"stats", lsvc__ctx_stats},
    {"queue", ctx_queue}, {"await", ctx_await},       {"exec", ctx_exec},
    {NULL, NULL},
};

void lsvc__push_ctx(lua_State *L, lsvc_service *svc)
{
    lua_createtable(L, 0, 2);
    lua_pushstring(L, lsvc_service_name(svc));
    lua_setfield(L, -2, "name");
    lua_newtable(L);
    lua_setfield(L, -2, "data");
    if (luaL_newmetatable(L, CTX_MT)) {
        luaL_newlib(L, ctx_methods);
        lua_setfield(L, -2, "__index");
        lua_pushstring(L, "luasvc.Context");
        lua_setfield(L, -2, "__name");
    }
    lua_setmetatable(L, -2);
}

/* luasvc.now() -> seconds on the monotonic clock, as a float */
static int l_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lsvc_now_ns() / 1e9);
    return 1;
}

static const luaL_Reg module_fns[] = {{"now", l_now}, {NULL, NULL}};

int lsvc__open_luasvc(lua_State *L)
{
    luaL_newlib(L, module_fns);
    lua_pushstring(L, LSVC_VERSION);
    lua_setfield(L, -2, "version");
    lua_newtable(L);
    for (int s = LSVC_STOPPED; s <= LSVC_PAUSED; s++) {
        lua_pushinteger(L, s);
        lua_setfield(L, -2, lsvc_state_name((lsvc_state)s));
    }
    lua_setfield(L, -2, "states");
    lua_newtable(L);
    for (uint32_t c = 1; c < LSVC_CTRL_USER_MIN; c++) {
        if (lsvc_control_name(c)) {
            lua_pushinteger(L, c);
            lua_setfield(L, -2, lsvc_control_name(c));
        }
    }
    lua_setfield(L, -2, "controls");
    lsvc__push_accepts(L);
    lua_setfield(L, -2, "accepts");
    lsvc__open_mailslot(L); /* mailslot.c */
    lua_setfield(L, -2, "mailslot");
    return 1;
}
