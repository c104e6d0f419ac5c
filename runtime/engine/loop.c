/*
 * loop.c - one turn of the worker's scheduler, and the loop it turns:
 * above the lane (it delivers controls) and below the phases (worker.c
 * turns it until a phase is done). Worker thread only.
 *
 * One turn: controls first, in arrival order, one handler at a time (a
 * handler that waits holds the next control back: lane.c); then the tasks
 * that became ready before this turn (the lane's handler first, then the
 * others in the order they became ready); then libuv runs what is due, and
 * the script's luv callbacks run there. A control that arrives while libuv
 * runs is delivered as soon as the loop wakes for it, ahead of the
 * callbacks still due (lsvc__sched_woken). A callback never runs while a
 * task is executing; while a task waits, or a sliced task has yielded to
 * the loop at the end of its slice, the others and the callbacks go on.
 * What was registered with lsvc__sched_after_tasks runs last in a turn.
 */
#include <lua.h>

#include "private.h"

/* One turn; returns whether work is left for another turn at once. */
static bool turn(lsvc__worker *w)
{
    lsvc_service *svc = w->svc;
    w->sched.turn++;
    if (lsvc_service_interrupted(svc)) /* overrun: the heartbeat does not move */
        lsvc__interrupted(w, LSVC__VICTIM_NONE);
    else
        lsvc_service_stamp_heartbeat(svc);
    lsvc_service_set_gauges(svc, &(lsvc_gauges){.lua_bytes = w->alloc.used,
                                                .tasks = lsvc__task_count(w),
                                                .children = lsvc__ptree_children(w)});
    if (w->forced)
        lsvc__lane_drop_queued(w); /* past the deadline: no more handlers */
    if (!w->sched.stop_seen && lsvc_service_stopping(svc)) {
        w->sched.stop_seen = true;
        w->alloc.stopping = true; /* memory_limit's reserve: stop still runs */
        if (w->sched.on_stop)
            w->sched.on_stop(w); /* the reload: the stop comes first */
        lsvc__task_wind_all(w);
    }
    lsvc__lane_deliver(w);
    lsvc__task *h = lsvc__lane_handler(w);
    if (h && h->queued && h->ready_turn < w->sched.turn)
        lsvc__run_task(w, h); /* controls first */
    for (lsvc__task *t; (t = lsvc__task_pop_ready(w));) {
        lsvc__run_task(w, t);
        if (lsvc_service_interrupted(svc))
            lsvc__interrupted(w, LSVC__VICTIM_NONE);
    }
    lsvc__lane_deliver(w); /* a handler may have ended */
    if (w->sched.after_tasks)
        w->sched.after_tasks(w->sched.after_ud);
    return lsvc__task_any_ready(w) || lsvc_service_interrupted(svc) || lsvc__lane_waiting(w);
}

void lsvc__schedule(lsvc__worker *w, bool deliver, bool (*done)(lsvc__worker *))
{
    lsvc__lane_set_delivery(w, deliver && !w->forced);
    for (;;) {
        bool more = turn(w);
        /* given up in a C call that has returned since: nothing more runs */
        if (done(w) || (lsvc_service_interrupted(w->svc) && lsvc_service_abandoned(w->svc)))
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
    if (w->phase == LSVC__PHASE_RUN && !lsvc__current(w))
        lsvc__lane_deliver(w);
}

void lsvc__sched_between_callbacks(lsvc__worker *w)
{
    if (w->phase == LSVC__PHASE_RUN && !lsvc__lane_busy(w) &&
        lsvc_queue_pending(lsvc_service_queue(w->svc)))
        lsvc__lane_deliver(w);
}

void lsvc__sched_after_tasks(lsvc__worker *w, void (*fn)(void *ud), void *ud)
{
    w->sched.after_tasks = fn;
    w->sched.after_ud = ud;
}
