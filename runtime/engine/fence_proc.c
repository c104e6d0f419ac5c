/*
 * fence_proc.c - the rest of what a service may not reach of the process
 * (DESIGN §9), beside fence.c's signals, threads, pool and working
 * directory:
 *
 *   - the process's identity, environment, locale, title and priority:
 *     uv.setuid, uv.setgid, uv.os_setenv, uv.os_unsetenv,
 *     uv.set_process_title, os.setlocale with a locale (a query is fine)
 *     and uv.os_setpriority of the host itself raise, naming what to use
 *     instead (a child's environment through ctx:exec's or uv.spawn's
 *     env; the unit's User=);
 *   - the fences' own originals: every wrapper keeps luv's (or Lua's)
 *     function as an upvalue of a C closure, which debug.getupvalue would
 *     hand back; debug.getupvalue, debug.setupvalue and debug.upvalueid
 *     see no upvalue of a C function;
 *   - a second, unfenced copy of a module the runtime has: package.loadlib
 *     (which the module searchers use too) refuses a library that exports
 *     luaopen_luv, luaopen_lfs, luaopen_cjson or luaopen_cjson_safe (the
 *     system's luv.so, say): `require "luv"` gives the runtime's.
 *
 * Worker thread only.
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h" /* first: on Windows, uv.h's winsock2.h goes before windows.h */
#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#include <unistd.h>
#endif

/* ---- identity, environment, locale, title, priority ------------------------ */

static int no_identity(lua_State *L)
{
    return luaL_error(L, "uv.setuid/uv.setgid: the identity is the host's, every service's of "
                         "the process: run the host as that user (the unit's User=)");
}

static int no_environment(lua_State *L)
{
    return luaL_error(L, "uv.os_setenv/uv.os_unsetenv: the environment is the host's, every "
                         "service's of the process: give a child its own with ctx:exec's "
                         "opts.env or uv.spawn's env");
}

static int no_title(lua_State *L)
{
    return luaL_error(L, "uv.set_process_title: the title is the host's, every service's of the "
                         "process");
}

/* os.setlocale(): a query passes; a change raises (the locale is every
 * service's: a sibling's tostring(1.5) would read "1,5"). */
static int fenced_setlocale(lua_State *L)
{
    if (!lua_isnoneornil(L, 1))
        return luaL_error(L, "os.setlocale: the locale is the process's, every service's (their "
                             "number formatting, for one): a service cannot change it; "
                             "os.setlocale() and os.setlocale(nil, category) query it");
    return lsvc__call_wrapped(L);
}

/* uv.os_setpriority(pid, priority): not of the host itself. */
static int fenced_setpriority(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
#ifdef _WIN32
    lua_Integer self = (lua_Integer)GetCurrentProcessId();
#else
    lua_Integer self = (lua_Integer)getpid();
#endif
    if (pid == 0 || pid == self)
        return luaL_error(L, "uv.os_setpriority: the host's priority is every service's of the "
                             "process: a service sets its children's only");
    return lsvc__call_wrapped(L);
}

void lsvc__fence_proc_luv(lua_State *L, int uv)
{
    uv = lua_absindex(L, uv);
    static const char *const identity[] = {"setuid", "setgid", NULL};
    static const char *const env[] = {"os_setenv", "os_unsetenv", NULL};
    for (int i = 0; identity[i]; i++) {
        lua_pushcfunction(L, no_identity);
        lua_setfield(L, uv, identity[i]);
    }
    for (int i = 0; env[i]; i++) {
        lua_pushcfunction(L, no_environment);
        lua_setfield(L, uv, env[i]);
    }
    lua_pushcfunction(L, no_title);
    lua_setfield(L, uv, "set_process_title");
    lsvc__wrap(L, uv, "os_setpriority", fenced_setpriority);
}

/* ---- a C function's upvalues ----------------------------------------------- */

/* debug.getupvalue(f, n), debug.setupvalue(f, n, v), debug.upvalueid(f,
 * n): a C function has none to see. Upvalue 1: Lua's. */
static int fenced_upvalue(lua_State *L)
{
    if (lua_iscfunction(L, 1)) {
        luaL_checkinteger(L, 2);
        lua_pushnil(L);
        return 1;
    }
    return lsvc__call_wrapped(L);
}

/* ---- copies of the runtime's modules ------------------------------------------ */

static const char *const OWN[][2] = {{"luaopen_luv", "luv"},
                                     {"luaopen_lfs", "lfs"},
                                     {"luaopen_cjson", "cjson"},
                                     {"luaopen_cjson_safe", "cjson.safe"},
                                     {NULL, NULL}};

/* The module of the runtime's that the library at path is a copy of, or
 * NULL (also when it cannot be opened: loadlib then says why). */
static const char *copy_of(const char *path)
{
    const char *own = NULL;
#ifdef _WIN32
    HMODULE h = LoadLibraryExA(path, NULL, DONT_RESOLVE_DLL_REFERENCES);
    for (int i = 0; h && OWN[i][0] && !own; i++)
        if (GetProcAddress(h, OWN[i][0]))
            own = OWN[i][1];
    if (h)
        FreeLibrary(h);
#else
    void *h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
    for (int i = 0; h && OWN[i][0] && !own; i++)
        if (dlsym(h, OWN[i][0]))
            own = OWN[i][1];
    if (h)
        dlclose(h);
#endif
    return own;
}

/* package.loadlib(path, funcname): as Lua's (nil, message, "open" when
 * refused). Upvalue 1: Lua's. */
static int fenced_loadlib(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    const char *own = copy_of(path);
    if (!own)
        return lsvc__call_wrapped(L);
    lua_pushnil(L);
    lua_pushfstring(L, "%s is a copy of %s, which the runtime has already, fenced: require \"%s\"",
                    path, own, own);
    lua_pushliteral(L, "open");
    return 3;
}

void lsvc__fence_proc_open(lua_State *L)
{
    if (lua_getglobal(L, "debug") == LUA_TTABLE) {
        lsvc__wrap(L, -1, "getupvalue", fenced_upvalue);
        lsvc__wrap(L, -1, "setupvalue", fenced_upvalue);
        lsvc__wrap(L, -1, "upvalueid", fenced_upvalue);
    }
    lua_pop(L, 1);
    if (lua_getglobal(L, "os") == LUA_TTABLE)
        lsvc__wrap(L, -1, "setlocale", fenced_setlocale);
    lua_pop(L, 1);
    if (lua_getglobal(L, "package") == LUA_TTABLE)
        lsvc__wrap(L, -1, "loadlib", fenced_loadlib);
    lua_pop(L, 1);
}
