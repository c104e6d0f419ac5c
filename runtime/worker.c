/*
 * worker.c - the per-service worker thread. It alone owns the service's
 * lua_State: it loads and validates the script, runs start, then run as a
 * coroutine, delivers queued controls to the script's handlers between
 * yields (in arrival order, one at a time), and runs stop once run has
 * returned. Every call into the script goes through resume_task, which
 * turns an error into a log line with a traceback.
 *
 * Deadlines are the watchdog's (watchdog.c); this thread installs a count
 * hook on its own state that turns the watchdog's interrupt flag into an
 * error, re-armed on every line so a script's pcall cannot swallow it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "luasvc.h"

#define HOOK_COUNT 1000
#define START_WAIT_HINT_MS 30000u /* the SCM's default patience for a start */
#define FINAL_STOP_MS 400u         /* stop's budget after an interrupt */

int luaopen_lfs(lua_State *L);
int luaopen_cjson(lua_State *L);

lsvc_worker *lsvc_worker_of(lua_State *L)
{
    return *(lsvc_worker **)lua_getextraspace(L);
}

/* ---- the interrupt hook ------------------------------------------------ */

static void hook(lua_State *L, lua_Debug *ar)
{
    lsvc_worker *w = lsvc_worker_of(L);
    if (atomic_load_explicit(&w->svc->interrupt, memory_order_relaxed)) {
        /* Re-arm on every line and instruction: when the script's own pcall
         * catches this, the next line raises it again. */
        lua_sethook(L, hook, LUA_MASKCOUNT | LUA_MASKLINE, 1);
        luaL_error(L, "interrupted by the luasvc watchdog: a deadline passed");
    } else if (ar->event == LUA_HOOKLINE || lua_gethookcount(L) != HOOK_COUNT) {
        lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT);
    }
}

/* Answer the watchdog: the interrupt has been handled. */
static void ack_interrupt(lsvc_worker *w, uint64_t new_deadline, const char *what)
{
    lsvc_service *svc = w->svc;
    pthread_mutex_lock(&svc->mu);
    atomic_store(&svc->interrupt, 0);
    svc->interrupted_ns = 0;
    svc->deadline_ns = new_deadline;
    svc->deadline_what = what;
    pthread_mutex_unlock(&svc->mu);
    lsvc_watchdog_kick(svc->host);
}

/* ---- tasks --------------------------------------------------------------- */

/* Start a task: call the function at the top of L's stack with the nargs
 * values below... [f, args...] are popped from L. */
static void task_start(lsvc_worker *w, lsvc_task *t, int nargs, const char *what)
{
    lua_State *L = w->L;
    lua_State *co = lua_newthread(L);
    t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_xmove(L, co, nargs + 1);
    t->co = co;
    t->active = true;
    t->sleeping = false;
    t->woken_early = false;
    t->wake_ns = 0;
    t->what = what;
}

static void task_end(lsvc_worker *w, lsvc_task *t)
{
    if (!t->active)
        return;
    lua_resetthread(t->co);
    luaL_unref(w->L, LUA_REGISTRYINDEX, t->ref);
    t->co = NULL;
    t->active = false;
    t->sleeping = false;
}

static void record_latency(lsvc_worker *w, const lsvc_event *ev)
{
    pthread_mutex_lock(&w->svc->mu);
    w->svc->last_latency_ns = lsvc_now_ns() - ev->arrived_ns;
    w->svc->controls_delivered++;
    pthread_mutex_unlock(&w->svc->mu);
}

typedef enum { TASK_YIELDED, TASK_DONE, TASK_FAILED } task_result;

/* Resume t once. On an error, log it with the coroutine's traceback. */
static task_result resume_task(lsvc_worker *w, lsvc_task *t)
{
    int nargs = 0, nres = 0;
    if (lua_status(t->co) == LUA_YIELD) {
        lua_pushboolean(t->co, !t->woken_early); /* what ctx:sleep returns */
        nargs = 1;
    } else {
        nargs = lua_gettop(t->co) - 1;
    }
    t->sleeping = false;
    t->woken_early = false;
    if (t == &w->handler && w->handler_fresh) {
        w->handler_fresh = false;
        record_latency(w, &w->handler_ev);
    }
    w->current = t;
    int rc = lua_resume(t->co, w->L, nargs, &nres);
    w->current = NULL;
    if (rc == LUA_YIELD) {
        lua_pop(t->co, nres);
        if (!t->sleeping) { /* a bare coroutine.yield(): run again soon */
            t->sleeping = true;
            t->wake_ns = 0;
        }
        return TASK_YIELDED;
    }
    if (rc == LUA_OK) {
        task_end(w, t);
        return TASK_DONE;
    }
    const char *msg = lua_tostring(t->co, -1);
    luaL_traceback(w->L, t->co, msg ? msg : "(error object is not a string)", 0);
    lsvc_log(LSVC_LOG_ERROR, w->svc->name, "error in %s: %s", t->what, lua_tostring(w->L, -1));
    lua_pop(w->L, 1);
    task_end(w, t);
    return TASK_FAILED;
}

/* Push handler `field` of the script table (or nil). */
static int push_handler(lsvc_worker *w, const char *field)
{
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->script_ref);
    lua_getfield(w->L, -1, field);
    lua_remove(w->L, -2);
    if (lua_isfunction(w->L, -1))
        return 1;
    lua_pop(w->L, 1);
    return 0;
}

/* ---- ctx:sleep and ctx:exit ------------------------------------------ */

int lsvc_worker_sleep(lua_State *L, lsvc_worker *w, uint64_t ms)
{
    lsvc_task *t = w->current;
    if (t && t->co == L && lua_isyieldable(L)) {
        bool stopping = lsvc_service_stopping(w->svc) || (w->winding && t == &w->main);
        t->sleeping = true;
        t->woken_early = stopping; /* resumed at once, with false */
        t->wake_ns = lsvc_now_ns() + (stopping ? 0 : ms * 1000000u);
        return lua_yield(L, 0);
    }
    /* Not on a task's own coroutine (inside a script's coroutine or a
     * metamethod): block this thread, still waking early on a stop. */
    uint64_t due = lsvc_now_ns() + ms * 1000000u;
    while (!lsvc_service_stopping(w->svc) && lsvc_now_ns() < due &&
           !atomic_load(&w->svc->interrupt)) {
        /* a sleep, not a hang: the systemd watchdog may go on */
        atomic_store_explicit(&w->svc->heartbeat_ns, lsvc_now_ns(), memory_order_relaxed);
        lsvc_queue_wait(&w->svc->queue, due);
    }
    lua_pushboolean(L, !lsvc_service_stopping(w->svc) && lsvc_now_ns() >= due);
    return 1;
}

void lsvc_worker_exit(lsvc_worker *w, uint32_t code)
{
    w->exit_set = true;
    w->exit_code = code;
    lsvc_service_request_stop(w->svc);
}

/* ---- controls ------------------------------------------------------------ */


/* Tell the front end a reload began or ended; begin/end pair up. */
static void tell_reloading(lsvc_worker *w, bool begin)
{
    if (w->reload_told == begin)
        return;
    w->reload_told = begin;
    if (w->svc->reloading)
        w->svc->reloading(w->svc, begin, w->svc->report_ud);
}

/* What follows a control handler: the state it leads to, or back. */
static void control_done(lsvc_worker *w, const lsvc_event *ev, bool ok)
{
    lsvc_service *svc = w->svc;
    if (ev->code == LSVC_CTRL_PARAMCHANGE && !w->reload_pending &&
        w->reload_phase == LSVC_RELOAD_IDLE)
        tell_reloading(w, false); /* its handler ran, or it was dropped */
    if (lsvc_service_stopping(svc))
        return;
    if (ev->code == LSVC_CTRL_PAUSE) {
        w->paused = ok;
        lsvc_service_set_state(svc, ok ? LSVC_PAUSED : LSVC_RUNNING, 0);
    } else if (ev->code == LSVC_CTRL_CONTINUE) {
        w->paused = !ok;
        lsvc_service_set_state(svc, ok ? LSVC_RUNNING : LSVC_PAUSED, 0);
    }
}

/* Deliver one control: start its handler as a task, or settle it at once. */
static void dispatch(lsvc_worker *w, const lsvc_event *ev)
{
    lua_State *L = w->L;
    const char *field = NULL;
    switch (ev->code) {
    case LSVC_CTRL_PAUSE: field = "pause"; break;
    case LSVC_CTRL_CONTINUE: field = "continue"; break;
    case LSVC_CTRL_PARAMCHANGE: field = "paramchange"; break;
    case LSVC_CTRL_PRESHUTDOWN: field = "preshutdown"; break;
    case LSVC_CTRL_SESSIONCHANGE: field = "sessionchange"; break;
    case LSVC_CTRL_POWEREVENT: field = "powerevent"; break;
    case LSVC_CTRL_STOP:
    case LSVC_CTRL_SHUTDOWN:
        record_latency(w, ev); /* run is already told; stop/shutdown run after it */
        return;
    default: break;
    }
    int nargs = 0;
    if (ev->code == LSVC_CTRL_PARAMCHANGE)
        tell_reloading(w, true);
    if (field) {
        if (!push_handler(w, field)) {
            record_latency(w, ev);
            if (ev->code == LSVC_CTRL_PARAMCHANGE) { /* the default: reload the script */
                lsvc_log(LSVC_LOG_INFO, w->svc->name, "paramchange: reloading %s",
                         w->svc->script_path);
                w->reload_pending = true;
            }
            control_done(w, ev, true);
            return;
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, w->ctx_ref);
        nargs = 1;
        if (ev->code == LSVC_CTRL_SESSIONCHANGE || ev->code == LSVC_CTRL_POWEREVENT) {
            lua_pushinteger(L, ev->event_type);
            nargs = 2;
        }
        if (ev->code == LSVC_CTRL_SESSIONCHANGE) {
            lua_pushinteger(L, ev->session_id);
            nargs = 3;
        } else if (ev->code == LSVC_CTRL_POWEREVENT && ev->power_setting[0]) {
            lua_createtable(L, 0, 2);
            lua_pushstring(L, ev->power_setting);
            lua_setfield(L, -2, "setting");
            lua_pushlstring(L, (const char *)ev->power_data, ev->power_data_len);
            lua_setfield(L, -2, "data");
            nargs = 3;
        }
        snprintf(w->handler_what, sizeof w->handler_what, "%s", field);
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, w->script_ref);
        lua_getfield(L, -1, "controls");
        lua_remove(L, -2);
        if (lua_istable(L, -1))
            lua_rawgeti(L, -1, ev->code);
        else
            lua_pushnil(L);
        lua_remove(L, -2);
        if (!lua_isfunction(L, -1)) { /* the handler went away (reload) */
            lua_pop(L, 1);
            record_latency(w, ev);
            lsvc_log(LSVC_LOG_WARNING, w->svc->name, "control %u: no handler", ev->code);
            return;
        }
        lua_rawgeti(L, LUA_REGISTRYINDEX, w->ctx_ref);
        lua_pushinteger(L, ev->code);
        nargs = 2;
        snprintf(w->handler_what, sizeof w->handler_what, "controls[%u]", ev->code);
    }
    task_start(w, &w->handler, nargs, w->handler_what);
    w->handler_ev = *ev;
    w->handler_fresh = true; /* latency is taken at its first resume */
}

/* ---- loading and hot reload --------------------------------------------- */

/* The first load, under START_PENDING. Returns 0, or -1 with the error
 * logged (file and line, a traceback for runtime errors). */
static int load_first(lsvc_worker *w)
{
    char err[2048];
    if (lsvc_reload_setup(w) != 0)
        return -1;
    if (!lsvc_reload_load(w, true, err, sizeof err)) {
        lsvc_log(LSVC_LOG_ERROR, w->svc->name, "%s", err);
        return -1;
    }
    lsvc_reload_apply(w, -1, true);
    lua_pop(w->L, 1);
    return 0;
}

static void reload_failed(lsvc_worker *w, const char *err)
{
    lsvc_log(LSVC_LOG_ERROR, w->svc->name, "reload refused, the running version goes on: %s", err);
    lsvc_service_reload_result(w->svc, err);
    tell_reloading(w, false);
}

static void start_run(lsvc_worker *w)
{
    if (push_handler(w, "run")) {
        lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->ctx_ref);
        task_start(w, &w->main, 1, "run");
    }
}

/* The old run is asked to return (ctx:sleep gives false, ctx:reloading()
 * is true), within stop_timeout. */
static void begin_winding(lsvc_worker *w)
{
    w->reload_phase = LSVC_RELOAD_WINDING;
    w->winding = true;
    lsvc_service_set_deadline(w->svc,
                              lsvc_now_ns() + (uint64_t)w->svc->stop_timeout_ms * 1000000u,
                              "reload");
}

/* A change was seen or a reload asked for: load and validate the new
 * version beside the old one, run its reload(ctx, previous), then wind the
 * old run down. Controls wait in the queue until the new code is in place. */
static void begin_reload(lsvc_worker *w)
{
    char err[2048];
    w->reload_pending = false;
    tell_reloading(w, true);
    if (!lsvc_reload_load(w, false, err, sizeof err)) {
        reload_failed(w, err);
        return;
    }
    lua_State *L = w->L;
    w->new_info_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->new_info_ref);
    lua_getfield(L, -1, "script");
    lua_getfield(L, -1, "reload");
    lua_remove(L, -2);
    lua_remove(L, -2);
    if (lua_isfunction(L, -1)) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, w->ctx_ref);
        lua_rawgeti(L, LUA_REGISTRYINDEX, w->script_ref); /* previous */
        task_start(w, &w->handler, 2, "reload");
        w->handler_ev = (lsvc_event){0};
        w->reload_phase = LSVC_RELOAD_HOOK;
        lsvc_service_set_deadline(
            w->svc, lsvc_now_ns() + (uint64_t)w->svc->stop_timeout_ms * 1000000u, "reload");
    } else {
        lua_pop(L, 1);
        begin_winding(w);
    }
}

/* Drop the new version (its reload failed, or a stop came first). */
static void cancel_reload(lsvc_worker *w, const char *err)
{
    if (w->new_info_ref != LUA_NOREF) {
        luaL_unref(w->L, LUA_REGISTRYINDEX, w->new_info_ref);
        w->new_info_ref = LUA_NOREF;
        lsvc_reload_rollback(w);
    }
    w->reload_phase = LSVC_RELOAD_IDLE;
    w->winding = false;
    if (err)
        reload_failed(w, err);
    tell_reloading(w, false);
}

static void restore_deadline(lsvc_worker *w)
{
    lsvc_status st;
    lsvc_service_get_status(w->svc, &st);
    if (!lsvc_service_stopping(w->svc))
        lsvc_service_set_deadline(
            w->svc,
            lsvc_state_is_pending(st.state)
                ? lsvc_now_ns() + (uint64_t)w->svc->stop_timeout_ms * 1000000u
                : 0,
            lsvc_state_is_pending(st.state) ? "control" : NULL);
}

/* The old run has returned: the new version takes over. */
static void finish_reload(lsvc_worker *w)
{
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->new_info_ref);
    lsvc_reload_apply(w, -1, false);
    lua_pop(w->L, 1);
    luaL_unref(w->L, LUA_REGISTRYINDEX, w->new_info_ref);
    w->new_info_ref = LUA_NOREF;
    w->reload_phase = LSVC_RELOAD_IDLE;
    w->winding = false;
    lsvc_service_reload_result(w->svc, NULL);
    restore_deadline(w);
    lsvc_log(LSVC_LOG_INFO, w->svc->name, "reloaded %s (reload %u)", w->svc->script_path,
             w->svc->reloads);
    start_run(w);
    tell_reloading(w, false);
}

/* Poll the watched files when due; returns when the next poll is due. */
static uint64_t watch(lsvc_worker *w, uint64_t now)
{
    lsvc_service *svc = w->svc;
    if (!svc->watch_interval_ms)
        return 0;
    if (w->fs_notified && atomic_exchange(&svc->fs_kicked, false))
        w->next_poll_ns = now; /* told of a change: look now */
    if (w->next_poll_ns && now >= w->next_poll_ns) {
        int r = lsvc_reload_poll(w);
        if (r == LSVC_WATCH_CHANGED)
            w->reload_pending = true;
        /* a change settles quickly: look again soon, not a whole interval
         * later; told of changes, look only when told */
        if (r == LSVC_WATCH_SETTLING)
            w->next_poll_ns = now + 20 * 1000000u;
        else
            w->next_poll_ns = w->fs_notified ? 0 : now + svc->watch_interval_ms * 1000000ull;
    }
    return w->next_poll_ns;
}

/* ---- the scheduler ---------------------------------------------------------- */

/* The deadline passed and the watchdog raised the interrupt. victim is the
 * task the hook already stopped, or NULL when the interrupt found this
 * thread waiting. Kill what still holds the service up, then answer the
 * watchdog. */
static void handle_interrupt(lsvc_worker *w, lsvc_task *victim)
{
    lsvc_service *svc = w->svc;
    pthread_mutex_lock(&svc->mu);
    const char *what = svc->deadline_what ? svc->deadline_what : "";
    bool stopping = svc->stop_requested;
    uint32_t timeout = svc->stop_timeout_ms;
    pthread_mutex_unlock(&svc->mu);

    if (stopping) {
        bool first = !w->forced;
        if (first)
            lsvc_log(LSVC_LOG_ERROR, svc->name,
                     "the stop did not complete within stop_timeout (%u ms): "
                     "interrupted; running stop",
                     timeout);
        w->forced = true;
        task_end(w, &w->handler);
        task_end(w, &w->main);
        ack_interrupt(w, first ? lsvc_now_ns() + FINAL_STOP_MS * 1000000u : 0,
                      "stop after interrupt");
        return;
    }
    if (w->reload_phase == LSVC_RELOAD_HOOK && (!victim || victim == &w->handler)) {
        if (!victim)
            task_end(w, &w->handler);
        cancel_reload(w, "the new version's reload() did not finish within stop_timeout");
        ack_interrupt(w, 0, NULL);
        restore_deadline(w);
        return;
    }
    if (w->reload_phase == LSVC_RELOAD_WINDING && !victim) {
        lsvc_log(LSVC_LOG_ERROR, svc->name,
                 "the old run did not return within stop_timeout: interrupted");
        task_end(w, &w->main);
        ack_interrupt(w, 0, NULL);
        finish_reload(w);
        return;
    }
    if (strcmp(what, "start") == 0) {
        lsvc_log(LSVC_LOG_ERROR, svc->name,
                 "start made no progress within its wait hint: interrupted");
        w->forced = true;
        task_end(w, &w->main);
    } else if (victim == &w->handler || (!victim && w->handler.active)) {
        lsvc_log(LSVC_LOG_ERROR, svc->name, "%s did not finish within %u ms: interrupted",
                 w->handler.what, timeout);
        if (!victim) {
            task_end(w, &w->handler);
            control_done(w, &w->handler_ev, false);
        }
    } else if (!victim && w->main.active) {
        lsvc_log(LSVC_LOG_ERROR, svc->name, "%s held up a %s for %u ms: interrupted",
                 w->main.what, what, timeout);
        task_end(w, &w->main);
        w->failed = true;
    }
    ack_interrupt(w, 0, NULL);
}

static bool task_due(const lsvc_task *t, uint64_t now, bool held)
{
    return t->active && (!t->sleeping || (!held && t->wake_ns <= now));
}

/*
 * Drive the main task and the control lane until the main task has ended,
 * no handler is active and (when winding down) the queue is empty.
 * deliver: take controls from the queue.
 */
static void schedule(lsvc_worker *w, bool deliver)
{
    lsvc_service *svc = w->svc;
    for (;;) {
        atomic_store_explicit(&svc->heartbeat_ns, lsvc_now_ns(), memory_order_relaxed);
        if (atomic_load(&svc->interrupt))
            handle_interrupt(w, NULL);
        if (w->forced && deliver) {
            deliver = false; /* past the deadline: no more handlers */
            size_t dropped = lsvc_queue_len(&svc->queue);
            if (dropped)
                lsvc_log(LSVC_LOG_WARNING, svc->name,
                         "%zu queued control(s) not delivered: the stop was forced", dropped);
        }

        bool stopping = lsvc_service_stopping(svc);
        if (stopping && w->reload_phase != LSVC_RELOAD_IDLE) {
            if (w->handler.active && w->reload_phase == LSVC_RELOAD_HOOK)
                task_end(w, &w->handler);
            cancel_reload(w, NULL); /* the stop comes first */
        }
        if (deliver && !stopping && w->reload_pending && !w->handler.active &&
            w->reload_phase == LSVC_RELOAD_IDLE && w->main.active) {
            begin_reload(w);
            continue;
        }
        if (deliver && !w->handler.active && w->reload_phase == LSVC_RELOAD_IDLE) {
            lsvc_event ev;
            if (lsvc_queue_pop(&svc->queue, &ev)) {
                dispatch(w, &ev);
                continue;
            }
        }

        uint64_t now = lsvc_now_ns();
        uint64_t poll_at = (deliver && !stopping && w->reload_phase == LSVC_RELOAD_IDLE)
                               ? watch(w, now)
                               : 0;
        if (w->reload_pending && deliver && !stopping && !w->handler.active &&
            w->reload_phase == LSVC_RELOAD_IDLE && w->main.active)
            continue; /* a change was seen: take it up now, not after another wait */
        lsvc_task *ts[2] = {&w->handler, &w->main};
        bool ran = false;
        for (int i = 0; i < 2; i++) {
            lsvc_task *t = ts[i];
            if (!t->active)
                continue;
            bool wind = stopping || (w->winding && t == &w->main);
            if (wind && t->sleeping && t->wake_ns > now) {
                t->wake_ns = now;
                t->woken_early = true;
            }
            bool held = (t == &w->main) && w->paused && !wind;
            if (!task_due(t, now, held))
                continue;
            task_result r = resume_task(w, t);
            ran = true;
            bool interrupted = r == TASK_FAILED && atomic_load(&svc->interrupt);
            if (t == &w->handler && r != TASK_YIELDED) {
                if (w->reload_phase == LSVC_RELOAD_HOOK) {
                    if (r == TASK_DONE)
                        begin_winding(w);
                    else
                        cancel_reload(w, "the new version's reload() failed (see the log above)");
                } else {
                    control_done(w, &w->handler_ev, r == TASK_DONE);
                }
            }
            if (t == &w->main && r != TASK_YIELDED && w->reload_phase == LSVC_RELOAD_WINDING) {
                if (interrupted) {
                    lsvc_log(LSVC_LOG_ERROR, svc->name,
                             "the old run did not return within stop_timeout: interrupted");
                    ack_interrupt(w, 0, NULL);
                    interrupted = false;
                }
                finish_reload(w); /* an old run's error does not fail the service */
            } else if (t == &w->main && r == TASK_FAILED) {
                w->failed = true;
            }
            if (interrupted)
                handle_interrupt(w, t);
            break; /* re-check interrupts and the queue between resumes */
        }
        if (ran)
            continue;

        bool queue_empty = !deliver || lsvc_queue_len(&svc->queue) == 0;
        if (!w->main.active && !w->handler.active && queue_empty)
            return;

        /* Sleep until the next task is due or something arrives. */
        uint64_t next = poll_at;
        for (int i = 0; i < 2; i++) {
            lsvc_task *t = ts[i];
            bool held = (t == &w->main) && w->paused && !stopping && !w->winding;
            if (t->active && t->sleeping && !held && (!next || t->wake_ns < next))
                next = t->wake_ns ? t->wake_ns : 1;
        }
        lsvc_queue_wait(&svc->queue, next);
    }
}

/* ---- the thread ----------------------------------------------------------------- */

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

static void *worker_main(void *arg)
{
    lsvc_service *svc = arg;
    lsvc_worker w = {.svc = svc, .script_ref = LUA_NOREF, .ctx_ref = LUA_NOREF,
                     .loader_ref = LUA_NOREF, .new_info_ref = LUA_NOREF};
    /* START_PENDING is reported once the state is made: its log line's
     * first time stamp reads the time zone, which the front end's main
     * thread has read by then (posix_console.c). */
    lua_State *L = luaL_newstate();
    if (!L) {
        lsvc_service_set_state(svc, LSVC_START_PENDING, START_WAIT_HINT_MS);
        lsvc_log(LSVC_LOG_ERROR, svc->name, "cannot create a Lua state: out of memory");
        pthread_mutex_lock(&svc->mu);
        svc->load_failed = true;
        pthread_cond_broadcast(&svc->load_cv);
        pthread_mutex_unlock(&svc->mu);
        lsvc_service_set_stopped(svc, (lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR,
                                                  LSVC_EXIT_LOAD_ERROR});
        return NULL;
    }
    w.L = L;
    *(lsvc_worker **)lua_getextraspace(L) = &w; /* copied into every coroutine */
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_COUNT);
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
    lsvc_service_set_state(svc, LSVC_START_PENDING, START_WAIT_HINT_MS);

    lsvc_service_set_deadline(svc, lsvc_now_ns() + START_WAIT_HINT_MS * 1000000ull, "start");
    int ok = load_first(&w) == 0;
    pthread_mutex_lock(&svc->mu);
    svc->loaded = ok;
    svc->load_failed = !ok;
    pthread_cond_broadcast(&svc->load_cv);
    while (ok && !svc->go && !svc->abort_start)
        pthread_cond_wait(&svc->load_cv, &svc->mu);
    bool go = svc->go;
    pthread_mutex_unlock(&svc->mu);

    if (!ok) {
        lsvc_service_set_stopped(svc, (lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR,
                                                  LSVC_EXIT_LOAD_ERROR});
        goto out;
    }
    if (!go) {
        lsvc_log(LSVC_LOG_INFO, svc->name, "not started: another script failed to load");
        lsvc_service_set_stopped(svc, (lsvc_exit){LSVC_NO_ERROR, 0});
        goto out;
    }

    lsvc_push_ctx(L, svc);
    w.ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    /* START_PENDING: start(ctx, args) */
    lsvc_service_set_deadline(svc, lsvc_now_ns() + START_WAIT_HINT_MS * 1000000ull, "start");
    if (push_handler(&w, "start")) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, w.ctx_ref);
        lua_createtable(L, svc->argc, 0);
        for (int i = 0; i < svc->argc; i++) {
            lua_pushstring(L, svc->argv[i]);
            lua_rawseti(L, -2, i + 1);
        }
        task_start(&w, &w.main, 2, "start");
        schedule(&w, false);
    }
    if (w.failed || w.forced) {
        lsvc_service_set_stopped(svc, final_exit(&w));
        goto out;
    }

    /* RUNNING: run(ctx), with controls delivered between its yields */
    if (!lsvc_service_stopping(svc)) {
        lsvc_service_set_state(svc, LSVC_RUNNING, 0);
        lsvc_service_set_deadline(svc, 0, NULL);
        start_run(&w);
        lsvc_reload_watch(&w); /* a change made while starting is seen now */
        w.next_poll_ns = w.fs_notified ? 0
                                       : lsvc_now_ns() + (uint64_t)svc->watch_interval_ms * 1000000u;
        schedule(&w, true);
        /* run has returned, on its own or told to: the service winds down,
         * after the controls already queued. */
        lsvc_service_request_stop(svc);
        schedule(&w, true);
    }
    lsvc_service_request_stop(svc);

    /* STOP_PENDING: stop(ctx), or shutdown(ctx) for a system shutdown */
    pthread_mutex_lock(&svc->mu);
    bool shutdown = svc->stop_code == LSVC_CTRL_SHUTDOWN;
    pthread_mutex_unlock(&svc->mu);
    if ((shutdown && push_handler(&w, "shutdown")) || push_handler(&w, "stop")) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, w.ctx_ref);
        task_start(&w, &w.main, 1, "stop");
        bool was_failed = w.failed;
        w.failed = false;
        schedule(&w, false);
        if (w.failed && !was_failed)
            lsvc_log(LSVC_LOG_ERROR, svc->name, "stop failed; the service stops with an error");
        w.failed = w.failed || was_failed;
    }
    lsvc_service_set_stopped(svc, final_exit(&w));
out:
    pthread_mutex_lock(&svc->mu);
    bool abandoned = svc->abandoned;
    pthread_mutex_unlock(&svc->mu);
    if (!abandoned) {
        lua_close(L);
        lsvc_reload_free(&w);
    }
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
