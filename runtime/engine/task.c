/*
 * task.c - tasks (task.h): the coroutines the scheduler owns, their ready
 * list and their waits (ctx:sleep, a descriptor, a bare yield), and
 * ctx:spawn. Worker thread only (the lua_State's owner).
 *
 * A wait suspends the task: it yields up to the scheduler, also from
 * inside a coroutine of the script's own (coro.c passes such a yield up
 * and resumes the inner coroutine when the task is woken). A timer or a
 * push makes the task ready; the scheduler resumes it at its next turn.
 * A wait cannot be made where no yield can reach the scheduler (a luv
 * callback, a metamethod, a C function's callback), nor by a kind that
 * does not wait (a new version's top level): it raises there.
 *
 * PAUSED is a rule here, asked of the kind: a task whose kind holds at
 * PAUSED (run) is not resumed from any wait (any ctx:sleep, a queue, an
 * await, a descriptor, a bare yield) while the service is paused; it is
 * kept back with what its wait got, and goes on at CONTINUE or a stop.
 *
 * Timing, asked of the kind: a TIMED_SLICE kind's every resume is a
 * watchdog slice of handler_timeout (ctx:spawn); a TIMED_BUDGET kind's
 * resumes share its budget (a load's handler_timeout counts only its own
 * running time, whatever runs between its slices).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h"

static char tasks_key; /* registry: the tasks' coroutines (weak keys): coro.c asks */

#define container_of(p, type, field) ((type *)((char *)(p)-offsetof(type, field)))

/* ---- PAUSED -------------------------------------------------------------- */

static bool held_by_pause(const lsvc__task *t)
{
    lsvc__worker *w = t->w;
    return t->kind->pause_holds && w->tasks.paused && w->phase == LSVC__PHASE_RUN &&
           !lsvc__task_must_wind(t);
}

/* ---- the ready list ------------------------------------------------------ */

static void ready_push(lsvc__task *t)
{
    lsvc__worker *w = t->w;
    if (t->queued)
        return;
    if (held_by_pause(t)) {
        t->held = true; /* CONTINUE (or a stop) puts it on the list */
        return;
    }
    t->held = false;
    t->queued = true;
    t->ready_turn = w->sched.turn;
    t->rnext = NULL;
    t->rprev = w->tasks.ready_tail;
    if (w->tasks.ready_tail)
        w->tasks.ready_tail->rnext = t;
    else
        w->tasks.ready_head = t;
    w->tasks.ready_tail = t;
    /* Made ready by a callback inside uv_run (a task's timer, a luv
     * callback's push): the loop must not block in its poll now. libuv
     * (1.44, and on Windows) runs due timers before it polls, then polls
     * with the next timer's timeout, or none: uv_stop makes that poll
     * not wait, and uv_run return after it. */
    if (w->sched.in_loop)
        uv_stop(&w->loop);
}

static void ready_remove(lsvc__task *t)
{
    lsvc__worker *w = t->w;
    if (!t->queued)
        return;
    if (t->rprev)
        t->rprev->rnext = t->rnext;
    else
        w->tasks.ready_head = t->rnext;
    if (t->rnext)
        t->rnext->rprev = t->rprev;
    else
        w->tasks.ready_tail = t->rprev;
    t->queued = false;
    t->rprev = t->rnext = NULL;
}

void lsvc__task_ready(lsvc__task *t) { ready_push(t); }

lsvc__task *lsvc__task_pop_ready(lsvc__worker *w)
{
    lsvc__task *t = w->tasks.ready_head;
    if (!t || t->ready_turn >= w->sched.turn)
        return NULL; /* made ready in this turn: the next one runs it */
    ready_remove(t);
    return t;
}

bool lsvc__task_any_ready(lsvc__worker *w) { return w->tasks.ready_head != NULL; }

/* ---- descriptor waits ------------------------------------------------------ */

/* A uv_poll_t for one wait, freed once closed (a handle's memory must
 * outlive its close). data NULL: the runtime's own, not luv's. */
struct lsvc__fdwait {
    uv_poll_t h;
    lsvc__task *t;
};

static void free_fdwait(uv_handle_t *h) { free((struct lsvc__fdwait *)h); }

static void fdwait_done(lsvc__task *t)
{
    if (!t->fdwait)
        return;
    uv_close((uv_handle_t *)&t->fdwait->h, free_fdwait);
    t->fdwait = NULL;
}

static void unwait_queue(lsvc__task *t)
{
    if (t->waiting_on) {
        t->waiting_on->waiter = NULL;
        t->waiting_on = NULL;
    }
}

/* ---- tasks ----------------------------------------------------------------- */

lsvc__task *lsvc__task_new(lsvc__worker *w, lua_State *from, const lsvc__kind *kind, int nargs,
                           const char *what)
{
    lsvc__task *t = calloc(1, sizeof *t);
    if (!t)
        luaL_error(from, "not enough memory");
    lua_State *co = lua_newthread(from);
    lua_rawgetp(from, LUA_REGISTRYINDEX, &tasks_key); /* the script cannot resume or close it */
    if (lua_isnil(from, -1)) {
        lua_pop(from, 1);
        lua_newtable(from);
        lua_newtable(from);
        lua_pushliteral(from, "k");
        lua_setfield(from, -2, "__mode");
        lua_setmetatable(from, -2);
        lua_pushvalue(from, -1);
        lua_rawsetp(from, LUA_REGISTRYINDEX, &tasks_key);
    }
    lua_pushvalue(from, -2);
    lua_pushboolean(from, 1);
    lua_rawset(from, -3);
    lua_pop(from, 1);
    t->ref = luaL_ref(from, LUA_REGISTRYINDEX);
    lua_xmove(from, co, nargs + 1);
    t->w = w;
    t->co = co;
    t->kind = kind;
    t->done = kind->done;
    t->winds_down = kind->winds_down;
    t->epoch = w->tasks.epoch;
    snprintf(t->what, sizeof t->what, "%s", what);
    t->next = w->tasks.all;
    if (w->tasks.all)
        w->tasks.all->prev = t;
    w->tasks.all = t;
    w->tasks.n++;
    ready_push(t);
    return t;
}

bool lsvc__is_task(lua_State *L, int idx); /* coro.c asks */
bool lsvc__is_task(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        return false;
    }
    lua_pushvalue(L, idx);
    bool is = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 2);
    return is;
}

static void free_task(uv_handle_t *h) { free(container_of((uv_timer_t *)h, lsvc__task, timer)); }

void lsvc__task_end(lsvc__task *t)
{
    lsvc__worker *w = t->w;
    if (t->kind->ended)
        t->kind->ended(t);
    ready_remove(t);
    unwait_queue(t);
    fdwait_done(t);
    if (t->prev)
        t->prev->next = t->next;
    else
        w->tasks.all = t->next;
    if (t->next)
        t->next->prev = t->prev;
    w->tasks.n--;
    if (t->slot && *t->slot == t)
        *t->slot = NULL;
    if (w->tasks.current == t)
        w->tasks.current = NULL;
    /* its to-be-closed variables are closed (Lua runs for them) */
    lua_State *prev = w->tasks.running;
    w->tasks.running = t->co;
    lua_resetthread(t->co);
    w->tasks.running = prev;
    luaL_unref(w->L, LUA_REGISTRYINDEX, t->ref);
    if (t->timer_init)
        uv_close((uv_handle_t *)&t->timer, free_task);
    else
        free(t);
}

void lsvc__task_end_epoch(lsvc__worker *w, uint32_t epoch)
{
    for (lsvc__task *t = w->tasks.all, *next; t; t = next) {
        next = t->next;
        if (t->epoch == epoch)
            lsvc__task_end(t);
    }
}

void lsvc__task_end_all(lsvc__worker *w)
{
    while (w->tasks.all)
        lsvc__task_end(w->tasks.all);
}

/* A timed resume ran past its time: it ends (err: its error with the
 * traceback, or NULL when it returned or yielded anyway). */
static void log_overran(lsvc__worker *w, const lsvc__task *t, const char *err)
{
    if (t->kind->timing != LSVC__TIMED_SLICE)
        return; /* a budget's owner says it in its own words */
    lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
             "%s ran past handler_timeout (%u ms) without yielding: interrupted; it ends%s%s",
             t->what, w->handler_timeout_ms, err ? ": " : "", err ? err : "");
}

/* Begin t's timed resume; returns whether it is one. */
static bool time_begin(lsvc__task *t)
{
    lsvc__worker *w = t->w;
    switch (t->kind->timing) {
    case LSVC__TIMED_SLICE: lsvc_service_slice_begin(w->svc); return true;
    case LSVC__TIMED_BUDGET:
        lsvc_service_slice_begin_ns(w->svc, t->budget_ns ? t->budget_ns : 1);
        return true;
    default: return false;
    }
}

/* The error that ended t's coroutine (on co): logged, unless os.exit's. */
static lsvc__result failed(lsvc__task *t, bool overran)
{
    lsvc__worker *w = t->w;
    lua_State *L = w->L;
    lua_xmove(t->co, L, 1); /* the error object: its text is taken on L (co is dead) */
    if (lsvc__is_exit(L, -1)) {
        lua_pop(L, 1);
        return LSVC__TASK_DONE; /* os.exit: the service stops, as ctx:exit */
    }
    const char *msg = lsvc__error_text(L, -1);
    luaL_traceback(L, t->co, msg, 0);
    if (overran)
        log_overran(w, t, lua_tostring(L, -1));
    else if (t->kind->timing != LSVC__TIMED_BUDGET)
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc), "error in %s: %s", t->what,
                 lua_tostring(L, -1));
    if (t->kind->timing == LSVC__TIMED_BUDGET) { /* its owner reads it: left on co */
        lua_pop(L, 1);
        lua_xmove(L, t->co, 1);
        lua_pop(L, 1);
    } else {
        lua_pop(L, 3);
    }
    return overran ? LSVC__TASK_OVERRAN : LSVC__TASK_FAILED;
}

lsvc__result lsvc__task_resume(lsvc__task *t)
{
    lsvc__worker *w = t->w;
    if (lua_status(t->co) == LUA_OK && lua_gettop(t->co) == 0) {
        /* dead: a task always has its function until it ends (a defect if seen) */
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc), "error in %s: its coroutine is dead",
                 t->what);
        return LSVC__TASK_FAILED;
    }
    int nargs = lua_status(t->co) == LUA_YIELD ? 0 : lua_gettop(t->co) - 1;
    ready_remove(t);
    t->wait = LSVC__WAIT_NONE;
    t->held = false;
    w->tasks.current = t;
    w->tasks.running = t->co;
    w->tasks.chain_ok = true;
    w->tasks.suspending = false;
    /* the clock only where a slice or a budget reads it (not on every resume) */
    bool clocked = t->kind->sliced || t->kind->timing == LSVC__TIMED_BUDGET;
    uint64_t t0 = clocked ? lsvc_now_ns() : 0;
    w->tasks.resumed_ns = t0;
    int nres = 0;
    bool timed = time_begin(t);
    int rc = lua_resume(t->co, w->L, nargs, &nres);
    bool overran = timed && lsvc_service_slice_end(w->svc);
    w->tasks.running = NULL;
    w->tasks.current = NULL;
    if (t->kind->timing == LSVC__TIMED_BUDGET) {
        uint64_t used = lsvc_now_ns() - t0;
        t->budget_ns = used < t->budget_ns ? t->budget_ns - used : 0;
        overran = overran || (!t->budget_ns && rc == LUA_YIELD);
    }
    if (overran && (rc == LUA_OK || rc == LUA_YIELD)) {
        /* it ran past its time and yet returned or yielded: it ends */
        log_overran(w, t, NULL);
        lua_pop(t->co, nres);
        w->tasks.suspending = false; /* its wait is not taken up */
        return LSVC__TASK_OVERRAN;
    }
    if (rc == LUA_YIELD) {
        lua_pop(t->co, nres);
        if (!w->tasks.suspending) { /* a bare coroutine.yield(): again at the next turn */
            t->wait = LSVC__WAIT_TURN;
            ready_push(t);
        }
        w->tasks.suspending = false;
        return LSVC__TASK_YIELDED;
    }
    if (rc == LUA_OK)
        return LSVC__TASK_DONE;
    return failed(t, overran);
}

void lsvc__task_wake(lsvc__task *t, lsvc__woke woke)
{
    if (t->timer_init)
        uv_timer_stop(&t->timer);
    unwait_queue(t);
    fdwait_done(t);
    t->woke = woke;
    ready_push(t);
}

bool lsvc__task_must_wind(const lsvc__task *t)
{
    if (!t->winds_down)
        return false;
    return t->wind_asked || lsvc_service_stopping(t->w->svc);
}

static bool waiting(const lsvc__task *t)
{
    return (t->wait == LSVC__WAIT_SLEEP || t->wait == LSVC__WAIT_QUEUE ||
            t->wait == LSVC__WAIT_FD || t->held) &&
           !t->queued;
}

void lsvc__task_wind(lsvc__task *t)
{
    t->wind_asked = true;
    if (waiting(t))
        lsvc__task_wake(t, LSVC__WOKE_STOPPING);
}

void lsvc__task_wind_all(lsvc__worker *w)
{
    for (lsvc__task *t = w->tasks.all; t; t = t->next)
        if (waiting(t) && lsvc__task_must_wind(t))
            lsvc__task_wake(t, LSVC__WOKE_STOPPING);
}

void lsvc__task_set_paused(lsvc__worker *w, bool paused)
{
    w->tasks.paused = paused;
    if (paused)
        return;
    for (lsvc__task *t = w->tasks.all; t; t = t->next)
        if (t->held)
            ready_push(t);
}

void lsvc__task_own(lsvc__task *t, lsvc__task **slot)
{
    *slot = t;
    t->slot = slot;
}

void lsvc__task_main(lsvc__task *t) { lsvc__task_own(t, &t->w->tasks.main); }

lsvc__task *lsvc__task_of_victim(lsvc__worker *w, lsvc__victim victim)
{
    for (lsvc__task *t = w->tasks.all; t; t = t->next)
        if (t->kind->victim == victim)
            return t;
    return NULL;
}

static void on_timer(uv_timer_t *tm)
{
    lsvc__task *t = container_of(tm, lsvc__task, timer);
    uint64_t now = lsvc_now_ns();
    if (now < t->due_ns) { /* the loop's clock is coarser: never end a wait early */
        uv_timer_start(tm, on_timer, (t->due_ns - now + 999999) / 1000000, 0);
        return;
    }
    /* LSVC__WAIT_FD: its continuation looks at the clock */
    lsvc__task_wake(t, t->wait == LSVC__WAIT_QUEUE ? LSVC__WOKE_TIMEOUT : LSVC__WOKE_OK);
}

/* ---- waits ------------------------------------------------------------------- */

bool lsvc__can_wait(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    return w->tasks.current && w->tasks.current->kind->can_wait && w->tasks.chain_ok &&
           lua_isyieldable(L);
}

bool lsvc__must_return(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    return (w->tasks.current && lsvc__task_must_wind(w->tasks.current)) ||
           lsvc_service_interrupted(w->svc);
}

void lsvc__check_can_wait(lua_State *L, const char *what)
{
    lsvc__worker *w = lsvc__of(L);
    if (w->tasks.current && !w->tasks.current->kind->can_wait)
        luaL_error(L, "%s: cannot wait in %s (a script's top level runs to its end)", what,
                   w->tasks.current->what);
    if (!lsvc__can_wait(L))
        luaL_error(L,
                   "%s: cannot wait here: not in a task (run, a handler, ctx:spawn) but in a "
                   "luv callback, a metamethod or a C function's callback",
                   what);
}

int lsvc__suspend(lua_State *L, lsvc__wait wait, double ms, lsvc__woke woke, intptr_t kctx,
                  int (*k)(lua_State *, int, intptr_t))
{
    lsvc__worker *w = lsvc__of(L);
    lsvc__task *t = w->tasks.current;
    t->wait = wait;
    t->woke = woke;
    if (wait == LSVC__WAIT_TURN) {
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
    w->tasks.suspending = true;
    return lua_yieldk(L, 0, kctx, k); /* does not return here */
}

lsvc__woke lsvc__woke_of(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    return w->tasks.current ? w->tasks.current->woke : LSVC__WOKE_STOPPING;
}

int lsvc__yield_turn(lua_State *L, intptr_t kctx, int (*k)(lua_State *, int, intptr_t))
{
    return lsvc__suspend(L, LSVC__WAIT_TURN, -1, LSVC__WOKE_OK, kctx, k);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)status; /* an error: the continuation's read tells */
    (void)events;
    lsvc__task_wake(((struct lsvc__fdwait *)h)->t, LSVC__WOKE_OK);
}

int lsvc__wait_fd(lua_State *L, int fd, double ms, intptr_t kctx,
                  int (*k)(lua_State *, int, intptr_t))
{
    lsvc__worker *w = lsvc__of(L);
    lsvc__task *t = w->tasks.current;
    if (lsvc__task_must_wind(t))
        return lsvc__suspend(L, LSVC__WAIT_TURN, -1, LSVC__WOKE_STOPPING, kctx, k);
    struct lsvc__fdwait *p = malloc(sizeof *p);
    if (!p || uv_poll_init(&w->loop, &p->h, fd) != 0) {
        free(p);
        return lsvc__yield_turn(L, kctx, k); /* look again next turn */
    }
    p->h.data = NULL;
    p->t = t;
    t->fdwait = p;
    uv_poll_start(&p->h, UV_READABLE, on_readable);
    return lsvc__suspend(L, LSVC__WAIT_FD, ms, LSVC__WOKE_OK, kctx, k);
}

static int sleep_k(lua_State *L, int status, lua_KContext kctx)
{
    (void)status;
    (void)kctx;
    lua_pushboolean(L, lsvc__woke_of(L) == LSVC__WOKE_OK);
    return 1;
}

/* ctx:sleep(ms) -> true after ms, false as soon as the task must wind down
 * (at once when it must already). Stack: [ctx, ms], checked by luamod.c. */
int lsvc__ctx_sleep(lua_State *L)
{
    double ms = lua_tonumber(L, 2);
    lsvc__check_can_wait(L, "ctx:sleep");
    lsvc__task *t = lsvc__of(L)->tasks.current;
    if (lsvc__task_must_wind(t)) /* false, after a turn: controls go on meanwhile */
        return lsvc__suspend(L, LSVC__WAIT_TURN, -1, LSVC__WOKE_STOPPING, 0, sleep_k);
    if (ms <= 0)
        return lsvc__suspend(L, LSVC__WAIT_TURN, -1, LSVC__WOKE_OK, 0, sleep_k);
    return lsvc__suspend(L, LSVC__WAIT_SLEEP, ms, LSVC__WOKE_OK, 0, sleep_k);
}

/* ---- ctx:spawn --------------------------------------------------------------- */

/* A spawned task: callbacks and the others go on while it waits; each of
 * its resumes within handler_timeout; nothing follows its end. */
static bool spawned_done(lsvc__worker *w, lsvc__result r, bool interrupted, void *ud)
{
    (void)w;
    (void)r;
    (void)interrupted;
    (void)ud;
    return false;
}

static const lsvc__kind spawned_kind = {
    .name = "task",
    .can_wait = true,
    .winds_down = true,
    .timing = LSVC__TIMED_SLICE,
    .victim = LSVC__VICTIM_OTHER,
    .done = spawned_done,
};

/* ctx:spawn(fn, ...) -> nothing; fn(...) runs as a task of its own. */
int lsvc__ctx_spawn(lua_State *L)
{
    lsvc__worker *w = lsvc__of(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (w->phase >= LSVC__PHASE_CLOSE)
        return luaL_error(L, "ctx:spawn: the service has stopped");
    int nargs = lua_gettop(L) - 2;
    char what[40];
    snprintf(what, sizeof what, "task %u", ++w->tasks.spawned);
    lsvc__task *t = lsvc__task_new(w, L, &spawned_kind, nargs, what);
    t->winds_down = !lsvc_service_stopping(w->svc); /* stop's helpers wait as stop does */
    lua_settop(L, 1);
    return 0;
}
