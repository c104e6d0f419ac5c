/*
 * lane.c - the control lane: a queued control to its handler, one at a
 * time, and what follows its end (PAUSED, back to RUNNING, ...). A
 * handler is a task of the control kind: it may wait, and holds the lane
 * meanwhile (the next control waits; run, other tasks and callbacks go
 * on). STOP and SHUTDOWN have no handler here: run is told (its waits
 * end), and worker.c runs stop once run has returned. A control with no
 * handler of the script's is settled at once. A console's eval (eval.c)
 * is delivered in the same order and holds the lane as a handler does. What the lane does not own
 * (a hot reload's steps) is registered with it (lsvc__lane_register).
 * Worker thread only.
 */
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>

#include "private.h"

/* ---- the front end's reload notice -------------------------------------- */

void lsvc__tell_reloading(lsvc__worker *w, bool begin)
{
    if (w->lane.reload_told == begin)
        return;
    w->lane.reload_told = begin;
    lsvc_service_tell_reloading(w->svc, begin);
}

void lsvc__restore_deadline(lsvc__worker *w)
{
    lsvc_status st;
    lsvc_service_get_status(w->svc, &st);
    if (!lsvc_service_stopping(w->svc)) {
        bool pending = lsvc_state_is_pending(st.state);
        lsvc_service_set_deadline(
            w->svc, pending ? lsvc__ms_from_now(lsvc_service_stop_timeout(w->svc)) : 0,
            LSVC_DEADLINE_CONTROL);
    }
}

/* ---- after a handler ---------------------------------------------------------- */

void lsvc__control_done(lsvc__worker *w, const lsvc_event *ev, bool ok)
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
            lsvc__ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
    } /* else the interrupt's answer (lsvc__interrupted) clears it */
    if (ev->code == LSVC_CTRL_PARAMCHANGE && !(w->lane.hooks.busy && w->lane.hooks.busy(w)))
        lsvc__tell_reloading(w, false); /* its handler ran, or it was dropped */
    if (lsvc_service_stopping(svc))
        return;
    if (ev->code == LSVC_CTRL_PAUSE) {
        lsvc__task_set_paused(w, ok); /* PAUSED is the scheduler's rule (task.c) */
        lsvc_service_set_state(svc, ok ? LSVC_PAUSED : LSVC_RUNNING, 0);
    } else if (ev->code == LSVC_CTRL_CONTINUE) {
        lsvc__task_set_paused(w, !ok);
        lsvc_service_set_state(svc, ok ? LSVC_RUNNING : LSVC_PAUSED, 0);
    }
}

/* The control kind: a handler holds the lane; its waits end at a stop
 * (preshutdown's hold, as stop's do); it ends in lsvc__control_done. */
static bool control_ended(lsvc__worker *w, lsvc__result r, bool interrupted, void *ud)
{
    (void)interrupted;
    (void)ud;
    lsvc_event ev = w->lane.ev;
    lsvc__control_done(w, &ev, r == LSVC__TASK_DONE);
    return false;
}

static const lsvc__kind control_kind = {
    .name = "control",
    .can_wait = true,
    .winds_down = true,
    .holds_lane = true,
    .victim = LSVC__VICTIM_HANDLER,
    .done = control_ended,
};

void lsvc__lane_interrupted(lsvc__worker *w, const char *why, uint32_t ms)
{
    lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc), "%s did not finish within %s%s%u ms%s: interrupted",
             w->lane.what, why ? why : "", why ? " (" : "", ms, why ? ")" : "");
    if (w->lane.handler) {
        lsvc_event ev = w->lane.ev;
        lsvc__task_end(w->lane.handler);
        lsvc__control_done(w, &ev, false);
    }
}

/* The lane's answer to an interrupt: a handler ran (or waited) past
 * handler_timeout, or past a pending state's deadline: it ends, the
 * service goes on, the next control is delivered. */
static bool lane_answer(lsvc__worker *w, lsvc__victim victim)
{
    lsvc_deadline_info d;
    lsvc_service_get_deadline(w->svc, &d);
    if (d.kind == LSVC_DEADLINE_HANDLER) {
        lsvc__lane_interrupted(w, "handler_timeout", w->handler_timeout_ms);
        if (victim == LSVC__VICTIM_MAIN || victim == LSVC__VICTIM_OTHER)
            lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
                     "(the code running then was interrupted)");
    } else if (d.kind != LSVC_DEADLINE_START &&
               (victim == LSVC__VICTIM_HANDLER || (victim != LSVC__VICTIM_MAIN && w->lane.handler))) {
        lsvc__lane_interrupted(w, NULL, d.stop_timeout_ms);
    } else {
        return false;
    }
    lsvc__ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
    return true;
}

/* ---- a control to its handler ------------------------------------------------- */

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
static int push_control_args(lsvc__worker *w, const lsvc_event *ev)
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
static int push_user_handler(lsvc__worker *w, const lsvc_event *ev)
{
    lua_State *L = w->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->script_ref);
    if (!lsvc__get(w, "S", "controls"))
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
static void settle(lsvc__worker *w, const lsvc_event *ev)
{
    lsvc_service_count_delivery(w->svc, ev->arrived_ns);
    if (ev->code == LSVC_CTRL_PARAMCHANGE && w->lane.hooks.asked) { /* the default: reload */
        lsvc_log(LSVC_LOG_INFO, lsvc_service_name(w->svc), "paramchange: reloading %s",
                 lsvc_service_script(w->svc));
        w->lane.hooks.asked(w);
    }
    if (ev->code != LSVC_CTRL_STOP && ev->code != LSVC_CTRL_SHUTDOWN &&
        ev->code < LSVC_CTRL_USER_MIN)
        lsvc__control_done(w, ev, true);
}

void lsvc__lane_hold(lsvc__worker *w, lsvc__task *t, const char *what)
{
    lsvc__task_own(t, &w->lane.handler);
    w->lane.ev = (lsvc_event){0};
    snprintf(w->lane.what, sizeof w->lane.what, "%s", what);
}

/* Deliver one control: start its handler as a task, or settle it at once.
 * A console's eval is a task of eval.c's kind, held as a handler is. */
static void dispatch(lsvc__worker *w, const lsvc_event *ev)
{
    if (ev->code == LSVC_CTRL_CONSOLE) {
        lsvc__task *t = lsvc__eval_begin(w, ev->console);
        if (t) {
            lsvc__task_own(t, &w->lane.handler);
            w->lane.ev = *ev;
            snprintf(w->lane.what, sizeof w->lane.what, "eval");
        }
        return;
    }
    const char *field = handler_field(ev->code);
    if (ev->code == LSVC_CTRL_PARAMCHANGE)
        lsvc__tell_reloading(w, true);
    bool user = ev->code >= LSVC_CTRL_USER_MIN;
    if ((!user && (!field || !lsvc__push_handler(w, field))) || (user && !push_user_handler(w, ev))) {
        settle(w, ev);
        return;
    }
    if (user)
        snprintf(w->lane.what, sizeof w->lane.what, "controls[%u]", ev->code);
    else
        snprintf(w->lane.what, sizeof w->lane.what, "%s", field);
    int nargs = push_control_args(w, ev);
    lsvc__task *t = lsvc__task_new(w, w->L, &control_kind, nargs, w->lane.what);
    t->winds_down = ev->code != LSVC_CTRL_PRESHUTDOWN; /* it may wait, as stop */
    lsvc__task_own(t, &w->lane.handler);
    w->lane.ev = *ev;
    /* latency is taken at its first resume: now, as the lane runs it next */
    lsvc_service_count_delivery(w->svc, ev->arrived_ns);
    /* handler_timeout, where no pending state's deadline holds already */
    if (w->handler_timeout_ms)
        lsvc_service_set_deadline_if_none(w->svc, lsvc__ms_from_now(w->handler_timeout_ms),
                                          LSVC_DEADLINE_HANDLER);
}

/* ---- the lane ---------------------------------------------------------------------- */

bool lsvc__lane_busy(lsvc__worker *w) { return w->lane.handler != NULL; }

lsvc__task *lsvc__lane_handler(lsvc__worker *w) { return w->lane.handler; }

void lsvc__lane_set_delivery(lsvc__worker *w, bool deliver) { w->lane.deliver = deliver; }

bool lsvc__lane_delivering(lsvc__worker *w) { return w->lane.deliver; }

bool lsvc__lane_idle(lsvc__worker *w)
{
    return !w->lane.handler &&
           (!w->lane.deliver || lsvc_queue_len(lsvc_service_queue(w->svc)) == 0);
}

void lsvc__lane_drop_queued(lsvc__worker *w)
{
    if (!w->lane.deliver)
        return;
    w->lane.deliver = false;
    size_t dropped = 0;
    for (lsvc_event ev; lsvc_queue_pop(lsvc_service_queue(w->svc), &ev);) {
        if (ev.console)
            lsvc__eval_refuse(w, ev.console, "the stop was forced before the eval ran");
        dropped += ev.code != LSVC_CTRL_STOP && ev.code != LSVC_CTRL_SHUTDOWN;
    }
    if (dropped)
        lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(w->svc),
                 "%zu queued control(s) not delivered: the stop was forced", dropped);
}

bool lsvc__lane_waiting(lsvc__worker *w)
{
    return w->lane.deliver && !w->lane.handler && !w->lane.step_holds &&
           lsvc_queue_len(lsvc_service_queue(w->svc)) > 0;
}

void lsvc__lane_deliver(lsvc__worker *w)
{
    lsvc_event ev;
    for (;;) {
        if (w->lane.handler)
            return;
        if (w->lane.hooks.step) {
            w->lane.step_holds = w->lane.hooks.step(w);
            if (w->lane.handler) {
                lsvc__run_task(w, w->lane.handler);
                continue;
            }
            if (w->lane.step_holds)
                return;
        }
        if (!w->lane.deliver || !lsvc_queue_pop(lsvc_service_queue(w->svc), &ev))
            return;
        dispatch(w, &ev);
        if (w->lane.handler)
            lsvc__run_task(w, w->lane.handler);
    }
}

void lsvc__lane_register(lsvc__worker *w, const lsvc__lane_hooks *hooks) { w->lane.hooks = *hooks; }

void lsvc__lane_open(lsvc__worker *w)
{
    lsvc__sched_on_interrupt(w, lane_answer);
}
