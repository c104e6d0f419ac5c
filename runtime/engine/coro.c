/*
 * coro.c - where the engine meets running Lua: the interrupt hook, the
 * slice hook of sliced kinds (a new version's top level), and the
 * coroutine library's resume, wrap and close, xpcall and debug.sethook
 * made aware of both. Worker thread only, except hook_running, which the
 * watchdog makes run on this thread (interrupt.c).
 *
 * The interrupt hook costs nothing until a deadline passes: the watchdog
 * sets the interrupt flag and has this thread hook the Lua state running
 * now (`running`); the hook raises on every line and instruction while
 * the flag is set, so a script's pcall cannot swallow it, and removes
 * itself once the flag is clear. The coroutine resume/wrap here hook the
 * resumer again when the error comes out of a coroutine.
 *
 * A sliced kind's coroutine carries a count hook from its start (Redis's
 * luaEngineLoadHook beside its luaMaskCountHook: loading and running are
 * cut for different reasons): every SLICE_COUNT instructions it looks
 * whether the task's slice (LSVC__SLICE_NS) is over or a control waits,
 * and then yields the task to the loop where a yield gets there (the
 * script's own Lua, also inside its coroutines; not inside a C call such
 * as require, nor in the runtime's own Lua: the loader's snapshots stay
 * whole). A wait yields the same way (task.c); coro.c's resume passes
 * either up through the script's coroutines.
 *
 * debug.sethook: the runtime's hook wins. While an interrupt is due,
 * debug.sethook does nothing (a script cannot switch the interrupt off);
 * otherwise it works as documented, and a hook a script set is replaced
 * (not restored) when an interrupt comes.
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h"

/* ThreadSanitizer delivers signals only at intercepted calls, so a Lua
 * loop would never see the watchdog's signal: TSan builds keep a
 * permanent count hook that looks at the flag every HOOK_COUNT
 * instructions (and run Lua about twice as slowly for it). */
#if defined(__SANITIZE_THREAD__)
#define PERMANENT_HOOK 1
#else
#define PERMANENT_HOOK 0
#endif
#define HOOK_COUNT 1000
#define SLICE_COUNT 1000 /* a sliced task looks at its slice this often */
#define INTERRUPT_MASK (LUA_MASKCOUNT | LUA_MASKLINE)

static char sethook_key; /* registry: the debug library's own sethook */
static char xpcall_key;  /* registry: the base library's own xpcall */

bool lsvc__is_task(lua_State *L, int idx); /* task.c */

/* ---- the hook ----------------------------------------------------------- */

/* Whether the function running is the runtime's own Lua (loader.lua,
 * contract.lua): its chunk names "=[luasvc ...]", or "=?" once stripped
 * (luac -s keeps no source name). A script's own code comes from files
 * ("@path") or its own load() calls; a stripped chunk of the script's own
 * only counts as the runtime's here, which is never unsafe. */
static bool runtime_code(const char *source)
{
    return strcmp(source, "=?") == 0 || strncmp(source, "=[luasvc ", 9) == 0;
}

/* Is the running sliced task's slice over (or a control waiting)? */
static bool slice_over(lsvc__worker *w)
{
    return lsvc_now_ns() - lsvc__resumed_ns(w) >= LSVC__SLICE_NS ||
           lsvc_queue_pending(lsvc_service_queue(w->svc));
}

static void hook(lua_State *L, lua_Debug *ar)
{
    lsvc__worker *w = lsvc__of(L);
    if (lsvc_service_interrupted(w->svc)) {
        /* Re-arm on every line and instruction: when the script's own pcall
         * catches this, the next instruction raises it again. */
        lua_sethook(L, hook, INTERRUPT_MASK, 1);
        luaL_error(L, "interrupted by the luasvc watchdog: a deadline passed");
    }
    lsvc__task *t = lsvc__current(w);
    if (t && t->kind->sliced) {
        if (slice_over(w) && lsvc__chain_ok(w) && lua_isyieldable(L) &&
            (ar->event == LUA_HOOKCOUNT || ar->event == LUA_HOOKLINE) && lua_getinfo(L, "S", ar) &&
            !runtime_code(ar->source)) {
            lua_sethook(L, hook, LUA_MASKCOUNT, SLICE_COUNT);
            t->wait = LSVC__WAIT_TURN; /* the next turn goes on with it */
            lsvc__task_ready(t);
            lsvc__set_suspending(w);
            lua_yield(L, 0); /* a hook's yield: the hook returns, then L yields */
            return;
        }
        if (lua_gethookmask(L) != LUA_MASKCOUNT || lua_gethookcount(L) != SLICE_COUNT)
            lua_sethook(L, hook, LUA_MASKCOUNT, SLICE_COUNT);
        return;
    }
#if PERMANENT_HOOK
    if (ar->event == LUA_HOOKLINE || lua_gethookcount(L) != HOOK_COUNT)
        lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT);
#else
    (void)ar;
    lua_sethook(L, NULL, 0, 0); /* the interrupt was answered */
#endif
}

/* interrupt.c's function for this worker: on this thread, in a signal
 * handler on POSIX (lua_sethook is async-signal-safe), or while this
 * thread is suspended on Windows. */
static void hook_running(void *ud)
{
    lsvc__worker *w = ud;
    lua_State *L = lsvc__running(w);
    if (L)
        lua_sethook(L, hook, INTERRUPT_MASK, 1);
}

void lsvc__coro_slice(lua_State *co) { lua_sethook(co, hook, LUA_MASKCOUNT, SLICE_COUNT); }

void lsvc__coro_adopt_hook(lsvc__worker *w, lua_State *co)
{
    lua_Hook h = lua_gethook(co);
    if (!h || h == hook)
        return; /* none, or the runtime's */
    /* the debug library's (its function is kept per thread): for L too */
    lua_State *L = w->L;
    int top = lua_gettop(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "debug") == LUA_TTABLE &&
        lua_getfield(L, -1, "gethook") == LUA_TFUNCTION) {
        lua_pushthread(co);
        lua_xmove(co, L, 1);
        if (lua_pcall(L, 1, 3, 0) == LUA_OK && lua_isfunction(L, -3)) {
            lua_rawgetp(L, LUA_REGISTRYINDEX, &sethook_key);
            lua_pushthread(L);
            lua_rotate(L, -5, 2); /* sethook, L, f, mask, count */
            if (lua_pcall(L, 4, 0, 0) != LUA_OK)
                lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
}

void lsvc__coro_rehook(lsvc__worker *w, lua_State *L)
{
    if (lsvc_service_interrupted(w->svc))
        lua_sethook(L, hook, INTERRUPT_MASK, 1);
}

/* ---- the coroutine library, aware of waits and slices -------------------- */

static int resume_k(lua_State *L, int status, lua_KContext wrap);

/* Resume co from L with narg values from L's stack, as lcorolib does;
 * a wait (or a slice's end) inside co yields L up to the scheduler and
 * comes back here. */
static int resume_step(lua_State *L, lua_State *co, int narg, bool wrap)
{
    lsvc__worker *w = lsvc__of(L);
    if (!lua_checkstack(co, narg))
        return luaL_error(L, "too many arguments to resume");
    lua_xmove(L, co, narg);
    lua_State *prev = lsvc__running_swap(w, co);
    bool prev_ok = lsvc__chain_swap(w, lsvc__chain_ok(w) && lua_isyieldable(L));
    int nres = 0;
    int rc = lua_resume(co, L, narg, &nres);
    lsvc__running_swap(w, prev);
    lsvc__chain_swap(w, prev_ok);
    lsvc__coro_rehook(w, L);
    if (rc == LUA_YIELD && lsvc__suspending(w)) {
        lua_pop(co, nres); /* a wait inside co: the task waits */
        return lua_yieldk(L, 0, wrap, resume_k);
    }
    if (rc == LUA_OK || rc == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            return luaL_error(L, "too many results to resume");
        }
        lua_xmove(co, L, nres);
        if (wrap)
            return nres;
        lua_pushboolean(L, 1);
        lua_insert(L, -(nres + 1));
        return nres + 1;
    }
    if (!wrap) {
        lua_xmove(co, L, 1);
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    int st = lua_resetthread(co); /* close its to-be-closed variables */
    lua_xmove(co, L, 1);
    if (st != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

static int resume_k(lua_State *L, int status, lua_KContext wrap)
{
    (void)status;
    lua_State *co = wrap ? lua_tothread(L, lua_upvalueindex(1)) : lua_tothread(L, 1);
    lua_settop(L, wrap ? 0 : 1);
    return resume_step(L, co, 0, wrap);
}

static int co_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    if (lsvc__is_task(L, 1)) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "coroutine.resume: cannot resume a task of the runtime's (run, a "
                           "handler, a ctx:spawn task): the scheduler resumes it");
        return 2;
    }
    return resume_step(L, co, lua_gettop(L) - 1, false);
}

/* coroutine.close, except on the runtime's tasks. */
static int co_close(lua_State *L)
{
    luaL_argexpected(L, lua_tothread(L, 1), 1, "coroutine");
    if (lsvc__is_task(L, 1))
        return luaL_error(L, "coroutine.close: cannot close a task of the runtime's (run, a "
                             "handler, a ctx:spawn task); return from it instead");
    return lsvc__call_wrapped(L);
}

static int co_wrapped(lua_State *L)
{
    return resume_step(L, lua_tothread(L, lua_upvalueindex(1)), lua_gettop(L), true);
}

static int co_wrap(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_pushcclosure(L, co_wrapped, 1);
    return 1;
}

/* ---- debug.sethook, xpcall ------------------------------------------------ */

/* debug.sethook, except while an interrupt is due (see the top). */
static int dbg_sethook(lua_State *L)
{
    if (lsvc_service_interrupted(lsvc__service(L)))
        return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &sethook_key); /* not an upvalue: out of reach */
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 0);
    return 0;
}

/* A script's message handler, unless an interrupt is due: Lua calls a
 * message handler with hooks off when the error came from a hook, so a
 * handler that loops would never be interrupted. Upvalue 1: the script's. */
static int msgh_guard(lua_State *L)
{
    if (lsvc_service_interrupted(lsvc__service(L)))
        return 1; /* the interrupt's error, as it is */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int xpcall_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L);
}

/* xpcall(f, msgh, ...) with msgh behind msgh_guard; yields pass through. */
static int safe_xpcall(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, msgh_guard, 1);
    lua_replace(L, 2);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &xpcall_key);
    lua_insert(L, 1);
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, xpcall_k);
    return xpcall_k(L, LUA_OK, 0);
}

void lsvc__coro_open(lsvc__worker *w)
{
    lua_State *L = w->L;
    lsvc_service_bind_irq(w->svc, hook_running, w);
#if PERMANENT_HOOK
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT); /* inherited by every coroutine */
#endif
    lua_getglobal(L, "coroutine");
    lua_pushcfunction(L, co_resume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, co_wrap);
    lua_setfield(L, -2, "wrap");
    lua_getfield(L, -1, "close");
    lua_pushcclosure(L, co_close, 1);
    lua_setfield(L, -2, "close");
    lua_pop(L, 1);
    lua_getglobal(L, "xpcall");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &xpcall_key);
    lua_pushcfunction(L, safe_xpcall);
    lua_setglobal(L, "xpcall");
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "sethook");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &sethook_key);
    lua_pushcfunction(L, dbg_sethook);
    lua_setfield(L, -2, "sethook");
    lua_pop(L, 1);
}
