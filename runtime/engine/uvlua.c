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
 * Each call is a slice of handler_timeout (lsvc_service_slice_begin): one
 * that runs past it is interrupted, logged with its traceback, and that
 * call ends; its handle stays, and the loop goes on.
 * Callbacks run on the worker's main Lua state between the scheduler's
 * turns; they cannot wait (use ctx:spawn for sequential code).
 *
 * The loop is the runtime's: uv.run and uv.loop_close raise; uv.walk shows
 * the script's handles only (the runtime's own have data NULL). At STOPPED
 * every handle is closed and children are ended (lsvc_uvlua_close_all).
 * The handles a refused version's top level opened are closed when it is
 * refused, its children sent SIGTERM, then SIGKILL, and reaped; none of
 * its callbacks runs again (lsvc_uvlua_close_refused).
 * Worker thread only.
 */
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <luv/lhandle.h>
#include <luv/luv.h>

#include "private.h"

#define KILL_WAIT_MS 1000u /* after SIGKILL: a child in D state is left behind */
#define POLL_MS 2u         /* the tree looked at while it ends */

/* uvlua.c's own, beside the worker */
struct lsvc__uv {
    uv_timer_t reap_timer;  /* a refused version's children: SIGKILL */
    bool reap_timer_init;
    uv_timer_t grace_timer; /* the children's grace at STOPPED */
    bool grace_timer_init;
    bool closing_refused;   /* a refused version's handles are being closed:
                             * no control is delivered from inside */
    void (*between)(lsvc__worker *w); /* registered: between two callbacks (loop.c) */
};

static int traceback(lua_State *L)
{
    if (lsvc__is_exit(L, 1))
        return 1; /* os.exit: no traceback, nothing logged */
    luaL_traceback(L, L, lsvc__error_text(L, 1), 1);
    return 1;
}

int lsvc__uvlua_pcall(lsvc__worker *w, int nargs, int nresults, const char *what)
{
    lua_State *L = w->L;
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    lua_State *prev = lsvc__running_swap(w, L);
    bool nested = lsvc__current(w) != NULL || prev != NULL; /* called back inside a task's call */
    if (!nested)
        lsvc_service_slice_begin(w->svc); /* handler_timeout */
    int rc = lua_pcall(L, nargs, nresults, base);
    bool overran = !nested && lsvc_service_slice_end(w->svc);
    lsvc__running_swap(w, prev);
    lua_remove(L, base);
    if (overran) /* the call ends; its handle stays */
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
                 "%s ran past handler_timeout (%u ms): interrupted%s%s", what,
                 w->handler_timeout_ms, rc == LUA_OK ? "" : ": ",
                 rc == LUA_OK ? "" : lua_tostring(L, -1));
    if (rc == LUA_OK) {
        int n = nresults == LUA_MULTRET ? lua_gettop(L) - base + 1 : nresults;
        if (!nested && n == 0 && !w->uv->closing_refused)
            w->uv->between(w); /* a control waits one callback at most */
        return n;
    }
    if (!overran && !lsvc__is_exit(L, -1))
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc), "error in %s: %s", what,
                 lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!nested && lsvc_service_interrupted(w->svc))
        lsvc__interrupted(w, LSVC__VICTIM_OTHER);
    return -rc;
}

/* luv's callback routine (luv_CFpcall): L is the state given to
 * luv_set_loop, the worker's main state. */
static int cb_pcall(lua_State *L, int nargs, int nresults, int flags)
{
    (void)flags;
    return lsvc__uvlua_pcall(lsvc__of(L), nargs, nresults, "a luv callback");
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

static void push_handles(lsvc__worker *w, lua_State *L)
{
    lua_newtable(L);
    uv_walk(&w->loop, walk_cb, L);
}

/* uv.walk(fn): fn(handle) for each of the script's handles. */
static int safe_walk(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    push_handles(lsvc__of(L), L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushvalue(L, 1);
        lua_rawgeti(L, 2, i);
        lua_call(L, 1, 0);
    }
    return 0;
}

static char luv_key; /* registry: the module, once opened */

static int open_luv(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &luv_key) == LUA_TTABLE)
        return 1; /* opened already (by a version refused since) */
    lua_pop(L, 1);
    luv_set_loop(w->L, &w->loop); /* callbacks run on the main state */
    luv_set_callback(w->L, cb_pcall);
    luaopen_luv(L);
    lua_pushcfunction(L, no_run);
    lua_setfield(L, -2, "run");
    lua_pushcfunction(L, no_run);
    lua_setfield(L, -2, "loop_close");
    lua_pushcfunction(L, safe_walk);
    lua_setfield(L, -2, "walk");
    lsvc__fence_luv(L, -1); /* fence.c: what of the process luv would reach */
    lsvc__ptree_luv(L, -1); /* ptree.c: uv.spawn's children are the tree's */
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &luv_key);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "luv"); /* one instance, whoever requires it */
    lua_pop(L, 1);
    return 1;
}

void lsvc__uvlua_open(lsvc__worker *w, void (*between)(lsvc__worker *w))
{
    lua_State *L = w->L;
    w->uv = calloc(1, sizeof *w->uv);
    if (!w->uv)
        luaL_error(L, "not enough memory");
    w->uv->between = between;
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, open_luv);
    lua_setfield(L, -2, "luv");
    lua_pop(L, 1);
}

/* ---- closing at STOPPED ------------------------------------------------------ */

/* (package.loaded.luv may have gone with a refused version's rollback) */
static bool luv_opened(lsvc__worker *w)
{
    bool open = lua_rawgetp(w->L, LUA_REGISTRYINDEX, &luv_key) != LUA_TNIL;
    lua_pop(w->L, 1);
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

static unsigned signal_children(lsvc__worker *w, int sig)
{
    kill_arg k = {sig, 0};
    uv_walk(&w->loop, kill_cb, &k);
    return k.live;
}

/* handle:close() for the handle (luv's userdata) on top of the stack,
 * popped: luv's own close callback frees what it holds. */
static void close_top(lsvc__worker *w, const char *what)
{
    lua_getfield(w->L, -1, "close");
    lua_insert(w->L, -2);
    lsvc__uvlua_pcall(w, 1, 0, what);
}

static uv_handle_t *handle_at(lua_State *L, int idx)
{
    uv_handle_t **ud = lua_touserdata(L, idx);
    return ud ? *ud : NULL;
}

/* handle:close() for each of the script's handles; processes only once
 * reaped unless all. */
static void close_handles(lsvc__worker *w, bool processes_too)
{
    lua_State *L = w->L;
    push_handles(w, L);
    int list = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        uv_handle_t *h = handle_at(L, -1);
        if (!h || uv_is_closing(h) ||
            (h->type == UV_PROCESS && uv_is_active(h) && !processes_too)) {
            lua_pop(L, 1);
            continue;
        }
        close_top(w, "closing a handle at stop");
    }
    lua_settop(L, list - 1);
}

static void on_grace(uv_timer_t *t) { (void)t; /* wakes the loop */ }

/* sig (0: none) to the whole process tree (ptree.c) and to the script's
 * uv.spawn children (their handles: libuv reaps them); whether any lives. */
static bool signal_tree(lsvc__worker *w, int sig)
{
    unsigned handles = signal_children(w, sig);
    return lsvc__ptree_signal(w, sig) + handles > 0;
}

/* Run the loop until nothing of the tree is left (the uv.spawn children
 * reaped), or ms; the tree is looked at every POLL_MS (a grandchild's exit
 * wakes nothing), and sent sig (0: none) each time: SIGKILL again reaches
 * what a fork that raced the first made (without a freezer). */
static void wait_children(lsvc__worker *w, uv_timer_t *timer, uint32_t ms, int sig)
{
    uint64_t due = lsvc_now_ns() + (uint64_t)ms * 1000000u;
    uv_update_time(&w->loop);
    uv_timer_start(timer, on_grace, POLL_MS, POLL_MS);
    while (signal_tree(w, sig) && lsvc_now_ns() < due && !lsvc_service_interrupted(w->svc))
        uv_run(&w->loop, UV_RUN_ONCE);
    uv_timer_stop(timer);
}

/* The stop's end of the tree: SIGTERM to all of it, SIGKILL to what is
 * left after grace_ms, everything reaped (within KILL_WAIT_MS more). */
static void end_tree(lsvc__worker *w, uint32_t grace_ms)
{
    if (!signal_tree(w, SIGTERM))
        return;
    uv_timer_t *timer = &w->uv->grace_timer;
    uv_timer_init(&w->loop, timer);
    timer->data = NULL; /* the runtime's own */
    w->uv->grace_timer_init = true;
    wait_children(w, timer, grace_ms, 0);
    if (signal_tree(w, 0)) {
        lsvc__ptree_kill(w);
        signal_children(w, SIGKILL);
        lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(w->svc),
                 "a child did not exit within %u ms of SIGTERM: killed", grace_ms);
        wait_children(w, timer, KILL_WAIT_MS, SIGKILL);
    }
    uv_close((uv_handle_t *)timer, NULL);
}

void lsvc__uvlua_close_all(lsvc__worker *w, uint32_t grace_ms)
{
    if (w->uv->reap_timer_init) {
        uv_close((uv_handle_t *)&w->uv->reap_timer, NULL);
        w->uv->reap_timer_init = false;
    }
    bool luv = luv_opened(w);
    if (luv)
        close_handles(w, false);
    end_tree(w, grace_ms);
    lsvc__ptree_ended(w);
    lsvc__spawn_ended(w);
    if (luv)
        close_handles(w, true);
}

/* A luv handle left open after the state closed (a __gc finalizer opened
 * it during the close, when Lua registers no more finalizers): its memory
 * is luv's (malloc), freed here as luv's own close would, without Lua. */
static void free_orphan(uv_handle_t *h)
{
    luv_handle_t *d = h->data;
    if (d) {
        if (d->extra_gc)
            d->extra_gc(d->extra);
        free(d);
    }
    free(h);
}

static void close_orphan(uv_handle_t *h, void *arg)
{
    unsigned *n = arg;
    if (uv_is_closing(h))
        return;
    (*n)++;
    uv_close(h, h->data ? free_orphan : NULL);
}

unsigned lsvc__uvlua_close_orphans(lsvc__worker *w)
{
    unsigned n = 0;
    uv_walk(&w->loop, close_orphan, &n);
    return n;
}

void lsvc__uvlua_free(lsvc__worker *w)
{
    free(w->uv); /* its timers closed, and the loop ran their close */
    w->uv = NULL;
}

/* ---- a refused version's handles ---------------------------------------------- */

void lsvc__uvlua_mark(lsvc__worker *w)
{
    lua_State *L = w->L;
    push_handles(w, L);
    lua_newtable(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -2);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, i);
        lua_pushboolean(L, 1);
        lua_rawset(L, -3);
    }
    lua_remove(L, -2);
}

void lsvc__uvlua_opened_since(lsvc__worker *w, int mark)
{
    lua_State *L = w->L;
    mark = lua_absindex(L, mark);
    push_handles(w, L);
    lua_newtable(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, -2), k = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, i);
        if (lua_rawget(L, mark) == LUA_TNIL) {
            lua_rawgeti(L, -3, i);
            lua_rawseti(L, -3, ++k);
        }
        lua_pop(L, 1);
    }
    lua_replace(L, mark);
    lua_pop(L, 1);
}

/* A refused version's child exited (libuv reaped it): its handle closes. */
static void refused_exit(uv_process_t *p, int64_t status, int sig)
{
    (void)status;
    (void)sig;
    lsvc__worker *w = p->loop->data;
    luv_handle_t *d = p->data;
    if (uv_is_closing((uv_handle_t *)p) || !d || d->ref == LUA_NOREF)
        return;
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, d->ref);
    close_top(w, "closing a refused version's handle");
}

static void kill_refused(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (h->type == UV_PROCESS && h->data && uv_is_active(h) &&
        ((uv_process_t *)h)->exit_cb == refused_exit)
        uv_process_kill((uv_process_t *)h, SIGKILL);
}

static void on_reap_timer(uv_timer_t *t)
{
    lsvc__worker *w = t->loop->data;
    uv_walk(&w->loop, kill_refused, NULL);
}

void lsvc__uvlua_close_refused(lsvc__worker *w, int list, uint32_t grace_ms)
{
    lua_State *L = w->L;
    /* a close is a call into the script's luv: a control waiting is not
     * delivered from inside it (the reload being refused is half undone) */
    w->uv->closing_refused = true;
    list = lua_absindex(L, list);
    bool children = false;
    lua_Integer n = (lua_Integer)lua_rawlen(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, list, i);
        uv_handle_t *h = handle_at(L, -1);
        luv_handle_t *d = h ? h->data : NULL;
        if (!d || uv_is_closing(h)) {
            lua_pop(L, 1);
            continue;
        }
        for (int c = 0; c < 2; c++) { /* none of the refused version's code runs again */
            luaL_unref(L, LUA_REGISTRYINDEX, d->callbacks[c]);
            d->callbacks[c] = LUA_NOREF;
        }
        if (h->type == UV_PROCESS && uv_is_active(h)) {
            ((uv_process_t *)h)->exit_cb = refused_exit; /* closed once reaped */
            uv_process_kill((uv_process_t *)h, SIGTERM);
            children = true;
            lua_pop(L, 1);
            continue;
        }
        close_top(w, "closing a refused version's handle");
    }
    w->uv->closing_refused = false;
    if (!children)
        return;
    if (!w->uv->reap_timer_init) {
        uv_timer_init(&w->loop, &w->uv->reap_timer);
        w->uv->reap_timer.data = NULL; /* the runtime's own */
        w->uv->reap_timer_init = true;
    }
    uv_update_time(&w->loop);
    uv_timer_start(&w->uv->reap_timer, on_reap_timer, grace_ms, 0); /* then SIGKILL */
}
