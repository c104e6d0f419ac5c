/*
 * sched.c - the scheduler: one turn of the worker's loop, and the answer to
 * an interrupt. It resumes tasks and settles their ends through their
 * kinds (task.h); it knows no kind by name. Worker thread only.
 *
 * One turn: controls first, in arrival order, one handler at a time (a
 * handler that waits holds the next control back: lane.c); then the tasks
 * that became ready before this turn (the lane's handler first, then the
 * others in the order they became ready); then libuv runs what is due, and
 * the script's luv callbacks run there. A control that arrives while
 * libuv runs is delivered as soon as the loop wakes for it, ahead of the
 * callbacks still due (lsvc__sched_woken). A callback never runs while a
 * task is executing; while a task waits, or a sliced task has yielded to
 * the loop at the end of its slice, the others and the callbacks go on.
 *
 * A deadline's interrupt is answered by whoever owns the deadline's kind
 * (registered with lsvc__sched_on_deadline: the lane, the reload), else
 * here: a stop that did not complete, a start that made no progress.
 */
#include <lauxlib.h>
#include <lua.h>

#include "worker.h"

#define FINAL_STOP_MS 400u /* stop's budget after an interrupt */

void lsvc__ack_interrupt(lsvc__worker *w, uint64_t deadline_ns, lsvc_deadline kind)
{
    lsvc_service_ack_interrupt(w->svc, deadline_ns, kind);
}

void lsvc__sched_on_deadline(lsvc__worker *w, lsvc_deadline kind, lsvc__deadline_fn fn)
{
    w->sched.on_deadline[kind] = fn;
}

void lsvc__sched_on_interrupt(lsvc__worker *w, lsvc__deadline_fn fn) { w->sched.on_interrupt = fn; }

static void end_task(lsvc__task *t)
{
    if (t)
        lsvc__task_end(t);
}

/* The stop did not complete in time: end what holds it, stop runs with a
 * short budget (once), then the service stops with error 1460. */
static void interrupted_stop(lsvc__worker *w, uint32_t timeout)
{
    bool first = !w->forced;
    if (first)
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(w->svc),
                 "the stop did not complete within stop_timeout (%u ms): interrupted; running stop",
                 timeout);
    w->forced = true;
    end_task(w->lane.handler);
    end_task(w->main);
    lsvc__ack_interrupt(w, first ? lsvc__ms_from_now(FINAL_STOP_MS) : 0, LSVC_DEADLINE_FINAL);
}

void lsvc__interrupted(lsvc__worker *w, lsvc__victim victim)
{
    lsvc_service *svc = w->svc;
    lsvc_deadline_info d;
    lsvc_service_get_deadline(svc, &d);
    if (d.stopping) {
        interrupted_stop(w, d.stop_timeout_ms);
        return;
    }
    if (d.kind == LSVC_DEADLINE_NONE && victim == LSVC__VICTIM_NONE) {
        /* what it was for ended meanwhile: nothing to end now */
        lsvc__ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
        return;
    }
    if (w->sched.on_interrupt && w->sched.on_interrupt(w, victim))
        return;
    lsvc__deadline_fn fn = w->sched.on_deadline[d.kind];
    if (fn && fn(w, victim))
        return;
    if (d.kind == LSVC_DEADLINE_START) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc),
                 "start made no progress within its wait hint: interrupted");
        w->forced = true;
        end_task(w->main);
    } else if (victim == LSVC__VICTIM_HANDLER || (victim != LSVC__VICTIM_MAIN && w->lane.handler)) {
        lsvc__lane_interrupted(w, NULL, d.stop_timeout_ms);
    } else if (victim != LSVC__VICTIM_MAIN && w->main) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc), "%s held up a %s for %u ms: interrupted",
                 w->main->what, lsvc_deadline_name(d.kind, d.code), d.stop_timeout_ms);
        lsvc__task_end(w->main);
        w->failed = true;
    }
    lsvc__ack_interrupt(w, 0, LSVC_DEADLINE_NONE);
}

/* ---- running a task ------------------------------------------------------ */

void lsvc__run_task(lsvc__worker *w, lsvc__task *t)
{
    const lsvc__kind *kind = t->kind;
    if (kind->resuming)
        kind->resuming(t);
    lsvc__result r = lsvc__task_resume(t);
    if (kind->resumed)
        kind->resumed(t, r);
    if (r == LSVC__TASK_YIELDED)
        return;
    bool interrupted = r == LSVC__TASK_FAILED && lsvc_service_interrupted(w->svc);
    bool (*done)(lsvc__worker *, lsvc__result, bool, void *) = t->done;
    void *ud = t->ud;
    lsvc__task_end(t);
    bool answered = done && done(w, r, interrupted, ud);
    if (interrupted && !answered)
        lsvc__interrupted(w, kind->victim);
}

/* ---- the turn ---------------------------------------------------------------- */

/* One turn; returns whether work is left for another turn at once. */
static bool turn(lsvc__worker *w)
{
    lsvc_service *svc = w->svc;
    w->sched.turn++;
    if (lsvc_service_interrupted(svc)) /* overrun: the heartbeat does not move */
        lsvc__interrupted(w, LSVC__VICTIM_NONE);
    else
        lsvc_service_stamp_heartbeat(svc);
    lsvc_service_set_gauges(svc, &(lsvc_gauges){.lua_bytes = w->alloc.used, .tasks = w->tasks.n});
    if (w->forced && w->lane.deliver) {
        w->lane.deliver = false; /* past the deadline: no more handlers */
        size_t dropped = 0;
        for (lsvc_event ev; lsvc_queue_pop(lsvc_service_queue(svc), &ev);)
            dropped += ev.code != LSVC_CTRL_STOP && ev.code != LSVC_CTRL_SHUTDOWN;
        if (dropped)
            lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(svc),
                     "%zu queued control(s) not delivered: the stop was forced", dropped);
    }
    if (!w->sched.stop_seen && lsvc_service_stopping(svc)) {
        w->sched.stop_seen = true;
        w->alloc.stopping = true; /* memory_limit's reserve: stop still runs */
        if (w->sched.on_stop)
            w->sched.on_stop(w); /* the reload: the stop comes first */
        lsvc__task_wind_all(w);
    }
    lsvc__lane_deliver(w);
    lsvc__task *h = w->lane.handler;
    if (h && h->queued && h->ready_turn < w->sched.turn) {
        lsvc__run_task(w, h); /* controls first */
    }
    for (lsvc__task *t; (t = lsvc__task_pop_ready(w));) {
        lsvc__run_task(w, t);
        if (lsvc_service_interrupted(svc))
            lsvc__interrupted(w, LSVC__VICTIM_NONE);
    }
    lsvc__lane_deliver(w); /* a handler may have ended */
    return lsvc__task_any_ready(w) || lsvc_service_interrupted(svc) || lsvc__lane_waiting(w);
}

void lsvc__schedule(lsvc__worker *w, bool deliver, bool (*done)(lsvc__worker *))
{
    w->lane.deliver = deliver && !w->forced;
    for (;;) {
        bool more = turn(w);
        if (done(w))
            return;
        w->sched.in_loop = true;
        uv_run(&w->loop, more ? UV_RUN_NOWAIT : UV_RUN_ONCE);
        w->sched.in_loop = false;
    }
}

/* A control was queued (or the watch, the watchdog, the notifier woke
 * the loop): controls go ahead of the callbacks still due in this
 * iteration of the loop; the turn after it looks at everything else. */
void lsvc__sched_woken(lsvc__worker *w)
{
    if (w->phase == LSVC__PHASE_RUN && !w->tasks.current)
        lsvc__lane_deliver(w);
}

void lsvc__sched_between_callbacks(lsvc__worker *w)
{
    if (w->phase == LSVC__PHASE_RUN && !lsvc__lane_busy(w) &&
        lsvc_queue_pending(lsvc_service_queue(w->svc)))
        lsvc__lane_deliver(w);
}
