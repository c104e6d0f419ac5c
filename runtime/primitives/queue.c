/*
 * queue.c - the FIFO of controls between a service's control handler (any
 * thread) and its worker (the one consumer). Push never blocks for long: a
 * mutex held for a copy, growth by doubling up to LSVC_QUEUE_MAX controls,
 * past which a push is refused (-2). Nothing pushed is ever dropped.
 * The worker wakes through its waker (worker.c: its loop's wake), called
 * once the mutex is released, so that the woken worker does not find it
 * held (on one CPU it would run at once, block on it and hand the CPU
 * back); a call under way is counted (waking) and lsvc_queue_set_waker
 * waits it out, so the waker is never called once the worker removed it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "primitives.h"

int lsvc_queue_init(lsvc_queue *q)
{
    memset(q, 0, sizeof *q);
    int rc = lsvc_cond_init(&q->cv);
    if (rc)
        return rc;
    return pthread_mutex_init(&q->mu, NULL);
}

void lsvc_queue_destroy(lsvc_queue *q)
{
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->buf);
    q->buf = NULL;
}

static int grow(lsvc_queue *q)
{
    size_t ncap = q->cap ? q->cap * 2 : 16;
    lsvc_event *nb = malloc(ncap * sizeof *nb);
    if (!nb)
        return -1;
    for (size_t i = 0; i < q->len; i++)
        nb[i] = q->buf[(q->head + i) % q->cap];
    free(q->buf);
    q->buf = nb;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

/* Under q->mu, which it releases: signal the waiter and call the waker. */
static void wake_unlock(lsvc_queue *q)
{
    pthread_cond_signal(&q->cv);
    lsvc_queue_waker fn = q->waker;
    void *ud = q->waker_ud;
    if (!fn) {
        pthread_mutex_unlock(&q->mu);
        return;
    }
    q->waking++;
    pthread_mutex_unlock(&q->mu);
    fn(ud);
    pthread_mutex_lock(&q->mu);
    if (--q->waking == 0)
        pthread_cond_broadcast(&q->cv); /* lsvc_queue_set_waker may wait for it */
    pthread_mutex_unlock(&q->mu);
}

static int push(lsvc_queue *q, const lsvc_event *ev)
{
    if (q->len >= LSVC_QUEUE_MAX)
        return -2;
    if (q->len == q->cap && grow(q) != 0)
        return -1;
    q->buf[(q->head + q->len) % q->cap] = *ev;
    q->len++;
    atomic_store_explicit(&q->pending, q->len, memory_order_relaxed);
    return 0;
}

int lsvc_queue_push_quiet(lsvc_queue *q, const lsvc_event *ev)
{
    pthread_mutex_lock(&q->mu);
    int rc = push(q, ev);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void lsvc_queue_notify(lsvc_queue *q)
{
    pthread_mutex_lock(&q->mu);
    wake_unlock(q);
}

int lsvc_queue_push(lsvc_queue *q, const lsvc_event *ev)
{
    int rc = lsvc_queue_push_quiet(q, ev);
    if (rc == 0)
        lsvc_queue_notify(q);
    return rc;
}

bool lsvc_queue_pop(lsvc_queue *q, lsvc_event *ev)
{
    pthread_mutex_lock(&q->mu);
    bool any = q->len > 0;
    if (any) {
        *ev = q->buf[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
        atomic_store_explicit(&q->pending, q->len, memory_order_relaxed);
    }
    pthread_mutex_unlock(&q->mu);
    return any;
}

size_t lsvc_queue_len(lsvc_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->len;
    pthread_mutex_unlock(&q->mu);
    return n;
}

bool lsvc_queue_pending(lsvc_queue *q)
{
    return atomic_load_explicit(&q->pending, memory_order_relaxed) > 0;
}

void lsvc_queue_wake(lsvc_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->wakeups++;
    wake_unlock(q);
}

void lsvc_queue_set_waker(lsvc_queue *q, lsvc_queue_waker fn, void *ud)
{
    pthread_mutex_lock(&q->mu);
    while (q->waking > 0) /* a call of the old waker under way */
        pthread_cond_wait(&q->cv, &q->mu);
    q->waker = fn;
    q->waker_ud = ud;
    pthread_mutex_unlock(&q->mu);
}

bool lsvc_queue_take_wakes(lsvc_queue *q)
{
    pthread_mutex_lock(&q->mu);
    bool any = q->wakeups > 0;
    q->wakeups = 0;
    pthread_mutex_unlock(&q->mu);
    return any;
}

void lsvc_queue_wait(lsvc_queue *q, uint64_t deadline_ns)
{
    pthread_mutex_lock(&q->mu);
    while (q->len == 0 && q->wakeups == 0)
        if (lsvc_cond_wait_until(&q->cv, &q->mu, deadline_ns) == ETIMEDOUT)
            break;
    q->wakeups = 0;
    pthread_mutex_unlock(&q->mu);
}
