/*
 * uvlua.c - luv (the libuv binding) for scripts, bound to the worker's own
 * loop, as Neovim embeds it: luv_set_loop and luv_set_callback before
 * luaopen_luv, the module opened lazily by `require "luv"` (a preload, so
 * a script that does not use it pays nothing) and kept in package.loaded.
 *
 * Every luv callback runs through the runtime's protected call: a
 * traceback, an error logged as "error in a luv callback: ...", the same
 * interrupt as a handler (a callback that spins past a deadline is
 * interrupted; what the deadline was for is then settled as for a task).
 * Callbacks run on the worker's main Lua state between the scheduler's
 * turns; they cannot wait (use ctx:spawn for sequential code).
 *
 * The loop is the runtime's: uv.run and uv.loop_close raise; uv.walk shows
 * the script's handles only (the runtime's own have data NULL). At STOPPED
 * every handle is closed and children are ended (lsvc_uvlua_close_all).
 * Worker thread only.
 */
#include <signal.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <luv/lhandle.h>
#include <luv/luv.h>

#include "worker.h"

#define KILL_WAIT_MS 1000u /* after SIGKILL: a child in D state is left behind */

static int traceback(lua_State *L)
{
    if (lsvc_worker_is_exit(L, 1))
        return 1; /* os.exit: no traceback, nothing logged */
    luaL_traceback(L, L, lsvc_worker_error_text(L, 1), 1);
    return 1;
}

int lsvc_uvlua_pcall(lsvc_worker *w, int nargs, int nresults, const char *what)
{
    lua_State *L = w->L;
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    lua_State *prev = w->running;
    bool nested = w->current != NULL || prev != NULL; /* called back inside a task's call */
    w->running = L;
    int rc = lua_pcall(L, nargs, nresults, base);
    w->running = prev;
    lua_remove(L, base);
    if (rc == LUA_OK) {
        int n = nresults == LUA_MULTRET ? lua_gettop(L) - base + 1 : nresults;
        if (!nested && n == 0)
            lsvc_worker_between_callbacks(w); /* a control waits one callback at most */
        return n;
    }
    if (!lsvc_worker_is_exit(L, -1))
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc), "error in %s: %s", what,
                 lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!nested && lsvc_service_interrupted(w->svc))
        lsvc_worker_interrupted(w, LSVC_VICTIM_OTHER);
    return -rc;
}

/* luv's callback routine (luv_CFpcall): L is the state given to
 * luv_set_loop, the worker's main state. */
static int cb_pcall(lua_State *L, int nargs, int nresults, int flags)
{
    (void)flags;
    return lsvc_uvlua_pcall(lsvc_worker_of(L), nargs, nresults, "a luv callback");
}

static int no_run(lua_State *L)
{
    return luaL_error(L, "uv.run/uv.loop_close: the service's loop is luasvc's and runs "
                         "already; use callbacks, ctx:sleep, ctx:await or ctx:spawn");
}

/* Push the script's handles (luv's: data set) as a list. */
static void walk_cb(uv_handle_t *h, void *arg)
{
    lua_State *L = arg;
    luv_handle_t *d = h->data;
    if (!d || uv_is_closing(h))
        return; /* the runtime's own, or going */
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, d->ref);
    lua_rawseti(L, -2, n + 1);
}

static void push_handles(lsvc_worker *w, lua_State *L)
{
    lua_newtable(L);
    uv_walk(&w->loop, walk_cb, L);
}

/* uv.walk(fn): fn(handle) for each of the script's handles. */
static int safe_walk(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    push_handles(lsvc_worker_of(L), L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushvalue(L, 1);
        lua_rawgeti(L, 2, i);
        lua_call(L, 1, 0);
    }
    return 0;
}

static int open_luv(lua_State *L)
{
    lsvc_worker *w = lsvc_worker_of(L);
    luv_set_loop(w->L, &w->loop); /* callbacks run on the main state */
    luv_set_callback(w->L, cb_pcall);
    luaopen_luv(L);
    lua_pushcfunction(L, no_run);
    lua_setfield(L, -2, "run");
    lua_pushcfunction(L, no_run);
    lua_setfield(L, -2, "loop_close");
    lua_pushcfunction(L, safe_walk);
    lua_setfield(L, -2, "walk");
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "luv"); /* one instance, whoever requires it */
    lua_pop(L, 1);
    return 1;
}

void lsvc_uvlua_open(lsvc_worker *w)
{
    lua_State *L = w->L;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, open_luv);
    lua_setfield(L, -2, "luv");
    lua_pop(L, 1);
}

/* ---- closing at STOPPED ------------------------------------------------------ */

static bool luv_opened(lsvc_worker *w)
{
    luaL_getsubtable(w->L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(w->L, -1, "luv");
    bool open = !lua_isnil(w->L, -1);
    lua_pop(w->L, 2);
    return open;
}

typedef struct {
    int sig;
    unsigned live;
} kill_arg;

static void kill_cb(uv_handle_t *h, void *arg)
{
    kill_arg *k = arg;
    if (h->type != UV_PROCESS || !h->data || !uv_is_active(h))
        return; /* not the script's, or already reaped */
    k->live++;
    if (k->sig)
        uv_process_kill((uv_process_t *)h, k->sig);
}

static unsigned signal_children(lsvc_worker *w, int sig)
{
    kill_arg k = {sig, 0};
    uv_walk(&w->loop, kill_cb, &k);
    return k.live;
}

/* handle:close() for each of the script's handles (luv's own close
 * callback frees what it holds); processes only once reaped unless all. */
static void close_handles(lsvc_worker *w, bool processes_too)
{
    lua_State *L = w->L;
    push_handles(w, L);
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        uv_handle_t **ud = lua_touserdata(L, -1);
        uv_handle_t *h = ud ? *ud : NULL;
        if (!h || (h->type == UV_PROCESS && uv_is_active(h) && !processes_too)) {
            lua_pop(L, 1);
            continue;
        }
        lua_getfield(L, -1, "close");
        lua_insert(L, -2);
        lsvc_uvlua_pcall(w, 1, 0, "closing a handle at stop");
    }
    lua_settop(L, list - 1);
}

static void on_grace(uv_timer_t *t) { (void)t; /* wakes the loop */ }

/* Run the loop until no child of the script is left unreaped, or ms. */
static void wait_children(lsvc_worker *w, uv_timer_t *timer, uint32_t ms)
{
    uint64_t due = lsvc_now_ns() + (uint64_t)ms * 1000000u;
    uv_update_time(&w->loop);
    uv_timer_start(timer, on_grace, ms, 0);
    while (signal_children(w, 0) && lsvc_now_ns() < due && !lsvc_service_interrupted(w->svc))
        uv_run(&w->loop, UV_RUN_ONCE);
    uv_timer_stop(timer);
}

void lsvc_uvlua_close_all(lsvc_worker *w, uint32_t grace_ms)
{
    if (!luv_opened(w))
        return;
    close_handles(w, false);
    if (signal_children(w, SIGTERM)) {
        uv_timer_t *timer = &w->watch_timer; /* the watch is over */
        wait_children(w, timer, grace_ms);
        if (signal_children(w, SIGKILL)) {
            lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(w->svc),
                     "a child did not exit within %u ms of SIGTERM: killed", grace_ms);
            wait_children(w, timer, KILL_WAIT_MS);
        }
    }
    close_handles(w, true);
}
