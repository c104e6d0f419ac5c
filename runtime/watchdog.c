/*
 * watchdog.c - one thread per host that enforces deadlines. When a
 * service's deadline passes it raises the service's interrupt flag and wakes
 * its worker; the worker's own count hook turns the flag into a Lua error
 * (this thread never touches a Lua state, not even lua_sethook). A worker
 * that has not answered the interrupt a second later is stuck in a C call:
 * the service is reported STOPPED with an error and its thread abandoned.
 * The thread sleeps until the next deadline, so an idle host costs nothing.
 */
#include <errno.h>
#include <time.h>

#include "luasvc.h"

#define ABANDON_AFTER_NS 1000000000u

static void *watchdog_main(void *arg)
{
    lsvc_host *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->quitting) {
        uint64_t now = lsvc_now_ns(), next = 0;
        for (size_t i = 0; i < h->n; i++) {
            lsvc_service *svc = h->svcs[i];
            bool abandon = false;
            const char *what = NULL;
            pthread_mutex_lock(&svc->mu);
            if (svc->deadline_ns && !svc->abandoned && !svc->stopped_reported) {
                if (!svc->interrupted_ns && now >= svc->deadline_ns) {
                    svc->interrupted_ns = now;
                    atomic_store(&svc->interrupt, 1);
                    lsvc_queue_wake(&svc->queue);
                } else if (svc->interrupted_ns && now >= svc->interrupted_ns + ABANDON_AFTER_NS) {
                    svc->abandoned = true;
                    abandon = true;
                }
                what = svc->deadline_what;
                uint64_t due = svc->interrupted_ns ? svc->interrupted_ns + ABANDON_AFTER_NS
                                                   : svc->deadline_ns;
                if (!abandon && (!next || due < next))
                    next = due;
            }
            pthread_mutex_unlock(&svc->mu);
            if (abandon) {
                pthread_mutex_unlock(&h->mu);
                lsvc_log(LSVC_LOG_ERROR, svc->name,
                         "stuck in a C call past its %s deadline; reported STOPPED, "
                         "its thread abandoned",
                         what ? what : "");
                lsvc_service_set_stopped(svc, (lsvc_exit){LSVC_ERROR_PROCESS_ABORTED, 0});
                pthread_mutex_lock(&h->mu);
            }
        }
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
    pthread_cond_broadcast(&h->wd_cv);
    pthread_mutex_unlock(&h->mu);
}
