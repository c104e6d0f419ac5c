/*
 * fuzz_http.c - libFuzzer target for luasvc.http's parser glue
 * (runtime/engine/http.c over llhttp): the C functions scripts reach, called
 * through Lua as lua/http.lua calls them. The first bytes of an input pick
 * the kind (request or response), small limits (so that 413, 414 and 431
 * are reached) and where the rest is cut into the pieces fed one at a
 * time; after each piece every complete message is taken. A message must
 * satisfy the invariants below, and a refusal must carry an HTTP status;
 * a broken one aborts. ASan/UBSan catch the rest.
 *
 *   fuzz_http -max_len=4096 SCRATCH_DIR spec/fuzz/http-corpus
 *
 * (libFuzzer writes new inputs into the first directory: keep the seeds
 * second. CI runs it for 20 s; a longer run: -max_total_time=3600.)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int lsvc__http_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_http: invariant broken: %s (%s:%d)\n",       \
                    #cond, __FILE__, __LINE__);                                \
            abort();                                                           \
        }                                                                      \
    } while (0)

static lua_State *L;

/* The message at the top of the stack (popped). */
static void check_message(bool response, size_t max_body, size_t max_line)
{
    REQUIRE(lua_istable(L, -1));
    REQUIRE(lua_getfield(L, -1, "headers") == LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        REQUIRE(lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING);
        const char *k = lua_tostring(L, -2);
        for (; *k; k++)
            REQUIRE(!(*k >= 'A' && *k <= 'Z'));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    size_t blen;
    REQUIRE(lua_getfield(L, -1, "body") == LUA_TSTRING);
    lua_tolstring(L, -1, &blen);
    REQUIRE(blen <= max_body);
    lua_pop(L, 1);
    REQUIRE(lua_getfield(L, -1, "version") == LUA_TSTRING);
    lua_pop(L, 1);
    if (response) {
        REQUIRE(lua_getfield(L, -1, "status") == LUA_TNUMBER);
        lua_pop(L, 1);
    } else {
        size_t tlen, plen;
        REQUIRE(lua_getfield(L, -1, "method") == LUA_TSTRING);
        REQUIRE(lua_getfield(L, -2, "target") == LUA_TSTRING);
        REQUIRE(lua_getfield(L, -3, "path") == LUA_TSTRING);
        const char *t = lua_tolstring(L, -2, &tlen);
        const char *p = lua_tolstring(L, -1, &plen);
        REQUIRE(tlen <= max_line && plen <= tlen && memcmp(t, p, plen) == 0);
        lua_pop(L, 3);
    }
    lua_pop(L, 1);
}

/* Call parser:name() with nargs values above it; results on the stack. */
static int call(int parser, const char *name, int nargs, int nres)
{
    lua_getfield(L, parser, name);
    lua_pushvalue(L, parser);
    lua_rotate(L, -2 - nargs, 2);
    lua_call(L, 1 + nargs, nres);
    return nres;
}

/* Take every complete message: false once the parser refused. */
static bool drain(int parser, bool response, size_t max_body, size_t max_line)
{
    for (int n = 0; n < 10000; n++) {
        call(parser, "next", 0, 3);
        if (lua_istable(L, -3)) {
            lua_pop(L, 2);
            check_message(response, max_body, max_line);
            continue;
        }
        bool refused = lua_isboolean(L, -3);
        if (refused) {
            lua_Integer st = lua_tointeger(L, -2);
            REQUIRE(st == 400 || st == 408 || st == 413 || st == 414 || st == 431 || st == 503);
            REQUIRE(lua_isstring(L, -1));
        } else {
            REQUIRE(lua_isnil(L, -3));
        }
        lua_pop(L, 3);
        return !refused;
    }
    REQUIRE(!"a parser that never asks for more input");
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!L) {
        L = luaL_newstate();
        luaL_openlibs(L);
    }
    if (size < 4)
        return 0;
    bool response = data[0] & 1;
    bool small = data[0] & 2;
    size_t max_line = small ? 16 + data[1] % 64 : 8192;
    size_t max_body = small ? data[2] % 128 : 1048576;
    size_t cut = 1 + data[3] % 16;
    data += 4;
    size -= 4;

    lua_settop(L, 0);
    lsvc__http_core(L);
    lua_getfield(L, 1, "parser");
    lua_pushstring(L, response ? "response" : "request");
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)max_line);
    lua_setfield(L, -2, "max_line");
    lua_pushinteger(L, small ? 256 : 16384);
    lua_setfield(L, -2, "max_header");
    lua_pushinteger(L, small ? 4 : 100);
    lua_setfield(L, -2, "max_headers");
    lua_pushinteger(L, max_body ? (lua_Integer)max_body : 1);
    lua_setfield(L, -2, "max_body");
    if (!max_body)
        max_body = 1;
    lua_call(L, 2, 1);
    int parser = lua_gettop(L);
    bool alive = true;
    for (size_t at = 0; at < size && alive; at += cut) {
        size_t n = size - at < cut ? size - at : cut;
        lua_pushlstring(L, (const char *)data + at, n);
        call(parser, "feed", 1, 0);
        alive = drain(parser, response, max_body, max_line);
        call(parser, "state", 0, 1);
        REQUIRE(lua_isstring(L, -1));
        lua_pop(L, 1);
        call(parser, "continue", 0, 1);
        lua_pop(L, 1);
    }
    if (alive) {
        call(parser, "finish", 0, 3);
        if (lua_istable(L, -3)) {
            lua_pop(L, 2);
            check_message(response, max_body, max_line);
        } else {
            lua_pop(L, 3);
        }
    }
    call(parser, "close", 0, 0);
    call(parser, "close", 0, 0); /* safe twice */
    lua_settop(L, 0);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
