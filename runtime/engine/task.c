/*
 * task.c - the coroutines the scheduler owns (start/run/stop, a control
 * handler, ctx:spawn's tasks), their waits, and the interrupt hook.
 * Worker thread only (the lua_State's owner), except hook_running, which
 * the watchdog makes run on this thread (interrupt.c).
 *
 * A wait (ctx:sleep, a queue's get, ctx:await) suspends the task: it
 * yields up to the scheduler, also from inside a coroutine of the script's
 * own (the coroutine library's resume and wrap here pass such a yield up
 * and resume the inner coroutine when the task is woken). A timer or a
 * push makes the task ready; the scheduler resumes it at its next turn.
 * A wait cannot be made where no yield can reach the scheduler (a luv
 * callback, a metamethod, a C function's callback): it raises there.
 *
 * The interrupt hook costs nothing until a deadline passes: the watchdog
 * sets the interrupt flag and has this thread hook the Lua state running
 * now (`w->running`); the hook raises on every line and instruction while
 * the flag is set, so a script's pcall cannot swallow it, and removes
 * itself once the flag is clear. The coroutine resume/wrap here hook the
 * resumer again when the error comes out of a coroutine.
 *
 * debug.sethook: the runtime's hook wins. While an interrupt is due,
 * debug.sethook does nothing (a script cannot switch the interrupt off);
 * otherwise it works as documented, and a hook a script set is replaced
 * (not restored) when an interrupt comes. Scripts keep their hooks for
 * profiling or coverage; a finalizer (which runs without hooks) that
 * clears the hook is answered by the watchdog hooking the thread again.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "worker.h"

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
#define LOAD_COUNT 1000 /* a loading top level looks for controls this often */
#define INTERRUPT_MASK (LUA_MASKCOUNT | LUA_MASKLINE)

#define QUEUE_MT "luasvc.Queue"

static char tasks_key;   /* registry: the tasks' coroutines (weak keys) */
static char sethook_key; /* registry: the debug library's own sethook */
static char xpcall_key;  /* registry: the base library's own xpcall */

#define container_of(p, type, field) ((type *)((char *)(p)-offsetof(type, field)))

/* ---- the interrupt hook ------------------------------------------------ */

/* Whether the function running is the runtime's own Lua (loader.lua,
 * contract.lua): its chunk names "=[luasvc ...]", or "=?" once stripped
 * (luac -s keeps no source name). A script's own code comes from files
 * ("@path") or its own load() calls; a stripped chunk of the script's own
 * only counts as the runtime's here, which is never unsafe. */
static bool runtime_code(const char *source)
{
    return strcmp(source, "=?") == 0 || strncmp(source, "=[luasvc ", 9) == 0;
}

static void hook(lua_State *L, lua_Debug *ar)
{
    lsvc_worker *w = lsvc_worker_of(L);
    if (lsvc_service_interrupted(w->svc)) {
        /* Re-arm on every line and instruction: when the script's own pcall
         * catches this, the next instruction raises it again. */
        lua_sethook(L, hook, INTERRUPT_MASK, 1);
        luaL_error(L, "interrupted by the luasvc watchdog: a deadline passed");
    }
    if (w->load_running) {
        /* a new version's top level: a control waits, the load pauses
         * (through the script's own coroutines, as a wait does), in the
         * script's code (the loader's own keeps its snapshots whole) */
        if (lsvc_queue_pending(lsvc_service_queue(w->svc)) && w->chain_ok && lua_isyieldable(L) &&
            (ar->event == LUA_HOOKCOUNT || ar->event == LUA_HOOKLINE) && lua_getinfo(L, "S", ar) &&
            !runtime_code(ar->source)) {
            lua_sethook(L, hook, LUA_MASKCOUNT, LOAD_COUNT);
            w->suspending = true;
            lua_yield(L, 0); /* a hook's yield: the hook returns, then L yields */
            return;
        }
        if (lua_gethookmask(L) != LUA_MASKCOUNT || lua_gethookcount(L) != LOAD_COUNT)
            lua_sethook(L, hook, LUA_MASKCOUNT, LOAD_COUNT);
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
    lsvc_worker *w = ud;
    lua_State *L = w->running;
    if (L)
        lua_sethook(L, hook, INTERRUPT_MASK, 1);
}

void lsvc_task_slice_load(lua_State *co) { lua_sethook(co, hook, LUA_MASKCOUNT, LOAD_COUNT); }

void lsvc_task_adopt_hook(lsvc_worker *w, lua_State *co)
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

/* After a coroutine returned into L with the flag set: the error goes on
 * in L, which the signal did not hook. */
static void rehook(lsvc_worker *w, lua_State *L)
{
    if (lsvc_service_interrupted(w->svc))
        lua_sethook(L, hook, INTERRUPT_MASK, 1);
}

/* ---- the ready list ------------------------------------------------------ */

static void ready_push(lsvc_task *t)
{
    lsvc_worker *w = t->w;
    if (t->queued)
        return;
    t->queued = true;
    t->ready_turn = w->turn;
    t->rnext = NULL;
    t->rprev = w->ready_tail;
    if (w->ready_tail)
        w->ready_tail->rnext = t;
    else
        w->ready_head = t;
    w->ready_tail = t;
    /* Made ready by a callback inside uv_run (a task's timer, a luv
     * callback's push): the loop must not block in its poll now. libuv
     * (1.44, and on Windows) runs due timers before it polls, then polls
     * with the next timer's timeout, or none: uv_stop makes that poll
     * not wait, and uv_run return after it. */
    if (w->in_loop)
        uv_stop(&w->loop);
}

static void ready_remove(lsvc_task *t)
{
    lsvc_worker *w = t->w;
    if (!t->queued)
        return;
    if (t->rprev)
        t->rprev->rnext = t->rnext;
    else
        w->ready_head = t->rnext;
    if (t->rnext)
        t->rnext->rprev = t->rprev;
    else
        w->ready_tail = t->rprev;
    t->queued = false;
    t->rprev = t->rnext = NULL;
}

lsvc_task *lsvc_task_pop_ready(lsvc_worker *w)
{
    lsvc_task *t = w->ready_head;
    if (!t || t->ready_turn >= w->turn)
        return NULL; /* made ready in this turn: the next one runs it */
    ready_remove(t);
    return t;
}

/* ---- descriptor waits ---------------------------------------------------------- */

/* A uv_poll_t for one wait, freed once closed (a handle's memory must
 * outlive its close). data NULL: the runtime's own, not luv's. */
struct lsvc_fdwait {
    uv_poll_t h;
    lsvc_task *t;
};

static void free_fdwait(uv_handle_t *h) { free((struct lsvc_fdwait *)h); }

static void fdwait_done(lsvc_task *t)
{
    if (!t->fdwait)
        return;
    uv_close((uv_handle_t *)&t->fdwait->h, free_fdwait);
    t->fdwait = NULL;
}

/* ---- queues: the C side ---------------------------------------------------- */

struct lsvc_waitq {
    lsvc_task *waiter;
    lua_Integer head, tail; /* items in the user value, [head, tail) */
};

/* ---- tasks ----------------------------------------------------------------- */

lsvc_task *lsvc_task_new(lsvc_worker *w, lua_State *from, lsvc_task_kind kind, int nargs,
                         const char *what)
{
    lsvc_task *t = calloc(1, sizeof *t);
    if (!t)
        luaL_error(from, "not enough memory");
    lua_State *co = lua_newthread(from);
    lua_rawgetp(from, LUA_REGISTRYINDEX, &tasks_key); /* the script cannot resume or close it */
    lua_pushvalue(from, -2);
    lua_pushboolean(from, 1);
    lua_rawset(from, -3);
    lua_pop(from, 1);
    t->ref = luaL_ref(from, LUA_REGISTRYINDEX);
    lua_xmove(from, co, nargs + 1);
    t->w = w;
    t->co = co;
    t->kind = kind;
    t->winds_down = true;
    snprintf(t->what, sizeof t->what, "%s", what);
    t->next = w->tasks;
    if (w->tasks)
        w->tasks->prev = t;
    w->tasks = t;
    w->ntasks++;
    ready_push(t);
    return t;
}

static void free_task(uv_handle_t *h) { free(container_of((uv_timer_t *)h, lsvc_task, timer)); }

void lsvc_task_end(lsvc_task *t)
{
    lsvc_worker *w = t->w;
    ready_remove(t);
    if (t->waiting_on) {
        t->waiting_on->waiter = NULL;
        t->waiting_on = NULL;
    }
    fdwait_done(t);
    if (t->prev)
        t->prev->next = t->next;
    else
        w->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    w->ntasks--;
    if (w->main == t)
        w->main = NULL;
    if (w->handler == t)
        w->handler = NULL;
    if (w->current == t)
        w->current = NULL;
    /* its to-be-closed variables are closed (Lua runs for them) */
    lua_State *prev = w->running;
    w->running = t->co;
    lua_resetthread(t->co);
    w->running = prev;
    luaL_unref(w->L, LUA_REGISTRYINDEX, t->ref);
    if (t->timer_init)
        uv_close((uv_handle_t *)&t->timer, free_task);
    else
        free(t);
}

void lsvc_task_end_all(lsvc_worker *w)
{
    while (w->tasks)
        lsvc_task_end(w->tasks);
}

static void record_latency(lsvc_worker *w, const lsvc_event *ev)
{
    lsvc_service_count_delivery(w->svc, ev->arrived_ns);
}

/* A spawned task's resume ran past handler_timeout: it ends (err: its
 * error with the traceback, or NULL when it returned or yielded anyway). */
static void log_overran(lsvc_worker *w, const lsvc_task *t, const char *err)
{
    lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
             "%s ran past handler_timeout (%u ms) without yielding: interrupted; it ends%s%s",
             t->what, w->handler_timeout_ms, err ? ": " : "", err ? err : "");
}

lsvc_task_result lsvc_task_resume(lsvc_task *t)
{
    lsvc_worker *w = t->w;
    if (lua_status(t->co) == LUA_OK && lua_gettop(t->co) == 0) {
        /* dead: a task always has its function until it ends (a defect if seen) */
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc), "error in %s: its coroutine is dead",
                 t->what);
        return LSVC_TASK_FAILED;
    }
    int nargs = lua_status(t->co) == LUA_YIELD ? 0 : lua_gettop(t->co) - 1;
    ready_remove(t);
    t->wait = LSVC_WAIT_NONE;
    t->held = false;
    if (t == w->handler && w->handler_fresh) {
        w->handler_fresh = false;
        if (w->handler_ev.code)
            record_latency(w, &w->handler_ev);
    }
    w->current = t;
    w->running = t->co;
    w->chain_ok = true;
    w->suspending = false;
    int nres = 0;
    bool slice = t->kind == LSVC_TASK_SPAWNED; /* handlers have their own deadline */
    if (slice)
        lsvc_service_slice_begin(w->svc);
    int rc = lua_resume(t->co, w->L, nargs, &nres);
    bool overran = slice && lsvc_service_slice_end(w->svc);
    w->running = NULL;
    w->current = NULL;
    if (overran && (rc == LUA_OK || rc == LUA_YIELD)) {
        /* it ran past handler_timeout and yet returned or yielded: it ends */
        log_overran(w, t, NULL);
        if (rc == LUA_YIELD)
            lua_pop(t->co, nres);
        w->suspending = false; /* its wait is not taken up */
        return LSVC_TASK_FAILED;
    }
    if (rc == LUA_YIELD) {
        lua_pop(t->co, nres);
        if (!w->suspending) { /* a bare coroutine.yield(): again at the next turn */
            t->wait = LSVC_WAIT_TURN;
            ready_push(t);
        }
        w->suspending = false;
        return LSVC_TASK_YIELDED;
    }
    if (rc == LUA_OK)
        return LSVC_TASK_DONE;
    lua_State *L = w->L;
    lua_xmove(t->co, L, 1); /* the error object: its text is taken on L (co is dead) */
    if (lsvc_worker_is_exit(L, -1)) {
        lua_pop(L, 1);
        return LSVC_TASK_DONE; /* os.exit: the service stops, as ctx:exit */
    }
    const char *msg = lsvc_worker_error_text(L, -1);
    luaL_traceback(L, t->co, msg, 0);
    if (overran)
        log_overran(w, t, lua_tostring(L, -1));
    else
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc), "error in %s: %s", t->what,
                 lua_tostring(L, -1));
    lua_pop(L, 3);
    return LSVC_TASK_FAILED;
}

void lsvc_task_wake(lsvc_task *t, lsvc_woke woke)
{
    if (t->timer_init)
        uv_timer_stop(&t->timer);
    if (t->waiting_on) {
        t->waiting_on->waiter = NULL;
        t->waiting_on = NULL;
    }
    fdwait_done(t);
    t->woke = woke;
    t->held = false;
    ready_push(t);
}

bool lsvc_task_must_wind(const lsvc_task *t)
{
    lsvc_worker *w = t->w;
    if (!t->winds_down)
        return false;
    if (t == w->main && w->reload_phase == LSVC_RELOAD_WINDING)
        return true;
    return lsvc_service_stopping(w->svc);
}

static bool waiting(const lsvc_task *t)
{
    return (t->wait == LSVC_WAIT_SLEEP || t->wait == LSVC_WAIT_QUEUE || t->wait == LSVC_WAIT_FD) &&
           !t->queued;
}

void lsvc_task_wind_all(lsvc_worker *w)
{
    for (lsvc_task *t = w->tasks; t; t = t->next)
        if (waiting(t) && lsvc_task_must_wind(t))
            lsvc_task_wake(t, LSVC_WOKE_STOPPING);
}

void lsvc_task_unhold(lsvc_worker *w)
{
    if (w->main && w->main->held)
        lsvc_task_wake(w->main, LSVC_WOKE_OK);
}

/* Only run's own sleep holds while PAUSED. */
static bool held_by_pause(const lsvc_task *t)
{
    lsvc_worker *w = t->w;
    return t == w->main && w->phase == LSVC_PHASE_RUN && w->paused && !lsvc_task_must_wind(t);
}

static void on_timer(uv_timer_t *tm)
{
    lsvc_task *t = container_of(tm, lsvc_task, timer);
    uint64_t now = lsvc_now_ns();
    if (now < t->due_ns) { /* the loop's clock is coarser: never end a wait early */
        uv_timer_start(tm, on_timer, (t->due_ns - now + 999999) / 1000000, 0);
        return;
    }
    if (t->wait == LSVC_WAIT_SLEEP && held_by_pause(t))
        t->held = true;
    else
        lsvc_task_wake(t, t->wait == LSVC_WAIT_SLEEP ? LSVC_WOKE_OK : LSVC_WOKE_TIMEOUT);
    /* LSVC_WAIT_FD: its continuation looks at the clock */
}

/* ---- waits ------------------------------------------------------------------- */

bool lsvc_task_can_wait(lua_State *L)
{
    lsvc_worker *w = lsvc_worker_of(L);
    return w->current && w->chain_ok && lua_isyieldable(L);
}

bool lsvc_task_must_return(lua_State *L)
{
    lsvc_worker *w = lsvc_worker_of(L);
    return (w->current && lsvc_task_must_wind(w->current)) || lsvc_service_interrupted(w->svc);
}

static void check_can_wait(lua_State *L, const char *what)
{
    if (!lsvc_task_can_wait(L))
        luaL_error(L,
                   "%s: cannot wait here: not in a task (run, a handler, ctx:spawn) but in a "
                   "luv callback, a metamethod or a C function's callback",
                   what);
}

/* Suspend the current task (L is its coroutine or one it resumed) until
 * woken; ms < 0: no timer. Continues with k. */
static int suspend_as(lua_State *L, lsvc_wait wait, double ms, lsvc_woke woke, lua_KContext kctx,
                      lua_KFunction k)
{
    lsvc_worker *w = lsvc_worker_of(L);
    lsvc_task *t = w->current;
    t->wait = wait;
    t->woke = woke;
    if (wait == LSVC_WAIT_TURN) {
        ready_push(t);
    } else if (ms >= 0) {
        if (!t->timer_init) {
            uv_timer_init(&w->loop, &t->timer);
            t->timer.data = NULL;
            t->timer_init = true;
        }
        t->due_ns = lsvc_now_ns() + (uint64_t)(ms * 1e6);
        uv_update_time(&w->loop);
        uv_timer_start(&t->timer, on_timer, (uint64_t)(ms + 0.999999), 0);
    }
    w->suspending = true;
    return lua_yieldk(L, 0, kctx, k); /* does not return here */
}

static int suspend(lua_State *L, lsvc_wait wait, double ms, lua_KContext kctx, lua_KFunction k)
{
    return suspend_as(L, wait, ms, LSVC_WOKE_OK, kctx, k);
}

int lsvc_task_yield_turn(lua_State *L, intptr_t kctx, int (*k)(lua_State *, int, intptr_t))
{
    return suspend(L, LSVC_WAIT_TURN, -1, kctx, k);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)status; /* an error: the continuation's read tells */
    (void)events;
    lsvc_task_wake(((struct lsvc_fdwait *)h)->t, LSVC_WOKE_OK);
}

int lsvc_task_wait_fd(lua_State *L, int fd, double ms, intptr_t kctx,
                      int (*k)(lua_State *, int, intptr_t))
{
    lsvc_worker *w = lsvc_worker_of(L);
    lsvc_task *t = w->current;
    if (lsvc_task_must_wind(t))
        return suspend_as(L, LSVC_WAIT_TURN, -1, LSVC_WOKE_STOPPING, kctx, k);
    struct lsvc_fdwait *p = malloc(sizeof *p);
    if (!p || uv_poll_init(&w->loop, &p->h, fd) != 0) {
        free(p);
        return suspend(L, LSVC_WAIT_TURN, -1, kctx, k); /* look again next turn */
    }
    p->h.data = NULL;
    p->t = t;
    t->fdwait = p;
    uv_poll_start(&p->h, UV_READABLE, on_readable);
    return suspend(L, LSVC_WAIT_FD, ms, kctx, k);
}

static lsvc_woke woke_of(lua_State *L)
{
    lsvc_worker *w = lsvc_worker_of(L);
    return w->current ? w->current->woke : LSVC_WOKE_STOPPING;
}

static int sleep_k(lua_State *L, int status, lua_KContext kctx)
{
    (void)status;
    (void)kctx;
    lua_pushboolean(L, woke_of(L) == LSVC_WOKE_OK);
    return 1;
}

/* ctx:sleep(ms) -> true after ms, false as soon as the task must wind down
 * (at once when it must already). Stack: [ctx, ms], checked by luamod.c. */
int lsvc_ctx_sleep(lua_State *L)
{
    double ms = lua_tonumber(L, 2);
    check_can_wait(L, "ctx:sleep");
    lsvc_task *t = lsvc_worker_of(L)->current;
    if (lsvc_task_must_wind(t)) /* false, after a turn: controls go on meanwhile */
        return suspend_as(L, LSVC_WAIT_TURN, -1, LSVC_WOKE_STOPPING, 0, sleep_k);
    if (ms <= 0)
        return suspend(L, LSVC_WAIT_TURN, -1, 0, sleep_k);
    return suspend(L, LSVC_WAIT_SLEEP, ms, 0, sleep_k);
}

/* ---- the coroutine library, aware of waits ------------------------------- */

static int resume_k(lua_State *L, int status, lua_KContext wrap);

/* Resume co from L with narg values from L's stack, as lcorolib does;
 * a wait inside co yields L up to the scheduler and comes back here. */
static int resume_step(lua_State *L, lua_State *co, int narg, bool wrap)
{
    lsvc_worker *w = lsvc_worker_of(L);
    if (!lua_checkstack(co, narg))
        return luaL_error(L, "too many arguments to resume");
    lua_xmove(L, co, narg);
    lua_State *prev = w->running;
    bool prev_ok = w->chain_ok;
    w->running = co;
    w->chain_ok = prev_ok && lua_isyieldable(L);
    int nres = 0;
    int rc = lua_resume(co, L, narg, &nres);
    w->running = prev;
    w->chain_ok = prev_ok;
    rehook(w, L);
    if (rc == LUA_YIELD && w->suspending) {
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

/* Is the value at idx the coroutine of one of the runtime's tasks (run, a
 * handler, a ctx:spawn task)? The scheduler alone resumes and ends them. */
static bool is_task(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key);
    lua_pushvalue(L, idx);
    bool is = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    return is;
}

static int co_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    if (is_task(L, 1)) {
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
    if (is_task(L, 1))
        return luaL_error(L, "coroutine.close: cannot close a task of the runtime's (run, a "
                             "handler, a ctx:spawn task); return from it instead");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
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

/* debug.sethook, except while an interrupt is due (see the top). */
static int dbg_sethook(lua_State *L)
{
    if (lsvc_service_interrupted(lsvc_worker_of(L)->svc))
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
    if (lsvc_service_interrupted(lsvc_worker_of(L)->svc))
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

void lsvc_task_open(lsvc_worker *w)
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
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &tasks_key);
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

/* ---- ctx:spawn ------------------------------------------------------------------- */

/* ctx:spawn(fn, ...) -> nothing; fn(...) runs as a task of its own. */
int lsvc_ctx_spawn(lua_State *L)
{
    lsvc_worker *w = lsvc_worker_of(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (w->phase >= LSVC_PHASE_CLOSE)
        return luaL_error(L, "ctx:spawn: the service has stopped");
    int nargs = lua_gettop(L) - 2;
    char what[40];
    snprintf(what, sizeof what, "task %u", ++w->spawned);
    lsvc_task *t = lsvc_task_new(w, L, LSVC_TASK_SPAWNED, nargs, what);
    t->winds_down = !lsvc_service_stopping(w->svc); /* stop's helpers wait as stop does */
    lua_settop(L, 1);
    return 0;
}

/* ---- queues ------------------------------------------------------------------------ */

static lsvc_waitq *check_queue(lua_State *L, int i) { return luaL_checkudata(L, i, QUEUE_MT); }

/* q(...): push the values; a task waiting in q:get takes them. Any code
 * of the service may push: a luv callback, a task, a handler. */
static int q_call(lua_State *L)
{
    lsvc_waitq *q = check_queue(L, 1);
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
        lsvc_task_wake(q->waiter, LSVC_WOKE_OK);
    return 0;
}

/* Pop the oldest item of the queue at index 1 onto the stack: true and
 * its values; returns how many. */
static int q_pop(lua_State *L, lsvc_waitq *q)
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
    lsvc_waitq *q = check_queue(L, 1);
    if (q->head < q->tail)
        return q_pop(L, q);
    lsvc_woke woke = resumed ? woke_of(L) : LSVC_WOKE_OK;
    if (woke != LSVC_WOKE_OK) {
        lua_pushnil(L);
        lua_pushstring(L, woke == LSVC_WOKE_TIMEOUT ? "timeout" : "stopping");
        return 2;
    }
    check_can_wait(L, "queue:get");
    lsvc_worker *w = lsvc_worker_of(L);
    lsvc_task *t = w->current;
    if (lsvc_task_must_wind(t)) {
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
    return suspend(L, LSVC_WAIT_QUEUE, ms, 0, q_get_k);
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
    lsvc_waitq *q = check_queue(L, 1);
    lua_pushinteger(L, q->tail - q->head);
    return 1;
}

static int q_gc(lua_State *L)
{
    lsvc_waitq *q = check_queue(L, 1);
    if (q->waiter) {
        q->waiter->waiting_on = NULL;
        q->waiter = NULL;
    }
    return 0;
}

static void push_queue(lua_State *L)
{
    lsvc_waitq *q = lua_newuserdatauv(L, sizeof *q, 1);
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
int lsvc_ctx_queue(lua_State *L)
{
    push_queue(L);
    return 1;
}

/* ctx:await(fn, ...) -> true, what fn's callback got | fn's own failure
 * (nil, message, name) | nil, "stopping". Calls fn(..., cb) and waits
 * until cb is called. */
int lsvc_ctx_await(lua_State *L)
{
    luaL_checkany(L, 2);
    check_can_wait(L, "ctx:await");
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
