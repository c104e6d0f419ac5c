/*
 * watchdog.c - one thread per host that enforces deadlines. When a
 * service's deadline passes it raises the service's interrupt flag, wakes
 * its worker's loop, and has the worker's own thread install the interrupt
 * hook (interrupt.c: a reserved signal on POSIX, SuspendThread on Windows);
 * the hook turns the flag into a Lua error (this thread never touches a Lua
 * state). Until the worker answers, the hook is asked for again every
 * REHOOK_NS (a script's finalizer may have cleared it). A slice (one
 * entry into Lua: a luv callback, a spawned task's resume) that runs past
 * its due is interrupted the same way; the worker answers when the slice
 * returns (lsvc_service_slice_end). A worker that has
 * not answered a second later is stuck in a C call: its process tree is
 * ended (the engine's on_abandon, on this thread, within its grace), the
 * service is reported STOPPED with an error and its thread abandoned; a
 * load it had not finished ends there, so the host's barrier lets the
 * others start and the host exits once none runs. The thread
 * sleeps until the next deadline, so an idle host costs nothing.
 */
#include <errno.h>
#include <time.h>

#include "service_impl.h"

#define ABANDON_AFTER_NS 1000000000u
#define REHOOK_NS 100000000u

static uint64_t sooner(uint64_t a, uint64_t b) { return !a || (b && b < a) ? b : a; }

static void raise_interrupt(lsvc_service *svc, uint64_t now)
{
    svc->interrupted_ns = now;
    svc->irq_sent_ns = now;
    atomic_store(&svc->interrupt, 1);
    lsvc_queue_wake(&svc->queue);
    lsvc_irq_raise(&svc->irq);
}

/* Under svc->mu, no interrupt raised: is the slice running past its due
 * (then it is marked interrupted)? Else *next: when to look at it again. */
static bool slice_overrun(lsvc_service *svc, uint64_t now, uint64_t *next)
{
    uint64_t due = atomic_load(&svc->slice_due_ns);
    if (due & 1u) { /* running */
        if (now >= due &&
            atomic_compare_exchange_strong(&svc->slice_due_ns, &due, LSVC_SLICE_OVERRUN))
            return true;
        if (due & 1u) { /* still (or another) running */
            *next = due;
            return false;
        }
    }
    /* none running: while slices came since the last look, look again
     * within one period (a slice begun before then is due after it);
     * after a quiet period, the next slice kicks */
    if (due != svc->slice_seen) {
        svc->slice_seen = due;
        *next = now + (uint64_t)atomic_load(&svc->slice_ms) * 1000000u;
    }
    return false;
}

/* Under svc->mu: act on svc's deadline and its slice at now; returns when
 * to look again (0: no deadline), and sets *abandon when its worker is
 * given up. */
static uint64_t check(lsvc_service *svc, uint64_t now, bool *abandon)
{
    if (svc->abandoned || svc->stopped_reported)
        return 0;
    if (!svc->interrupted_ns) {
        uint64_t slice_next = 0;
        if ((svc->deadline_ns && now >= svc->deadline_ns) || slice_overrun(svc, now, &slice_next))
            raise_interrupt(svc, now);
        else
            return sooner(svc->deadline_ns, slice_next);
    } else if (now >= svc->interrupted_ns + ABANDON_AFTER_NS) {
        svc->abandoned = true;
        *abandon = true;
        return 0;
    } else if (now >= svc->irq_sent_ns + REHOOK_NS) {
        svc->irq_sent_ns = now;
        lsvc_irq_raise(&svc->irq);
    }
    uint64_t rehook = svc->irq_sent_ns + REHOOK_NS,
             give_up = svc->interrupted_ns + ABANDON_AFTER_NS;
    return rehook < give_up ? rehook : give_up;
}

static void *watchdog_main(void *arg)
{
    lsvc_host *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->quitting) {
        /* the kicks counted before this look: one that comes while the look
         * has h->mu released (an abandon's log line) is not lost, the look
         * is made again instead of waiting */
        uint64_t kicks = h->wd_kicks;
        atomic_store(&h->wd_next_ns, 0); /* looking: a slice begun or a deadline set now kicks */
        uint64_t now = lsvc_now_ns(), next = 0;
        for (size_t i = 0; i < h->n; i++) {
            lsvc_service *svc = h->svcs[i];
            bool abandon = false;
            pthread_mutex_lock(&svc->mu);
            const char *what = atomic_load(&svc->slice_due_ns) == LSVC_SLICE_OVERRUN
                                   ? "handler_timeout"
                                   : lsvc_deadline_name(svc->deadline_kind, svc->deadline_code);
            uint64_t due = check(svc, now, &abandon);
            if (due && (!next || due < next))
                next = due;
            pthread_mutex_unlock(&svc->mu);
            if (abandon) {
                pthread_mutex_unlock(&h->mu);
                lsvc_log(LSVC_LOG_ERROR, svc->name,
                         "stuck in a C call past its %s deadline; reported STOPPED, "
                         "its thread abandoned",
                         what);
                lsvc_service_given_up(svc, (lsvc_exit){LSVC_ERROR_PROCESS_ABORTED, 0});
                pthread_mutex_lock(&h->mu);
            }
        }
        atomic_store(&h->wd_next_ns, next);
        if (h->wd_kicks == kicks && !h->quitting)
            lsvc_cond_wait_until(&h->wd_cv, &h->mu, next); /* next 0: until kicked */
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int lsvc_watchdog_start(lsvc_host *h)
{
    int rc = pthread_create(&h->wd_thread, NULL, watchdog_main, h);
    if (rc == 0)
        h->wd_started = true;
    return rc;
}

void lsvc_watchdog_kick(lsvc_host *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->wd_kicks++;
    pthread_cond_broadcast(&h->wd_cv);
    pthread_mutex_unlock(&h->mu);
}

/* A deadline at at_ns was set: the watchdog is woken only when it would
 * not look by then anyway (a handler's deadline, set before each handler,
 * mostly falls after the one the watchdog already sleeps until: it looks
 * then and sleeps again until the new one). */
void lsvc_watchdog_kick_by(lsvc_host *h, uint64_t at_ns)
{
    if (!h)
        return;
    /* the deadline was stored (under svc->mu) before this reads: the
     * watchdog stores its next look (0 while it looks) after reading every
     * deadline, so it has seen this one or looks by the time read here */
    uint64_t look = atomic_load(&h->wd_next_ns);
    if (!look || look > at_ns)
        lsvc_watchdog_kick(h);
}
