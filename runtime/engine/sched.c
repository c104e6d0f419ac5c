/*
 * sched.c - the scheduler's core: resuming a task and settling its end
 * through its kind (task.h), and the answer to an interrupt. It knows no
 * kind by name; the turn itself is loop.c's (above the lane). A deadline's
 * interrupt is answered by whoever owns what it was for (registered with
 * lsvc__sched_on_interrupt: the lane, the reload), else here: a stop that
 * did not complete, a start that made no progress, a main task that held
 * up a pending control. Worker thread only.
 */
#include <lauxlib.h>
#include <lua.h>

#include "private.h"

#define FINAL_STOP_MS 400u /* stop's budget after an interrupt */

void lsvc__ack_interrupt(lsvc__worker *w, uint64_t deadline_ns, lsvc_deadline kind)
{
    lsvc_service_ack_interrupt(w->svc, deadline_ns, kind);
}

void lsvc__sched_on_interrupt(lsvc__worker *w, lsvc__deadline_fn fn)
{
    if (w->sched.nanswers < 4)
        w->sched.answers[w->sched.nanswers++] = fn;
}

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
    end_task(lsvc__task_of_victim(w, LSVC__VICTIM_HANDLER)); /* a control's handler, reload() */
    end_task(lsvc__main(w));
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
    for (int i = w->sched.nanswers - 1; i >= 0; i--)
        if (w->sched.answers[i](w, victim))
            return;
    lsvc__task *main = lsvc__main(w);
    if (d.kind == LSVC_DEADLINE_START) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc),
                 "start made no progress within its wait hint: interrupted");
        w->forced = true;
        end_task(main);
    } else if (victim != LSVC__VICTIM_MAIN && main) {
        lsvc_log(LSVC_LOG_ERROR, lsvc_service_name(svc), "%s held up a %s for %u ms: interrupted",
                 main->what, lsvc_deadline_name(d.kind, d.code), d.stop_timeout_ms);
        lsvc__task_end(main);
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
