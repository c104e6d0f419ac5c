/*
 * worker.c - the per-service worker thread. It alone owns the service's
 * lua_State and its libuv loop, and its scheduler is that loop: the thread
 * waits nowhere else (but at the host's start barrier, before the loop
 * turns). It loads and validates the script, runs start, then run as a
 * task, delivers queued controls to the script's handlers, and runs stop
 * once run has returned; then it closes every handle the script left
 * open, ends its children, and reports STOPPED.
 *
 * What wakes the loop: the uv_async_t `wake` (a control was queued, the fs
 * watch's kick, the watchdog's interrupt, the systemd notifier asking for
 * a heartbeat), a task's timer (ctx:sleep, a queue's timeout), the watch's
 * timer, and the script's own luv handles.
 *
 * One turn of the scheduler: controls first, in arrival order, one handler
 * at a time (a handler that waits holds the next control back); then the
 * tasks that became ready before this turn (handler first, then the others
 * in the order they became ready); then libuv runs what is due, and the
 * script's luv callbacks run there. A control that arrives while libuv
 * runs is delivered as soon as the loop wakes for it, ahead of the
 * callbacks still due (on_wake). A callback never runs while a handler
 * or task is executing; while a handler is suspended in a wait, callbacks
 * and other tasks go on (as run goes on meanwhile), and only run's own
 * ctx:sleep holds while PAUSED.
 *
 * Deadlines are the watchdog's (watchdog.c); the interrupt hook is task.c's.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "worker.h"

#define FINAL_STOP_MS 400u  /* stop's budget after an interrupt */
#define GRACE_MIN_MS 100u   /* children's time between SIGTERM and SIGKILL ... */
#define GRACE_MAX_MS 2000u  /* ... within what is left of stop_timeout */

int luaopen_lfs(lua_State *L);
int luaopen_cjson(lua_State *L);

lsvc_worker *lsvc_worker_of(lua_State *L)
{
    return *(lsvc_worker **)lua_getextraspace(L);
}

lsvc_service *lsvc_worker_service(lua_State *L)
{
    return lsvc_worker_of(L)->svc;
}

static uint64_t ms_from_now(uint32_t ms)
{
    return lsvc_now_ns() + (uint64_t)ms * 1000000u;
}

/* ---- the interrupt --------------------------------------------------------- */

void lsvc_worker_ack_interrupt(lsvc_worker *w, uint64_t deadline_ns, lsvc_deadline kind)
{
    lsvc_service *svc = w->svc;
    pthread_mutex_lock(&svc->mu);
    atomic_store(&svc->interrupt, 0);
    svc->interrupted_ns = 0;
    svc->deadline_ns = deadline_ns;
    svc->deadline_kind = deadline_ns ? kind : LSVC_DEADLINE_NONE;
    pthread_mutex_unlock(&svc->mu);
    lsvc_watchdog_kick(svc->host);
}

static void end_task(lsvc_task *t)
{
    if (t)
        lsvc_task_end(t);
}

/* The stop did not complete in time: end what holds it, stop runs with a
 * short budget (once), then the service stops with error 1460. */
static void interrupted_stop(lsvc_worker *w, uint32_t timeout)
{
    bool first = !w->forced;
    if (first)
        lsvc_log(LSVC_LOG_ERROR, w->svc->name,
                 "the stop did not complete within stop_timeout (%u ms): interrupted; running stop",
                 timeout);
    w->forced = true;
    end_task(w->handler);
    end_task(w->main);
    lsvc_worker_ack_interrupt(w, first ? ms_from_now(FINAL_STOP_MS) : 0, LSVC_DEADLINE_FINAL);
}

void lsvc_worker_interrupted(lsvc_worker *w, lsvc_victim victim)
{
    lsvc_service *svc = w->svc;
    pthread_mutex_lock(&svc->mu);
    lsvc_deadline kind = svc->deadline_kind;
    const char *what = lsvc_deadline_name(kind, svc->deadline_code);
    bool stopping = svc->stop_requested;
    uint32_t timeout = svc->stop_timeout_ms;
    pthread_mutex_unlock(&svc->mu);

    if (stopping) {
        interrupted_stop(w, timeout);
        return;
    }
    if (lsvc_reload_interrupted(w, victim))
        return;
    if (kind == LSVC_DEADLINE_START) {
        lsvc_log(LSVC_LOG_ERROR, svc->name,
                 "start made no progress within its wait hint: interrupted");
        w->forced = true;
        end_task(w->main);
    } else if (victim == LSVC_VICTIM_HANDLER || (victim != LSVC_VICTIM_MAIN && w->handler)) {
        lsvc_log(LSVC_LOG_ERROR, svc->name, "%s did not finish within %u ms: interrupted",
                 w->handler_what, timeout);
        if (w->handler) {
            lsvc_event ev = w->handler_ev;
            lsvc_task_end(w->handler);
            lsvc_worker_control_done(w, &ev, false);
        }
    } else if (victim != LSVC_VICTIM_MAIN && w->main) {
        lsvc_log(LSVC_LOG_ERROR, svc->name, "%s held up a %s for %u ms: interrupted",
                 w->main->what, what, timeout);
        lsvc_task_end(w->main);
        w->failed = true;
    }
    lsvc_worker_ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
}

/* ---- ctx:exit, handlers ------------------------------------------------------ */

void lsvc_worker_exit(lsvc_worker *w, uint32_t code)
{
    w->exit_set = true;
    w->exit_code = code;
    lsvc_service_request_stop(w->svc);
}

int lsvc_worker_push_handler(lsvc_worker *w, const char *field)
{
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->script_ref);
    lua_getfield(w->L, -1, field);
    lua_remove(w->L, -2);
    if (lua_isfunction(w->L, -1))
        return 1;
    lua_pop(w->L, 1);
    return 0;
}

void lsvc_worker_start_run(lsvc_worker *w)
{
    if (lsvc_worker_push_handler(w, "run")) {
        lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->ctx_ref);
        w->main = lsvc_task_new(w, w->L, LSVC_TASK_MAIN, 1, "run");
    }
}

void lsvc_worker_tell_reloading(lsvc_worker *w, bool begin)
{
    if (w->reload_told == begin)
        return;
    w->reload_told = begin;
    if (w->svc->reloading)
        w->svc->reloading(w->svc, begin, w->svc->report_ud);
}

void lsvc_worker_restore_deadline(lsvc_worker *w)
{
    lsvc_status st;
    lsvc_service_get_status(w->svc, &st);
    if (!lsvc_service_stopping(w->svc)) {
        bool pending = lsvc_state_is_pending(st.state);
        lsvc_service_set_deadline(w->svc, pending ? ms_from_now(w->svc->stop_timeout_ms) : 0,
                                  LSVC_DEADLINE_CONTROL);
    }
}

void lsvc_worker_control_done(lsvc_worker *w, const lsvc_event *ev, bool ok)
{
    lsvc_service *svc = w->svc;
    if (ev->code == LSVC_CTRL_PARAMCHANGE && !w->reload_pending &&
        w->reload_phase == LSVC_RELOAD_IDLE)
        lsvc_worker_tell_reloading(w, false); /* its handler ran, or it was dropped */
    if (lsvc_service_stopping(svc))
        return;
    if (ev->code == LSVC_CTRL_PAUSE) {
        w->paused = ok;
        lsvc_service_set_state(svc, ok ? LSVC_PAUSED : LSVC_RUNNING, 0);
    } else if (ev->code == LSVC_CTRL_CONTINUE) {
        w->paused = !ok;
        lsvc_service_set_state(svc, ok ? LSVC_RUNNING : LSVC_PAUSED, 0);
    }
    if (!w->paused)
        lsvc_task_unhold(w);
}

/* ---- controls ------------------------------------------------------------------ */

static const char *handler_field(uint32_t code)
{
    switch (code) {
    case LSVC_CTRL_PAUSE: return "pause";
    case LSVC_CTRL_CONTINUE: return "continue";
    case LSVC_CTRL_PARAMCHANGE: return "paramchange";
    case LSVC_CTRL_PRESHUTDOWN: return "preshutdown";
    case LSVC_CTRL_SESSIONCHANGE: return "sessionchange";
    case LSVC_CTRL_POWEREVENT: return "powerevent";
    default: return NULL;
    }
}

/* Push a control's arguments after ctx; returns how many (ctx included). */
static int push_control_args(lsvc_worker *w, const lsvc_event *ev)
{
    lua_State *L = w->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->ctx_ref);
    if (ev->code >= LSVC_CTRL_USER_MIN) {
        lua_pushinteger(L, ev->code);
        return 2;
    }
    if (ev->code != LSVC_CTRL_SESSIONCHANGE && ev->code != LSVC_CTRL_POWEREVENT)
        return 1;
    lua_pushinteger(L, ev->event_type);
    if (ev->code == LSVC_CTRL_SESSIONCHANGE) {
        lua_pushinteger(L, ev->session_id);
        return 3;
    }
    if (!ev->power_setting[0])
        return 2;
    lua_createtable(L, 0, 2);
    lua_pushstring(L, ev->power_setting);
    lua_setfield(L, -2, "setting");
    lua_pushlstring(L, (const char *)ev->power_data, ev->power_data_len);
    lua_setfield(L, -2, "data");
    return 3;
}

/* Push the user control's handler, or return 0 (logged). */
static int push_user_handler(lsvc_worker *w, const lsvc_event *ev)
{
    lua_State *L = w->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->script_ref);
    lua_getfield(L, -1, "controls");
    lua_remove(L, -2);
    if (lua_istable(L, -1))
        lua_rawgeti(L, -1, ev->code);
    else
        lua_pushnil(L);
    lua_remove(L, -2);
    if (lua_isfunction(L, -1))
        return 1;
    lua_pop(L, 1); /* the handler went away (reload) */
    lsvc_log(LSVC_LOG_WARNING, w->svc->name, "control %u: no handler", ev->code);
    return 0;
}

/* A control with no handler of the script's: settle it at once. */
static void settle(lsvc_worker *w, const lsvc_event *ev)
{
    pthread_mutex_lock(&w->svc->mu);
    w->svc->last_latency_ns = lsvc_now_ns() - ev->arrived_ns;
    w->svc->controls_delivered++;
    pthread_mutex_unlock(&w->svc->mu);
    if (ev->code == LSVC_CTRL_PARAMCHANGE) { /* the default: reload the script */
        lsvc_log(LSVC_LOG_INFO, w->svc->name, "paramchange: reloading %s", w->svc->script_path);
        w->reload_pending = true;
    }
    if (ev->code != LSVC_CTRL_STOP && ev->code != LSVC_CTRL_SHUTDOWN &&
        ev->code < LSVC_CTRL_USER_MIN)
        lsvc_worker_control_done(w, ev, true);
}

/* Deliver one control: start its handler as a task, or settle it at once.
 * STOP and SHUTDOWN have no handler here: run is told, stop runs after it. */
static void dispatch(lsvc_worker *w, const lsvc_event *ev)
{
    const char *field = handler_field(ev->code);
    if (ev->code == LSVC_CTRL_PARAMCHANGE)
        lsvc_worker_tell_reloading(w, true);
    bool user = ev->code >= LSVC_CTRL_USER_MIN;
    if (!user && (!field || !lsvc_worker_push_handler(w, field))) {
        settle(w, ev);
        return;
    }
    if (user && !push_user_handler(w, ev)) {
        settle(w, ev);
        return;
    }
    if (user)
        snprintf(w->handler_what, sizeof w->handler_what, "controls[%u]", ev->code);
    else
        snprintf(w->handler_what, sizeof w->handler_what, "%s", field);
    int nargs = push_control_args(w, ev);
    w->handler = lsvc_task_new(w, w->L, LSVC_TASK_HANDLER, nargs, w->handler_what);
    w->handler->winds_down = ev->code != LSVC_CTRL_PRESHUTDOWN; /* it may wait, as stop */
    w->handler_ev = *ev;
    w->handler_fresh = true; /* latency is taken at its first resume */
}

/* ---- the scheduler ------------------------------------------------------------------ */

/* Resume t once and settle what its end means. */
static void run_task(lsvc_worker *w, lsvc_task *t)
{
    bool is_handler = t == w->handler, is_main = t == w->main;
    lsvc_task_result r = lsvc_task_resume(t);
    if (r == LSVC_TASK_YIELDED)
        return;
    bool interrupted = r == LSVC_TASK_FAILED && atomic_load(&w->svc->interrupt);
    lsvc_task_end(t);
    if (is_handler && w->reload_phase == LSVC_RELOAD_HOOK) {
        lsvc_reload_hook_done(w, r == LSVC_TASK_DONE);
    } else if (is_handler) {
        lsvc_worker_control_done(w, &w->handler_ev, r == LSVC_TASK_DONE);
    } else if (is_main && w->reload_phase == LSVC_RELOAD_WINDING) {
        lsvc_reload_run_returned(w, interrupted); /* an old run's error fails nothing */
        return;
    } else if (is_main && r == LSVC_TASK_FAILED) {
        w->failed = true;
    }
    if (interrupted)
        lsvc_worker_interrupted(w, is_handler ? LSVC_VICTIM_HANDLER
                                   : is_main  ? LSVC_VICTIM_MAIN
                                              : LSVC_VICTIM_OTHER);
}

/* The control lane: a reload to take up, else the next control, while no
 * handler holds the lane. */
void lsvc_worker_deliver(lsvc_worker *w)
{
    lsvc_event ev;
    for (;;) {
        if (w->handler)
            return;
        if (lsvc_reload_step(w)) {
            if (w->handler)
                run_task(w, w->handler);
            continue;
        }
        if (!w->deliver || w->reload_phase != LSVC_RELOAD_IDLE ||
            !lsvc_queue_pop(&w->svc->queue, &ev))
            return;
        dispatch(w, &ev);
        if (w->handler)
            run_task(w, w->handler);
    }
}

/* One turn; returns whether work is left for another turn at once. */
static bool turn(lsvc_worker *w)
{
    lsvc_service *svc = w->svc;
    w->turn++;
    atomic_store_explicit(&svc->heartbeat_ns, lsvc_now_ns(), memory_order_relaxed);
    if (atomic_load(&svc->interrupt))
        lsvc_worker_interrupted(w, LSVC_VICTIM_NONE);
    if (w->forced && w->deliver) {
        w->deliver = false; /* past the deadline: no more handlers */
        size_t dropped = lsvc_queue_len(&svc->queue);
        if (dropped)
            lsvc_log(LSVC_LOG_WARNING, svc->name,
                     "%zu queued control(s) not delivered: the stop was forced", dropped);
    }
    if (!w->stop_seen && lsvc_service_stopping(svc)) {
        w->stop_seen = true;
        if (w->reload_phase != LSVC_RELOAD_IDLE)
            lsvc_reload_cancel(w, NULL); /* the stop comes first */
        lsvc_task_wind_all(w);
    }
    lsvc_worker_deliver(w);
    if (w->handler && w->handler->queued && w->handler->ready_turn < w->turn)
        run_task(w, w->handler); /* controls first */
    for (lsvc_task *t; (t = lsvc_task_pop_ready(w));) {
        run_task(w, t);
        if (atomic_load(&svc->interrupt))
            lsvc_worker_interrupted(w, LSVC_VICTIM_NONE);
    }
    lsvc_worker_deliver(w); /* a handler may have ended */
    return w->ready_head || atomic_load(&svc->interrupt) ||
           (w->deliver && !w->handler && w->reload_phase == LSVC_RELOAD_IDLE &&
            lsvc_queue_len(&svc->queue) > 0);
}

/* Turn the loop until done(w). */
static void schedule(lsvc_worker *w, bool deliver, bool (*done)(lsvc_worker *))
{
    w->deliver = deliver && !w->forced;
    for (;;) {
        bool more = turn(w);
        if (done(w))
            return;
        uv_run(&w->loop, more ? UV_RUN_NOWAIT : UV_RUN_ONCE);
    }
}

static bool main_done(lsvc_worker *w)
{
    return !w->main;
}

static bool run_done(lsvc_worker *w)
{
    return !w->main && !w->handler && (!w->deliver || lsvc_queue_len(&w->svc->queue) == 0);
}

/* ---- the thread, by phase -------------------------------------------------------------- */

/* A control was queued (or the watch, the watchdog, the notifier woke
 * the loop): controls go ahead of the callbacks still due in this
 * iteration of the loop; the turn after it looks at everything else. */
static void on_wake(uv_async_t *a)
{
    lsvc_worker *w = (lsvc_worker *)((char *)a - offsetof(lsvc_worker, wake));
    if (w->phase == LSVC_PHASE_RUN && !w->current)
        lsvc_worker_deliver(w);
}

void lsvc_worker_between_callbacks(lsvc_worker *w)
{
    if (w->phase == LSVC_PHASE_RUN && !w->handler && lsvc_queue_pending(&w->svc->queue))
        lsvc_worker_deliver(w);
}

static void wake_loop(void *ud)
{
    lsvc_worker *w = ud;
    uv_async_send(&w->wake);
}

/* The Lua state and the loop; START_PENDING. false: out of memory. */
static bool worker_init(lsvc_worker *w)
{
    lsvc_service *svc = w->svc;
    lua_State *L = luaL_newstate();
    if (!L || uv_loop_init(&w->loop) != 0) {
        if (L)
            lua_close(L);
        lsvc_service_set_state(svc, LSVC_START_PENDING, LSVC_START_WAIT_HINT_MS);
        lsvc_log(LSVC_LOG_ERROR, svc->name, "cannot create a Lua state or loop: out of memory");
        return false;
    }
    w->L = L;
    /* The runtime's own setup (the libraries, the loader, the contract)
     * leaves little garbage: no collection until the script's code runs
     * (phase_load), which saves a start a few incremental steps. */
    lua_gc(L, LUA_GCSTOP);
    *(lsvc_worker **)lua_getextraspace(L) = w; /* copied into every coroutine */
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = NULL; /* the runtime's own handles: data NULL (uvlua.c) */
    uv_timer_init(&w->loop, &w->watch_timer);
    w->watch_timer.data = NULL;
    lsvc_queue_set_waker(&svc->queue, wake_loop, w);
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, lsvc_open_luasvc);
    lua_setfield(L, -2, "luasvc");
    lua_pushcfunction(L, luaopen_lfs);
    lua_setfield(L, -2, "lfs");
#ifdef LSVC_HAVE_CJSON /* lua-cjson, where the build has it */
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
#endif
    lua_setwarnf(L, lsvc_lua_warn, svc); /* luawarn.c: warn() to the log */
    lua_pop(L, 1);
    lsvc_uvlua_open(w);
    pthread_mutex_lock(&svc->mu);
    lsvc_task_open(w); /* binds the interrupt to this thread */
    pthread_mutex_unlock(&svc->mu);
    lsvc_service_set_state(svc, LSVC_START_PENDING, LSVC_START_WAIT_HINT_MS);
    return true;
}

static void set_load_result(lsvc_service *svc, bool ok)
{
    pthread_mutex_lock(&svc->mu);
    svc->loaded = ok;
    svc->load_failed = !ok;
    pthread_cond_broadcast(&svc->load_cv);
    pthread_mutex_unlock(&svc->mu);
    lsvc_host_loaded(svc->host); /* the last to load may open the gate itself */
}

/* Load the script under START_PENDING, then wait at the host's barrier
 * until every script has loaded. true: start. */
static bool phase_load(lsvc_worker *w)
{
    lsvc_service *svc = w->svc;
    char err[2048];
    lsvc_service_set_deadline(svc, ms_from_now(LSVC_START_WAIT_HINT_MS), LSVC_DEADLINE_START);
    bool ok = lsvc_reload_setup(w) == 0;
    lua_gc(w->L, LUA_GCRESTART); /* the script's code runs from here */
    if (ok && !lsvc_reload_load(w, true, err, sizeof err)) {
        lsvc_log(LSVC_LOG_ERROR, svc->name, "%s", err);
        ok = false;
    }
    if (ok) {
        lsvc_reload_apply(w, -1, true);
        lua_pop(w->L, 1);
    }
    set_load_result(svc, ok);
    pthread_mutex_lock(&svc->mu);
    while (ok && svc->gate == LSVC_GATE_WAIT)
        pthread_cond_wait(&svc->load_cv, &svc->mu);
    bool go = svc->gate == LSVC_GATE_GO;
    pthread_mutex_unlock(&svc->mu);
    if (!ok) {
        w->failed = true;
        w->exit_set = true;
        w->exit_code = LSVC_EXIT_LOAD_ERROR;
        return false;
    }
    if (!go)
        lsvc_log(LSVC_LOG_INFO, svc->name, "not started: another script failed to load");
    return go;
}

/* START_PENDING: start(ctx, args). true: it returned. */
static bool phase_start(lsvc_worker *w)
{
    lsvc_service *svc = w->svc;
    lua_State *L = w->L;
    w->phase = LSVC_PHASE_START;
    lsvc_push_ctx(L, svc);
    w->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lsvc_service_set_deadline(svc, ms_from_now(LSVC_START_WAIT_HINT_MS), LSVC_DEADLINE_START);
    if (lsvc_worker_push_handler(w, "start")) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, w->ctx_ref);
        lua_createtable(L, svc->argc, 0);
        for (int i = 0; i < svc->argc; i++) {
            lua_pushstring(L, svc->argv[i]);
            lua_rawseti(L, -2, i + 1);
        }
        w->main = lsvc_task_new(w, L, LSVC_TASK_MAIN, 2, "start");
        schedule(w, false, main_done);
    }
    return !w->failed && !w->forced;
}

/* RUNNING: run(ctx), with controls delivered meanwhile; then the controls
 * already queued, as the service winds down. */
static void phase_run(lsvc_worker *w)
{
    lsvc_service *svc = w->svc;
    w->phase = LSVC_PHASE_RUN;
    if (lsvc_service_stopping(svc))
        return;
    lsvc_service_set_state(svc, LSVC_RUNNING, 0);
    lsvc_service_set_deadline(svc, 0, LSVC_DEADLINE_NONE);
    lsvc_worker_start_run(w);
    lsvc_reload_begin_watch(w); /* a change made while starting is seen now */
    schedule(w, true, run_done);
    lsvc_service_request_stop(svc);
    schedule(w, true, run_done);
}

/* STOP_PENDING: stop(ctx), or shutdown(ctx) for a system shutdown. */
static void phase_stop(lsvc_worker *w)
{
    lsvc_service *svc = w->svc;
    w->phase = LSVC_PHASE_STOP;
    lsvc_service_request_stop(svc);
    pthread_mutex_lock(&svc->mu);
    bool shutdown = svc->stop_code == LSVC_CTRL_SHUTDOWN;
    pthread_mutex_unlock(&svc->mu);
    if ((shutdown && lsvc_worker_push_handler(w, "shutdown")) ||
        lsvc_worker_push_handler(w, "stop")) {
        lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->ctx_ref);
        w->main = lsvc_task_new(w, w->L, LSVC_TASK_MAIN, 1, "stop");
        w->main->winds_down = false; /* stop may wait, within stop_timeout */
        bool was_failed = w->failed;
        w->failed = false;
        schedule(w, false, main_done);
        if (w->failed && !was_failed)
            lsvc_log(LSVC_LOG_ERROR, svc->name, "stop failed; the service stops with an error");
        w->failed = w->failed || was_failed;
    }
}

/* The children's grace: what is left of stop_timeout, within bounds. */
static uint32_t grace_ms(lsvc_worker *w)
{
    lsvc_service *svc = w->svc;
    pthread_mutex_lock(&svc->mu);
    uint64_t due = svc->deadline_kind == LSVC_DEADLINE_STOP ? svc->deadline_ns : 0;
    pthread_mutex_unlock(&svc->mu);
    uint64_t now = lsvc_now_ns();
    uint64_t left = due > now ? (due - now) / 1000000u : 0;
    return left < GRACE_MIN_MS ? GRACE_MIN_MS : left > GRACE_MAX_MS ? GRACE_MAX_MS : (uint32_t)left;
}

/* STOPPED is near: every task ends, every handle the script opened is
 * closed (a connected client sees EOF now), its children are ended and
 * reaped, and the loop runs until every close callback has fired. */
static void phase_close(lsvc_worker *w)
{
    w->phase = LSVC_PHASE_CLOSE;
    w->deliver = false;
    lsvc_task_end_all(w);
    uint32_t grace = grace_ms(w);
    lsvc_service_set_deadline(w->svc, ms_from_now(grace + 2000u), LSVC_DEADLINE_FINAL);
    lsvc_uvlua_close_all(w, grace);
    lsvc_queue_set_waker(&w->svc->queue, NULL, NULL);
    uv_close((uv_handle_t *)&w->wake, NULL);
    uv_close((uv_handle_t *)&w->watch_timer, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (atomic_load(&w->svc->interrupt))
        lsvc_worker_ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
}

static lsvc_exit final_exit(const lsvc_worker *w)
{
    if (w->forced)
        return (lsvc_exit){LSVC_ERROR_TIMEOUT, 0};
    if (w->failed)
        return (lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR,
                           w->exit_set && w->exit_code ? w->exit_code : LSVC_EXIT_SCRIPT_ERROR};
    if (w->exit_set && w->exit_code)
        return (lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR, w->exit_code};
    return (lsvc_exit){LSVC_NO_ERROR, 0};
}

/* Free the state and the loop, unless the watchdog gave this thread up
 * (another thread may then still read the service). */
static void worker_free(lsvc_worker *w)
{
    lsvc_service *svc = w->svc;
    pthread_mutex_lock(&svc->mu);
    bool abandoned = svc->abandoned;
    lsvc_irq_unbind(&svc->irq);
    pthread_mutex_unlock(&svc->mu);
    if (abandoned)
        return;
    lua_close(w->L);
    lsvc_reload_free(w);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&w->loop) != 0)
        lsvc_log(LSVC_LOG_DEBUG, svc->name, "the loop had handles left at exit");
}

static void *worker_main(void *arg)
{
    lsvc_service *svc = arg;
    lsvc_worker w = {.svc = svc, .script_ref = LUA_NOREF, .ctx_ref = LUA_NOREF,
                     .loader_ref = LUA_NOREF, .new_info_ref = LUA_NOREF};
    if (!worker_init(&w)) {
        set_load_result(svc, false);
        lsvc_service_set_stopped(svc, (lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR,
                                                  LSVC_EXIT_LOAD_ERROR});
        return NULL;
    }
    if (phase_load(&w) && phase_start(&w)) {
        phase_run(&w);
        phase_stop(&w);
    }
    phase_close(&w);
    lsvc_service_set_stopped(svc, final_exit(&w));
    worker_free(&w);
    return NULL;
}

int lsvc_worker_start(lsvc_service *svc)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 1u << 20);
    int rc = pthread_create(&svc->thread, &a, worker_main, svc);
    pthread_attr_destroy(&a);
    if (rc == 0)
        svc->thread_started = true;
    return rc;
}
