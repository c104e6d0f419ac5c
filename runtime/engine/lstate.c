/*
 * lstate.c - the bottom of the engine: what every engine file needs of the
 * service's Lua state. The worker of a state (its extra space), an error
 * object's text, os.exit as the service's exit (not the process's), and a
 * protected read of the script's table (an __index that raises stops the
 * service with code 2, once). Worker thread only.
 */
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h"

lsvc__worker *lsvc__of(lua_State *L) { return *(lsvc__worker **)lua_getextraspace(L); }

lsvc_service *lsvc__service(lua_State *L) { return lsvc__of(L)->svc; }

uint64_t lsvc__ms_from_now(uint32_t ms) { return lsvc_now_ns() + (uint64_t)ms * 1000000u; }

/* ---- wrappers (the fences', coroutine.close) ---------------------------------- */

void lsvc__wrap(lua_State *L, int t, const char *name, int (*f)(lua_State *))
{
    t = lua_absindex(L, t);
    lua_getfield(L, t, name);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, t, name);
}

int lsvc__call_wrapped(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* ---- error objects -------------------------------------------------------- */

static int tostring_k(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

const char *lsvc__error_text(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) {
        lua_pushvalue(L, idx);
        return lua_tostring(L, -1);
    }
    lua_pushcfunction(L, tostring_k);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
    }
    return lua_tostring(L, -1);
}

/* ---- os.exit: the service's, not the process's ----------------------------- */

static char exit_key; /* the registry's os.exit error object */

bool lsvc__is_exit(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &exit_key);
    bool is = lua_rawequal(L, idx, -1);
    lua_pop(L, 1);
    return is;
}

void lsvc__exit(lsvc__worker *w, uint32_t code)
{
    w->exit_set = true;
    w->exit_code = code;
    lsvc_service_request_stop(w->svc);
}

/* os.exit([code]): the service stops with code (true: 0, false: 1), as
 * ctx:exit does, and the task (or callback) calling it ends; the process
 * goes on for the other services. Not at a top level being loaded. */
static int os_exit(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    lua_Integer code = lua_isboolean(L, 1) ? !lua_toboolean(L, 1) : luaL_optinteger(L, 1, 0);
    if (w->loading)
        return luaL_error(L, "os.exit at the top level of a script: refused (it would stop the "
                             "service while loading; return the script's table)");
    lsvc_log(LSVC_LOG_INFO, lsvc_service_name(w->svc), "os.exit(%d): the service stops", (int)code);
    lsvc__exit(w, (uint32_t)code);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &exit_key);
    return lua_error(L);
}

static int exit_tostring(lua_State *L)
{
    lua_pushliteral(L, "os.exit: the service stops");
    return 1;
}

void lsvc__open_exit(lua_State *L)
{
    lua_newtable(L);
    lua_newtable(L);
    lua_pushcfunction(L, exit_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &exit_key);
    lua_getglobal(L, "os");
    lua_pushcfunction(L, os_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
}

/* ---- the script's table, read under protection ----------------------------- */

/* [t, k] -> t[k]: the script's metamethods run under the caller's pcall */
static int get_k(lua_State *L)
{
    lua_gettable(L, 1);
    return 1;
}

int lsvc__get(lsvc__worker *w, const char *what, const char *field)
{
    lua_State *L = w->L;
    if (w->broken) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1) && !lua_getmetatable(L, -1)) {
        lua_pop(L, 1); /* not indexable: nothing there */
        lua_pushnil(L);
        return 1;
    } else if (!lua_istable(L, -1)) {
        lua_pop(L, 1); /* the metatable */
    }
    lua_pushcfunction(L, get_k);
    lua_insert(L, -2);
    lua_pushstring(L, field);
    lua_State *prev = lsvc__running_swap(w, L); /* an __index that loops is interrupted */
    int rc = lua_pcall(L, 2, 1, 0);
    lsvc__running_swap(w, prev);
    if (rc == LUA_OK)
        return 1;
    lsvc__broken(w, what, field);
    return 0;
}

void lsvc__broken(lsvc__worker *w, const char *what, const char *field)
{
    lua_State *L = w->L;
    if (!w->broken) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
                 "reading %s.%s raised an error: %s; the service stops (exit code %u)", what, field,
                 lsvc__error_text(L, -1), (unsigned)LSVC_EXIT_LOAD_ERROR);
        lua_pop(L, 1);
        w->broken = true;
        w->failed = true;
        w->exit_set = true;
        w->exit_code = LSVC_EXIT_LOAD_ERROR;
        lsvc_service_request_stop(w->svc);
    }
    lua_pop(L, 1);
}

int lsvc__push_handler(lsvc__worker *w, const char *field)
{
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->script_ref);
    if (!lsvc__get(w, "S", field))
        return 0;
    if (lua_isfunction(w->L, -1))
        return 1;
    lua_pop(w->L, 1);
    return 0;
}

/* ---- the model's names for Lua --------------------------------------------- */

void lsvc__push_accepts(lua_State *L)
{
    lua_newtable(L);
    for (uint32_t bit = 1; bit <= LSVC_ACCEPT_PRESHUTDOWN; bit <<= 1) {
        if (lsvc_accept_name(bit)) {
            lua_pushinteger(L, bit);
            lua_setfield(L, -2, lsvc_accept_name(bit));
        }
    }
}
