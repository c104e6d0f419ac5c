/*
 * worker.c - the per-service worker thread. It alone owns the service's
 * lua_State and its libuv loop, and its scheduler is that loop: the thread
 * waits nowhere else (but at the host's start barrier, before the loop
 * turns). It loads and validates the script, runs start, then run as a
 * task, delivers queued controls to the script's handlers, and runs stop
 * once run has returned; then it closes every handle the script left
 * open, ends its children, and reports STOPPED.
 *
 * What wakes the loop: its `wake` (a control was queued, the fs
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
#ifdef __linux__
#include <sys/eventfd.h>
#include <unistd.h>
#endif

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "worker.h"

#define FINAL_STOP_MS 400u /* stop's budget after an interrupt */
#define GRACE_MIN_MS 100u  /* children's time between SIGTERM and SIGKILL ... */
#define GRACE_MAX_MS 2000u /* ... within what is left of stop_timeout */

int luaopen_lfs(lua_State *L);
int luaopen_cjson(lua_State *L);

lsvc_worker *lsvc_worker_of(lua_State *L) { return *(lsvc_worker **)lua_getextraspace(L); }

lsvc_service *lsvc_worker_service(lua_State *L) { return lsvc_worker_of(L)->svc; }

static uint64_t ms_from_now(uint32_t ms) { return lsvc_now_ns() + (uint64_t)ms * 1000000u; }

/* ---- the interrupt --------------------------------------------------------- */

void lsvc_worker_ack_interrupt(lsvc_worker *w, uint64_t deadline_ns, lsvc_deadline kind)
{
    lsvc_service_ack_interrupt(w->svc, deadline_ns, kind);
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
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
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
    lsvc_deadline_info d;
    lsvc_service_get_deadline(svc, &d);
    lsvc_deadline kind = d.kind;
    const char *what = lsvc_deadline_name(kind, d.code);
    bool stopping = d.stopping;
    uint32_t timeout = d.stop_timeout_ms;

    if (stopping) {
        interrupted_stop(w, timeout);
        return;
    }
    if (kind == LSVC_DEADLINE_NONE && victim == LSVC_VICTIM_NONE) {
        /* what it was for ended meanwhile: nothing to end now */
        lsvc_worker_ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
        return;
    }
    if (lsvc_reload_interrupted(w, victim))
        return;
    if (kind == LSVC_DEADLINE_HANDLER) {
        /* a handler ran (or waited) past handler_timeout: it ends, the
         * service goes on, the next control is delivered */
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc),
                 "%s did not finish within handler_timeout (%u ms): interrupted", w->handler_what,
                 w->handler_timeout_ms);
        if (victim == LSVC_VICTIM_MAIN || victim == LSVC_VICTIM_OTHER)
            lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc),
                     "(the code running then was interrupted)");
        if (w->handler) {
            lsvc_event ev = w->handler_ev;
            lsvc_task_end(w->handler);
            lsvc_worker_control_done(w, &ev, false);
        }
        lsvc_worker_ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
        return;
    }
    if (kind == LSVC_DEADLINE_START) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc),
                 "start made no progress within its wait hint: interrupted");
        w->forced = true;
        end_task(w->main);
    } else if (victim == LSVC_VICTIM_HANDLER || (victim != LSVC_VICTIM_MAIN && w->handler)) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc),
                 "%s did not finish within %u ms: interrupted", w->handler_what, timeout);
        if (w->handler) {
            lsvc_event ev = w->handler_ev;
            lsvc_task_end(w->handler);
            lsvc_worker_control_done(w, &ev, false);
        }
    } else if (victim != LSVC_VICTIM_MAIN && w->main) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc), "%s held up a %s for %u ms: interrupted",
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

/* [t, k] -> t[k]: the script's metamethods run under the caller's pcall */
static int get_k(lua_State *L)
{
    lua_gettable(L, 1);
    return 1;
}

int lsvc_worker_get(lsvc_worker *w, const char *what, const char *field)
{
    lua_State *L = w->L;
    if (w->broken) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1) && !lua_getmetatable(L, -1)) {
        lua_pop(L, 1); /* not indexable: nothing there */
        lua_pushnil(L);
        return 1;
    } else if (!lua_istable(L, -1)) {
        lua_pop(L, 1); /* the metatable */
    }
    lua_pushcfunction(L, get_k);
    lua_insert(L, -2);
    lua_pushstring(L, field);
    lua_State *prev = w->running;
    w->running = L; /* an __index that loops is interrupted like any Lua */
    int rc = lua_pcall(L, 2, 1, 0);
    w->running = prev;
    if (rc == LUA_OK)
        return 1;
    lsvc_worker_broken(w, what, field);
    return 0;
}

void lsvc_worker_broken(lsvc_worker *w, const char *what, const char *field)
{
    lua_State *L = w->L;
    if (!w->broken) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
                 "reading %s.%s raised an error: %s; the service stops (exit code %u)", what, field,
                 lsvc_worker_error_text(L, -1), (unsigned)LSVC_EXIT_LOAD_ERROR);
        lua_pop(L, 1);
        w->broken = true;
        w->failed = true;
        w->exit_set = true;
        w->exit_code = LSVC_EXIT_LOAD_ERROR;
        lsvc_service_request_stop(w->svc);
    }
    lua_pop(L, 1);
}

static int tostring_k(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

const char *lsvc_worker_error_text(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) {
        lua_pushvalue(L, idx);
        return lua_tostring(L, -1);
    }
    lua_pushcfunction(L, tostring_k);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
    }
    return lua_tostring(L, -1);
}

static char exit_key; /* the registry's os.exit error object */

bool lsvc_worker_is_exit(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &exit_key);
    bool is = lua_rawequal(L, idx, -1);
    lua_pop(L, 1);
    return is;
}

/* os.exit([code]): the service stops with code (true: 0, false: 1), as
 * ctx:exit does, and the task (or callback) calling it ends; the process
 * goes on for the other services. Not at a top level being loaded. */
static int os_exit(lua_State *L)
{
    lsvc_worker *w = lsvc_worker_of(L);
    lua_Integer code = lua_isboolean(L, 1) ? !lua_toboolean(L, 1) : luaL_optinteger(L, 1, 0);
    if (w->loading)
        return luaL_error(L, "os.exit at the top level of a script: refused (it would stop the "
                             "service while loading; return the script's table)");
    lsvc_log(LSVC_LOG_INFO, lsvc_service_name(w->svc), "os.exit(%d): the service stops", (int)code);
    lsvc_worker_exit(w, (uint32_t)code);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &exit_key);
    return lua_error(L);
}

static int exit_tostring(lua_State *L)
{
    lua_pushliteral(L, "os.exit: the service stops");
    return 1;
}

static void open_exit(lua_State *L)
{
    lua_newtable(L);
    lua_newtable(L);
    lua_pushcfunction(L, exit_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &exit_key);
    lua_getglobal(L, "os");
    lua_pushcfunction(L, os_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
}

int lsvc_worker_push_handler(lsvc_worker *w, const char *field)
{
    lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->script_ref);
    if (!lsvc_worker_get(w, "S", field))
        return 0;
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
    lsvc_service_tell_reloading(w->svc, begin);
}

void lsvc_worker_restore_deadline(lsvc_worker *w)
{
    lsvc_status st;
    lsvc_service_get_status(w->svc, &st);
    if (!lsvc_service_stopping(w->svc)) {
        bool pending = lsvc_state_is_pending(st.state);
        lsvc_service_set_deadline(w->svc,
                                  pending ? ms_from_now(lsvc_service_stop_timeout(w->svc)) : 0,
                                  LSVC_DEADLINE_CONTROL);
    }
}

void lsvc_worker_control_done(lsvc_worker *w, const lsvc_event *ev, bool ok)
{
    lsvc_service *svc = w->svc;
    if (!lsvc_service_interrupted(svc)) {
        lsvc_service_clear_deadline(svc, LSVC_DEADLINE_HANDLER);
    } else if (ok) {
        /* it ended just as its handler_timeout passed: the interrupt is
         * for nothing now (not for the next handler) */
        lsvc_deadline_info d;
        lsvc_service_get_deadline(svc, &d);
        if (d.kind == LSVC_DEADLINE_HANDLER)
            lsvc_worker_ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
    } /* else the interrupt's answer (lsvc_worker_interrupted) clears it */
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
    if (!lsvc_worker_get(w, "S", "controls"))
        return 0;
    if (lua_istable(L, -1))
        lua_rawgeti(L, -1, ev->code);
    else
        lua_pushnil(L);
    lua_remove(L, -2);
    if (lua_isfunction(L, -1))
        return 1;
    lua_pop(L, 1); /* the handler went away (reload) */
    lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(w->svc), "control %u: no handler", ev->code);
    return 0;
}

/* A control with no handler of the script's: settle it at once. */
static void settle(lsvc_worker *w, const lsvc_event *ev)
{
    lsvc_service_count_delivery(w->svc, ev->arrived_ns);
    if (ev->code == LSVC_CTRL_PARAMCHANGE) { /* the default: reload the script */
        lsvc_log(LSVC_LOG_INFO, lsvc_service_name(w->svc), "paramchange: reloading %s",
                 lsvc_service_script(w->svc));
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
    /* handler_timeout, where no pending state's deadline holds already */
    if (w->handler_timeout_ms)
        lsvc_service_set_deadline_if_none(w->svc, ms_from_now(w->handler_timeout_ms),
                                          LSVC_DEADLINE_HANDLER);
}

/* ---- the scheduler ------------------------------------------------------------------ */

/* Resume t once and settle what its end means. */
static void run_task(lsvc_worker *w, lsvc_task *t)
{
    bool is_handler = t == w->handler, is_main = t == w->main;
    bool new_reload = is_handler && w->reload_phase == LSVC_RELOAD_HOOK;
    if (new_reload)
        lsvc_reload_hook_resuming(w);
    lsvc_task_result r = lsvc_task_resume(t);
    if (new_reload)
        lsvc_reload_hook_resumed(w);
    if (r == LSVC_TASK_YIELDED)
        return;
    bool interrupted = r == LSVC_TASK_FAILED && lsvc_service_interrupted(w->svc);
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
        if (!w->deliver ||
            (w->reload_phase != LSVC_RELOAD_IDLE && w->reload_phase != LSVC_RELOAD_LOADING) ||
            !lsvc_queue_pop(lsvc_service_queue(w->svc), &ev))
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
    if (lsvc_service_interrupted(svc)) /* overrun: the heartbeat does not move */
        lsvc_worker_interrupted(w, LSVC_VICTIM_NONE);
    else
        lsvc_service_stamp_heartbeat(svc);
    lsvc_service_set_gauges(svc, &(lsvc_gauges){.lua_bytes = w->alloc.used, .tasks = w->ntasks});
    if (w->forced && w->deliver) {
        w->deliver = false; /* past the deadline: no more handlers */
        size_t dropped = 0;
        for (lsvc_event ev; lsvc_queue_pop(lsvc_service_queue(svc), &ev);)
            dropped += ev.code != LSVC_CTRL_STOP && ev.code != LSVC_CTRL_SHUTDOWN;
        if (dropped)
            lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(svc),
                     "%zu queued control(s) not delivered: the stop was forced", dropped);
    }
    if (!w->stop_seen && lsvc_service_stopping(svc)) {
        w->stop_seen = true;
        w->alloc.stopping = true; /* memory_limit's reserve: stop still runs */
        if (w->reload_phase != LSVC_RELOAD_IDLE)
            lsvc_reload_cancel(w, NULL); /* the stop comes first */
        lsvc_task_wind_all(w);
    }
    lsvc_worker_deliver(w);
    if (w->handler && w->handler->queued && w->handler->ready_turn < w->turn)
        run_task(w, w->handler); /* controls first */
    for (lsvc_task *t; (t = lsvc_task_pop_ready(w));) {
        run_task(w, t);
        if (lsvc_service_interrupted(svc))
            lsvc_worker_interrupted(w, LSVC_VICTIM_NONE);
    }
    lsvc_worker_deliver(w); /* a handler may have ended */
    return w->ready_head || lsvc_service_interrupted(svc) ||
           (w->deliver && !w->handler && w->reload_phase == LSVC_RELOAD_IDLE &&
            lsvc_queue_len(lsvc_service_queue(svc)) > 0);
}

/* Turn the loop until done(w). */
static void schedule(lsvc_worker *w, bool deliver, bool (*done)(lsvc_worker *))
{
    w->deliver = deliver && !w->forced;
    for (;;) {
        bool more = turn(w);
        if (done(w))
            return;
        w->in_loop = true;
        uv_run(&w->loop, more ? UV_RUN_NOWAIT : UV_RUN_ONCE);
        w->in_loop = false;
    }
}

static bool main_done(lsvc_worker *w) { return !w->main; }

static bool run_done(lsvc_worker *w)
{
    return !w->main && !w->handler &&
           (!w->deliver || lsvc_queue_len(lsvc_service_queue(w->svc)) == 0);
}

/* ---- the thread, by phase -------------------------------------------------------------- */

/* A control was queued (or the watch, the watchdog, the notifier woke
 * the loop): controls go ahead of the callbacks still due in this
 * iteration of the loop; the turn after it looks at everything else. */
static void on_wake(lsvc_worker *w)
{
    if (w->phase == LSVC_PHASE_RUN && !w->current)
        lsvc_worker_deliver(w);
}

void lsvc_worker_between_callbacks(lsvc_worker *w)
{
    if (w->phase == LSVC_PHASE_RUN && !w->handler && !w->closing_refused &&
        lsvc_queue_pending(lsvc_service_queue(w->svc)))
        lsvc_worker_deliver(w);
}

/* The loop's wake (the queue's waker, any thread). On Linux an eventfd
 * under a uv_poll_t: with libuv 1.44 (Debian 12's) a uv_async_send has
 * the woken loop spin, then yield, until the sender's write() returns,
 * which on a VM costs about 30 us on top of the wake itself (the poll's
 * callback runs as soon as the thread does). Elsewhere a uv_async_t. */
static lsvc_worker *of_wake(void *h) { return (lsvc_worker *)((char *)h - offsetof(lsvc_worker, wake)); }

#ifdef __linux__
static void on_wake_fd(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    lsvc_worker *w = of_wake(h);
    uint64_t n;
    while (read(w->wake.fd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    on_wake(w);
}

static int wake_init(lsvc_worker *w)
{
    w->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->wake.fd < 0)
        return -1;
    if (uv_poll_init(&w->loop, &w->wake.h, w->wake.fd) != 0) {
        close(w->wake.fd);
        return -1;
    }
    w->wake.h.data = NULL; /* the runtime's own handles: data NULL (uvlua.c) */
    uv_poll_start(&w->wake.h, UV_READABLE, on_wake_fd);
    return 0;
}

static void wake_loop(void *ud)
{
    lsvc_worker *w = ud;
    uint64_t one = 1; /* never EAGAIN: the loop reads the count back to 0 */
    while (write(w->wake.fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static void close_wake_fd(uv_handle_t *h) { close(of_wake(h)->wake.fd); }

static void wake_close(lsvc_worker *w) { uv_close((uv_handle_t *)&w->wake.h, close_wake_fd); }
#else
static void on_wake_async(uv_async_t *a) { on_wake(of_wake(a)); }

static int wake_init(lsvc_worker *w)
{
    if (uv_async_init(&w->loop, &w->wake, on_wake_async) != 0)
        return -1;
    w->wake.data = NULL; /* the runtime's own handles: data NULL (uvlua.c) */
    return 0;
}

static void wake_loop(void *ud)
{
    lsvc_worker *w = ud;
    uv_async_send(&w->wake);
}

static void wake_close(lsvc_worker *w) { uv_close((uv_handle_t *)&w->wake, NULL); }
#endif

/* The state's allocator: memory_limit holds while the script's Lua runs
 * (under a protected call: a refusal is a Lua error there); the runtime's
 * own calls between them are never refused for it. */
static void *worker_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    lsvc_worker *w = ud;
    size_t limit = w->alloc.limit;
    if (w->running || !limit)
        return lsvc_lua_alloc(&w->alloc, ptr, osize, nsize);
    w->alloc.limit = 0;
    void *p = lsvc_lua_alloc(&w->alloc, ptr, osize, nsize);
    w->alloc.limit = limit;
    return p;
}

/* An error outside any protected call (a defect of the runtime's): the
 * service is reported STOPPED and its thread ends here, so the process
 * and the other services go on. */
static int on_panic(lua_State *L)
{
    lsvc_worker *w = lsvc_worker_of(L);
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
    lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
             "internal: unprotected error in the Lua state (%s); the service is abandoned", msg);
    lsvc_service_abandon(w->svc, (lsvc_exit){LSVC_ERROR_PROCESS_ABORTED, 0});
    pthread_exit(NULL);
    return 0;
}

/* The Lua state and the loop; START_PENDING. false: out of memory (or fds). */
static bool worker_init(lsvc_worker *w)
{
    lsvc_service *svc = w->svc;
    w->alloc.reserve = LSVC_ALLOC_RESERVE;
    lua_State *L = lua_newstate(worker_alloc, w);
    if (L)
        lua_atpanic(L, on_panic);
    bool loop = uv_loop_init(&w->loop) == 0;
    if (!L || !loop || wake_init(w) != 0) {
        if (L)
            lua_close(L);
        if (loop)
            uv_loop_close(&w->loop);
        lsvc_service_set_state(svc, LSVC_START_PENDING, LSVC_START_WAIT_HINT_MS);
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc),
                 "cannot create a Lua state or loop: out of memory (or descriptors)");
        return false;
    }
    w->L = L;
    /* The runtime's own setup (the libraries, the loader, the contract)
     * leaves little garbage: no collection until the script's code runs
     * (phase_load), which saves a start a few incremental steps. */
    lua_gc(L, LUA_GCSTOP);
    *(lsvc_worker **)lua_getextraspace(L) = w; /* copied into every coroutine */
    uv_timer_init(&w->loop, &w->watch_timer);
    w->watch_timer.data = NULL;
    lsvc_queue_set_waker(lsvc_service_queue(svc), wake_loop, w);
    luaL_openlibs(L);
    open_exit(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, lsvc_open_luasvc);
    lua_setfield(L, -2, "luasvc");
    lua_pushcfunction(L, luaopen_lfs);
    lua_setfield(L, -2, "lfs");
    lua_pushcfunction(L, luaopen_cjson);
    lua_setfield(L, -2, "cjson");
    lua_pushcfunction(L, lsvc_open_http); /* http.c: luasvc.http */
    lua_setfield(L, -2, "luasvc.http");
    lua_setwarnf(L, lsvc_lua_warn, svc); /* luawarn.c: warn() to the log */
    lua_pop(L, 1);
    lsvc_uvlua_open(w);
    lsvc_task_open(w); /* binds the interrupt to this thread */
    lsvc_service_set_state(svc, LSVC_START_PENDING, LSVC_START_WAIT_HINT_MS);
    return true;
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
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc), "%s", err);
        ok = false;
    }
    if (ok) {
        lsvc_reload_apply(w, -1, true);
        lua_pop(w->L, 1);
    }
    lsvc_service_loaded(svc, ok);
    bool go = ok && lsvc_service_wait_release(svc);
    if (!ok) {
        w->failed = true;
        w->exit_set = true;
        w->exit_code = LSVC_EXIT_LOAD_ERROR;
        return false;
    }
    if (!go)
        lsvc_log(LSVC_LOG_INFO, lsvc_service_name(svc), "%s",
                 lsvc_host_any_load_failed(lsvc_service_host(svc))
                     ? "not started: another script failed to load"
                     : "not started: the host gave up before starting its services (see above)");
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
        lua_createtable(L, lsvc_service_options(svc)->argc, 0);
        for (int i = 0; i < lsvc_service_options(svc)->argc; i++) {
            lua_pushstring(L, lsvc_service_options(svc)->argv[i]);
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
    w->alloc.stopping = true;
    lsvc_deadline_info d;
    lsvc_service_get_deadline(svc, &d);
    bool shutdown = d.stop_code == LSVC_CTRL_SHUTDOWN;
    if ((shutdown && lsvc_worker_push_handler(w, "shutdown")) ||
        lsvc_worker_push_handler(w, "stop")) {
        lua_rawgeti(w->L, LUA_REGISTRYINDEX, w->ctx_ref);
        w->main = lsvc_task_new(w, w->L, LSVC_TASK_MAIN, 1, "stop");
        w->main->winds_down = false; /* stop may wait, within stop_timeout */
        bool was_failed = w->failed;
        w->failed = false;
        schedule(w, false, main_done);
        if (w->failed && !was_failed)
            lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc),
                     "stop failed; the service stops with an error");
        w->failed = w->failed || was_failed;
    }
}

/* The children's grace: what is left of stop_timeout, within bounds. */
static uint32_t grace_ms(lsvc_worker *w)
{
    lsvc_deadline_info d;
    lsvc_service_get_deadline(w->svc, &d);
    uint64_t due = d.kind == LSVC_DEADLINE_STOP ? d.at_ns : 0;
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
    lsvc_queue_set_waker(lsvc_service_queue(w->svc), NULL, NULL);
    wake_close(w);
    uv_close((uv_handle_t *)&w->watch_timer, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (lsvc_service_interrupted(w->svc))
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
    if (lsvc_service_worker_ending(svc))
        return;
    lua_close(w->L);
    lsvc_reload_free(w);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&w->loop) != 0)
        lsvc_log(LSVC_LOG_DEBUG, lsvc_service_name(svc), "the loop had handles left at exit");
}

static void *worker_main(void *arg)
{
    lsvc_service *svc = arg;
    lsvc_worker w = {.svc = svc,
                     .script_ref = LUA_NOREF,
                     .ctx_ref = LUA_NOREF,
                     .loader_ref = LUA_NOREF,
                     .new_info_ref = LUA_NOREF};
    if (!worker_init(&w)) {
        lsvc_service_loaded(svc, false);
        lsvc_service_set_stopped(
            svc, (lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR, LSVC_EXIT_LOAD_ERROR});
        lsvc_service_worker_ended(svc);
        return NULL;
    }
    if (phase_load(&w) && phase_start(&w)) {
        phase_run(&w);
        phase_stop(&w);
    }
    phase_close(&w);
    lsvc_service_set_stopped(svc, final_exit(&w));
    worker_free(&w);
    lsvc_service_worker_ended(svc);
    return NULL;
}

int lsvc_worker_start(lsvc_service *svc)
{
    return lsvc_service_spawn(svc, worker_main, svc, 1u << 20);
}
