/*
 * waitq.c - ctx:queue() and ctx:await(fn, ...): a queue any code of the
 * service may push to (a luv callback, a task, a handler) and one task may
 * wait on; await calls a luv function with a callback that pushes what it
 * gets, and waits for it. Worker thread only.
 */
#include <lauxlib.h>
#include <lua.h>

#include "private.h"

#define QUEUE_MT "luasvc.Queue"

static lsvc__waitq *check_queue(lua_State *L, int i) { return luaL_checkudata(L, i, QUEUE_MT); }

/* q(...): push the values; a task waiting in q:get takes them. Any code
 * of the service may push: a luv callback, a task, a handler. */
static int q_call(lua_State *L)
{
    lsvc__waitq *q = check_queue(L, 1);
    int n = lua_gettop(L) - 1;
    lua_getiuservalue(L, 1, 1);
    lua_createtable(L, n, 1);
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, i + 1);
        lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
    lua_rawseti(L, -2, q->tail++);
    if (q->waiter)
        lsvc__task_wake(q->waiter, LSVC__WOKE_OK);
    return 0;
}

/* Pop the oldest item of the queue at index 1 onto the stack: true and
 * its values; returns how many. */
static int q_pop(lua_State *L, lsvc__waitq *q)
{
    lua_getiuservalue(L, 1, 1);
    lua_rawgeti(L, -1, q->head);
    lua_pushnil(L);
    lua_rawseti(L, -3, q->head++);
    lua_getfield(L, -1, "n");
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n + 1, "too many values in a queue item");
    lua_pushboolean(L, 1);
    for (int i = 1; i <= n; i++)
        lua_rawgeti(L, -i - 1, i);
    return n + 1;
}

static int q_get_from(lua_State *L, bool resumed);

static int q_get_k(lua_State *L, int status, lua_KContext kctx)
{
    (void)status;
    (void)kctx;
    return q_get_from(L, true);
}

/* Stack: [q, ms|nil]. */
static int q_get_from(lua_State *L, bool resumed)
{
    lsvc__waitq *q = check_queue(L, 1);
    if (q->head < q->tail)
        return q_pop(L, q);
    lsvc__woke woke = resumed ? lsvc__woke_of(L) : LSVC__WOKE_OK;
    if (woke != LSVC__WOKE_OK) {
        lua_pushnil(L);
        lua_pushstring(L, woke == LSVC__WOKE_TIMEOUT ? "timeout" : "stopping");
        return 2;
    }
    lsvc__check_can_wait(L, "queue:get");
    lsvc__worker *w = lsvc__of(L);
    lsvc__task *t = lsvc__current(w);
    if (lsvc__task_must_wind(t)) {
        lua_pushnil(L);
        lua_pushliteral(L, "stopping");
        return 2;
    }
    if (q->waiter && q->waiter != t)
        return luaL_error(L, "queue:get: another task already waits on this queue");
    double ms = lua_isnoneornil(L, 2) ? -1 : lua_tonumber(L, 2);
    if (ms == 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "timeout");
        return 2;
    }
    q->waiter = t;
    t->waiting_on = q;
    return lsvc__suspend(L, LSVC__WAIT_QUEUE, ms, LSVC__WOKE_OK, 0, q_get_k);
}

/* q:get([ms]) -> true, ... | nil, "timeout" | nil, "stopping" */
static int q_get(lua_State *L)
{
    check_queue(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        lua_Number ms = luaL_checknumber(L, 2);
        luaL_argcheck(L, ms >= 0 && ms <= 86400000.0 * 365, 2, "out of range");
    }
    lua_settop(L, 2);
    return q_get_from(L, false);
}

static int q_len(lua_State *L)
{
    lsvc__waitq *q = check_queue(L, 1);
    lua_pushinteger(L, q->tail - q->head);
    return 1;
}

static int q_gc(lua_State *L)
{
    lsvc__waitq *q = check_queue(L, 1);
    if (q->waiter) {
        q->waiter->waiting_on = NULL;
        q->waiter = NULL;
    }
    return 0;
}

static void push_queue(lua_State *L)
{
    lsvc__waitq *q = lua_newuserdatauv(L, sizeof *q, 1);
    q->waiter = NULL;
    q->head = q->tail = 1;
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
    if (luaL_newmetatable(L, QUEUE_MT)) {
        static const luaL_Reg methods[] = {{"get", q_get}, {NULL, NULL}};
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, q_call);
        lua_setfield(L, -2, "__call");
        lua_pushcfunction(L, q_len);
        lua_setfield(L, -2, "__len");
        lua_pushcfunction(L, q_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
}

/* ctx:queue() -> q */
int lsvc__ctx_queue(lua_State *L)
{
    push_queue(L);
    return 1;
}

/* ctx:await(fn, ...) -> true, what fn's callback got | fn's own failure
 * (nil, message, name) | nil, "stopping". Calls fn(..., cb) and waits
 * until cb is called. */
int lsvc__ctx_await(lua_State *L)
{
    luaL_checkany(L, 2);
    lsvc__check_can_wait(L, "ctx:await");
    int n = lua_gettop(L);
    push_queue(L);
    int qi = lua_gettop(L);
    lua_pushvalue(L, 2);
    for (int i = 3; i <= n; i++)
        lua_pushvalue(L, i);
    lua_pushvalue(L, qi);
    lua_call(L, n - 1, LUA_MULTRET);
    if (lua_gettop(L) > qi && lua_isnil(L, qi + 1))
        return lua_gettop(L) - qi; /* fn failed: nil, message, code */
    lua_settop(L, qi);
    lua_replace(L, 1);
    lua_settop(L, 1);
    lua_pushnil(L);
    return q_get_from(L, false);
}
