/*
 * host.c - the services of one process: the start barrier (every script
 * loads before any starts; passed without a hand-over between threads
 * where the front end asks, lsvc_host_on_ready), the wait for all to stop,
 * the process exit status. Any thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "service_impl.h"

lsvc_host *lsvc_host_new(void)
{
    lsvc_host *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->prepare_mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (lsvc_cond_init(&h->wd_cv) != 0) {
        free(h);
        return NULL;
    }
    return h;
}

int lsvc_host_add(lsvc_host *h, lsvc_service *svc)
{
    lsvc_service **n = realloc(h->svcs, (h->n + 1) * sizeof *n);
    if (!n)
        return -1;
    h->svcs = n;
    svc->index = h->n;
    h->svcs[h->n++] = svc;
    return 0;
}

void lsvc_host_notify(lsvc_host *h)
{
    pthread_mutex_lock(&h->mu);
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

size_t lsvc_host_wait_loaded(lsvc_host *h)
{
    size_t failed = 0;
    for (size_t i = 0; i < h->n; i++) {
        lsvc_service *svc = h->svcs[i];
        pthread_mutex_lock(&svc->mu);
        while (!svc->loaded && !svc->load_failed && !svc->load_given_up)
            pthread_cond_wait(&svc->load_cv, &svc->mu);
        failed += svc->load_failed || svc->load_given_up;
        pthread_mutex_unlock(&svc->mu);
    }
    return failed;
}

void lsvc_host_on_ready(lsvc_host *h, void (*prepare)(lsvc_host *, void *),
                        void (*ready)(lsvc_host *, size_t, void *), void *ud)
{
    pthread_mutex_lock(&h->mu);
    h->prepare = prepare;
    h->ready = ready;
    h->ready_ud = ud;
    h->ready_pending = h->n + 1;
    h->loads_pending = h->n;
    h->ready_done = false;
    pthread_mutex_unlock(&h->mu);
}

/* One of the loads or the front end's preparation is done: the last runs
 * the front end's ready (outside the lock: it releases the services). */
static void ready_count_down(lsvc_host *h)
{
    pthread_mutex_lock(&h->mu);
    bool last = h->ready && h->ready_pending && --h->ready_pending == 0;
    pthread_mutex_unlock(&h->mu);
    if (!last)
        return;
    size_t failed = 0;
    for (size_t i = 0; i < h->n; i++) {
        pthread_mutex_lock(&h->svcs[i]->mu);
        failed += h->svcs[i]->load_failed;
        pthread_mutex_unlock(&h->svcs[i]->mu);
    }
    h->ready(h, failed, h->ready_ud);
    pthread_mutex_lock(&h->mu);
    h->ready_done = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* The front end's preparation, once, on the first thread to ask: its
 * token then counts down. */
void lsvc_host_prepare(lsvc_host *h)
{
    pthread_mutex_lock(&h->prepare_mu);
    bool first = !h->prepared;
    if (first && h->prepare)
        h->prepare(h, h->ready_ud);
    h->prepared = true;
    pthread_mutex_unlock(&h->prepare_mu);
    if (first)
        ready_count_down(h);
}

void lsvc_host_loaded(lsvc_host *h)
{
    pthread_mutex_lock(&h->mu);
    bool last = h->ready && h->loads_pending && --h->loads_pending == 0;
    pthread_mutex_unlock(&h->mu);
    if (last)
        lsvc_host_prepare(h); /* unless the front end has (or is at it: then until it is done) */
    ready_count_down(h);
}

void lsvc_host_wait_ready(lsvc_host *h)
{
    pthread_mutex_lock(&h->mu);
    while (!h->ready_done)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

void lsvc_host_release(lsvc_host *h, bool go)
{
    for (size_t i = 0; i < h->n; i++) {
        lsvc_service *svc = h->svcs[i];
        lsvc_service_released(svc, go); /* its observer: a status_slot */
        pthread_mutex_lock(&svc->mu);
        svc->gate = go ? LSVC_GATE_GO : LSVC_GATE_ABORT;
        pthread_cond_broadcast(&svc->load_cv);
        pthread_mutex_unlock(&svc->mu);
    }
}

bool lsvc_host_any_load_failed(lsvc_host *h)
{
    bool any = false;
    for (size_t i = 0; i < h->n && !any; i++) {
        lsvc_service *svc = h->svcs[i];
        pthread_mutex_lock(&svc->mu);
        any = svc->load_failed;
        pthread_mutex_unlock(&svc->mu);
    }
    return any;
}

bool lsvc_host_all_stopped(lsvc_host *h)
{
    for (size_t i = 0; i < h->n; i++) {
        lsvc_service *svc = h->svcs[i];
        pthread_mutex_lock(&svc->mu);
        bool done = svc->stopped_reported;
        pthread_mutex_unlock(&svc->mu);
        if (!done)
            return false;
    }
    return true;
}

void lsvc_host_wait_stopped(lsvc_host *h)
{
    pthread_mutex_lock(&h->mu);
    while (!lsvc_host_all_stopped(h))
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

int lsvc_host_exit_status(lsvc_host *h)
{
    int first = 0;
    for (size_t i = 0; i < h->n; i++) {
        lsvc_status st;
        lsvc_service_get_status(h->svcs[i], &st);
        pthread_mutex_lock(&h->svcs[i]->mu);
        bool load_failed = h->svcs[i]->load_failed;
        pthread_mutex_unlock(&h->svcs[i]->mu);
        if (load_failed)
            return 2;
        int s = lsvc_exit_status(st.exit);
        if (s && !first)
            first = s;
    }
    return first;
}

/* After STOPPED a worker frees its Lua state (lua_close runs the script's
 * finalizers, which no hook can interrupt): this long at most, then the
 * state is abandoned and the process goes on to exit. */
#define CLOSE_DEADLINE_NS 2000000000ull

/* A worker given up whose C call has returned (its tree was ended) closes
 * its handles and ends: this long at most, so that the process does not
 * exit under it (libuv's exit handlers beside its closing abort). */
#define GIVEN_UP_WAIT_NS 1000000000ull

/* svc's worker has ended by deadline_ns (under svc->mu's wait). */
static bool ended_by(lsvc_service *svc, uint64_t deadline_ns)
{
    pthread_mutex_lock(&svc->mu);
    while (!svc->worker_ended)
        if (lsvc_cond_wait_until(&svc->load_cv, &svc->mu, deadline_ns) == ETIMEDOUT)
            break;
    bool ended = svc->worker_ended;
    pthread_mutex_unlock(&svc->mu);
    return ended;
}

/* A worker given up (stuck in a C call, or in lua_close past the deadline)
 * is waited for GIVEN_UP_WAIT_NS at most: joined if it has ended by then
 * (its call returned and it closed), else detached, to end with the
 * process (still in its C call). */
void lsvc_host_join(lsvc_host *h)
{
    uint64_t deadline = lsvc_now_ns() + CLOSE_DEADLINE_NS;
    uint64_t given_up_by = lsvc_now_ns() + GIVEN_UP_WAIT_NS;
    for (size_t i = 0; i < h->n; i++) {
        lsvc_service *svc = h->svcs[i];
        pthread_mutex_lock(&svc->mu);
        bool started = svc->thread_started, given_up = svc->abandoned;
        pthread_mutex_unlock(&svc->mu);
        if (!started)
            continue;
        if (!given_up && !lsvc_service_wait_worker(svc, deadline)) {
            lsvc_log(LSVC_LOG_ERROR, svc->name,
                     "closing its Lua state did not finish within %llu ms (a __gc finalizer "
                     "that does not return?): abandoned",
                     CLOSE_DEADLINE_NS / 1000000ull);
            given_up = true;
        }
        bool ended = ended_by(svc, given_up ? given_up_by : 0);
        if (given_up && !ended)
            pthread_detach(svc->thread);
        else
            pthread_join(svc->thread, NULL);
        svc->thread_started = false;
    }
}

size_t lsvc_host_count(lsvc_host *h) { return h->n; }

lsvc_service *lsvc_host_service(lsvc_host *h, size_t i) { return h->svcs[i]; }
