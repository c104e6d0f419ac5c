/*
 * test_alloc.c - alloc.c under a real Lua state: past memory_limit a
 * script's allocation raises "not enough memory" in that state, which goes
 * on (its memory freed, the next call works); freeing always works; once
 * stopping, the reserve lets a handler allocate again; with no limit
 * nothing is refused; the byte count returns to what it was.
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "primitives/primitives.h"

#include "check.h"

/* Run chunk in L; the error message ("" for none) into err. */
static int run(lua_State *L, const char *chunk, char *err, size_t errlen)
{
    int rc = luaL_loadstring(L, chunk);
    if (rc == LUA_OK)
        rc = lua_pcall(L, 0, 0, 0);
    snprintf(err, errlen, "%s",
             rc == LUA_OK          ? ""
             : lua_tostring(L, -1) ? lua_tostring(L, -1)
                                   : "?");
    if (rc != LUA_OK)
        lua_pop(L, 1);
    return rc;
}

static const char *const HOG = "local t = {} for i = 1, 1e7 do t[i] = ('x'):rep(64) .. i end";

int main(void)
{
    char err[256];
    lsvc_alloc a = {.limit = 0, .reserve = LSVC_ALLOC_RESERVE};
    lua_State *L = lua_newstate(lsvc_lua_alloc, &a);
    CHECK(L != NULL);
    luaL_openlibs(L);
    lua_gc(L, LUA_GCCOLLECT);
    size_t base = a.used;
    CHECK(base > 0);

    /* a limit 2 MiB above what the state holds */
    a.limit = base + 2u * 1024 * 1024;
    CHECK_EQ(run(L, HOG, err, sizeof err), LUA_ERRMEM);
    CHECK(strstr(err, "not enough memory") != NULL);
    CHECK(a.refused > 0);
    CHECK(a.peak <= a.limit);
    /* the state goes on: its garbage collected, a small call works */
    lua_gc(L, LUA_GCCOLLECT);
    CHECK(a.used < base + 64 * 1024);
    CHECK_EQ(run(L, "x = ('y'):rep(1000)", err, sizeof err), LUA_OK);

    /* stopping: the reserve allows what a stop handler needs */
    CHECK_EQ(run(L, "big = ('z'):rep(1000 * 1024)", err, sizeof err), LUA_OK);
    CHECK_EQ(run(L, "more = ('w'):rep(600 * 1024)", err, sizeof err), LUA_ERRMEM);
    a.stopping = true;
    CHECK_EQ(run(L, "more = ('w'):rep(600 * 1024)", err, sizeof err), LUA_OK);
    CHECK_EQ(run(L, "big, more = nil, nil", err, sizeof err), LUA_OK);

    /* no limit: nothing refused */
    a.limit = 0;
    a.stopping = false;
    unsigned refused = a.refused;
    CHECK_EQ(
        run(L, "local t = {} for i = 1, 1e5 do t[i] = ('x'):rep(64) .. i end", err, sizeof err),
        LUA_OK);
    CHECK_EQ(a.refused, refused);
    lua_close(L);
    CHECK_EQ(a.used, 0); /* every byte given back, and counted */
    return CHECK_EXIT("test_alloc");
}
