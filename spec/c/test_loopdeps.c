/*
 * test_loopdeps.c - the event loop and JSON libraries as a worker will use
 * them (scripts/deps.cmake: luasvc_luv, luasvc_uv, luasvc_cjson), in both
 * builds (natively Debian's, on Windows cross-built from Debian's sources
 * and run under wine): a Lua state gets luv bound to a uv_loop_t of ours
 * (luv_set_loop) with every luv callback run through our protected call
 * (luv_set_callback), and cjson; a Lua chunk starts a TCP server on
 * 127.0.0.1 port 0, connects to it with a luv client, sends a JSON line,
 * the server answers with a changed copy and closes; uv_run runs until every
 * handle is closed, and the results are checked from C. A 10 s timer
 * (unreferenced: it keeps nothing alive) closes everything if the exchange
 * stalls, so the test fails rather than hangs.
 */
#include <stdio.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

#include "luv/luv.h"
/* after lua.h: it declares luaopen_cjson(lua_State *) only */
#include "lua-cjson.h"

#include "check.h"

static const char CHUNK[] =
    "local uv = require 'luv'\n"
    "local cjson = require 'cjson'\n"
    "local R = {}\n"
    "result = R\n"
    "R.same_module = uv == package.loaded.luv\n"
    "R.encoded = cjson.encode({1, 2, 3})\n"
    "local d = cjson.decode('{\"a\":[true,null,1.5]}')\n"
    "R.decoded_ok = d.a[1] == true and d.a[2] == cjson.null and d.a[3] == 1.5\n"
    "local deadline = uv.new_timer()\n"
    "deadline:start(10000, 0, function()\n"
    "  R.timeout = true\n"
    "  uv.walk(function(h) if not h:is_closing() then h:close() end end)\n"
    "end)\n"
    "deadline:unref()\n"
    "local server = uv.new_tcp()\n"
    "assert(server:bind('127.0.0.1', 0))\n"
    "local port = server:getsockname().port\n"
    "R.port = port\n"
    "assert(server:listen(8, function(err)\n"
    "  assert(not err, err)\n"
    "  local conn = uv.new_tcp()\n"
    "  assert(server:accept(conn))\n"
    "  local buf = ''\n"
    "  conn:read_start(function(err, chunk)\n"
    "    assert(not err, err)\n"
    "    buf = buf .. (chunk or '')\n"
    "    local line = buf:match('^(.-)\\n')\n"
    "    if not line then return end\n"
    "    conn:read_stop()\n"
    "    R.server_got = line\n"
    "    local t = cjson.decode(line)\n"
    "    t.n = t.n + 1\n"
    "    t.reply = 'pong'\n"
    "    conn:write(cjson.encode(t) .. '\\n', function(werr)\n"
    "      assert(not werr, werr)\n"
    "      conn:shutdown(function() conn:close() end)\n"
    "    end)\n"
    "    server:close()\n"
    "  end)\n"
    "end))\n"
    "local client = uv.new_tcp()\n"
    "client:connect('127.0.0.1', port, function(err)\n"
    "  assert(not err, err)\n"
    "  client:write(cjson.encode({ping = 'hello', n = 41}) .. '\\n')\n"
    "  local buf = ''\n"
    "  client:read_start(function(rerr, chunk)\n"
    "    assert(not rerr, rerr)\n"
    "    if chunk then buf = buf .. chunk; return end\n"
    "    R.client_got = buf\n"
    "    local t = cjson.decode(buf)\n"
    "    R.reply, R.n42, R.ping = t.reply, t.n == 42, t.ping\n"
    "    client:close()\n"
    "    deadline:close()\n"
    "  end)\n"
    "end)\n";

static int callbacks, callback_errors;

/* The callback wrapper luv calls for every callback (luv_CFpcall): the
 * function and nargs arguments on the stack; runs it with a traceback and
 * leaves nresults values (returns their count) or, on error, nothing
 * (returns minus lua_pcall's status), as luv's own luv_cfpcall does, but
 * never exits: an error is counted and printed. */
static int traceback(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

static int test_pcall(lua_State *L, int nargs, int nresults, int flags)
{
    (void)flags;
    callbacks++;
    int base = lua_gettop(L) - nargs; /* the function's index */
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nresults, base);
    if (status != LUA_OK) {
        callback_errors++;
        fprintf(stderr, "luv callback failed: %s\n", lua_tostring(L, -1));
        lua_settop(L, base - 1);
        return -status;
    }
    lua_remove(L, base);
    return nresults == LUA_MULTRET ? lua_gettop(L) - base + 1 : nresults;
}

static void count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    ++*(int *)arg;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* The field NAME of the global table `result` as a string (a number
 * converted), or NULL; in one of a few static buffers used in turn. */
static const char *field(lua_State *L, const char *name)
{
    static char bufs[4][256];
    static int next;
    char *buf = bufs[next++ % 4];
    lua_getglobal(L, "result");
    lua_getfield(L, -1, name);
    const char *s = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
    if (s)
        snprintf(buf, sizeof bufs[0], "%s", s);
    lua_pop(L, 2);
    return s ? buf : NULL;
}

static int flag(lua_State *L, const char *name)
{
    lua_getglobal(L, "result");
    lua_getfield(L, -1, name);
    int b = lua_toboolean(L, -1);
    lua_pop(L, 2);
    return b;
}

int main(void)
{
    uv_loop_t loop;
    CHECK_EQ(uv_loop_init(&loop), 0);

    lua_State *L = luaL_newstate();
    CHECK(L != NULL);
    luaL_openlibs(L);
    /* Both before luaopen_luv, as luv.h says. */
    luv_set_loop(L, &loop);
    luv_set_callback(L, test_pcall);
    luaL_requiref(L, "luv", luaopen_luv, 0);
    luaL_requiref(L, "cjson", luaopen_cjson, 0);
    lua_pop(L, 2);
    CHECK(luv_loop(L) == &loop);

    if (luaL_loadbuffer(L, CHUNK, sizeof CHUNK - 1, "=loopdeps") != LUA_OK ||
        lua_pcall(L, 0, 0, 0) != LUA_OK) {
        FAILF("chunk: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);

    CHECK(flag(L, "same_module"));
    CHECK_STR(field(L, "encoded"), "[1,2,3]");
    CHECK(flag(L, "decoded_ok"));
    CHECK(!flag(L, "timeout"));
    const char *port = field(L, "port");
    CHECK(port != NULL && strcmp(port, "0") != 0);
    const char *got = field(L, "server_got");
    CHECK(got != NULL && strstr(got, "\"ping\":\"hello\"") && strstr(got, "\"n\":41"));
    CHECK_STR(field(L, "reply"), "pong");
    CHECK(flag(L, "n42")); /* cjson 2.1 numbers are floats: 42.0 */
    got = field(L, "client_got");
    CHECK(got != NULL && strstr(got, "\"n\":42") && strstr(got, "\"reply\":\"pong\""));
    CHECK_STR(field(L, "ping"), "hello");
    /* connect, accept, 2 reads, write, shutdown, EOF at least */
    CHECK(callbacks >= 6);
    CHECK_EQ(callback_errors, 0);

    /* Everything the chunk opened is closed (the deadline timer too). */
    int open = 0;
    uv_walk(&loop, count_handle, &open);
    CHECK_EQ(open, 0);
    /* Teardown as a worker does it: close what is left, run the close
     * callbacks (they touch the Lua state), then the state, then the loop. */
    uv_walk(&loop, close_handle, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    lua_close(L);
    CHECK_EQ(uv_loop_close(&loop), 0);
    return CHECK_EXIT("test_loopdeps");
}
