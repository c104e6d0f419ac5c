/*
 * test_queue.c - unit tests of queue.c: FIFO order, growth, wrap-around,
 * lsvc_queue_wait (push, wake, deadline), many producers against one
 * consumer, and the waker: called with the mutex released, and never
 * once lsvc_queue_set_waker has removed it.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "primitives/primitives.h"

#include "check.h"

#define MS 1000000ull

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static lsvc_event ev_of(uint32_t code, uint32_t type)
{
    lsvc_event ev = {.code = code, .event_type = type, .arrived_ns = 1000u + code};
    return ev;
}

/* ---- single-threaded: order, growth, wrap-around ------------------------ */

static void test_fifo(void)
{
    lsvc_queue q;
    CHECK_EQ(lsvc_queue_init(&q), 0);
    lsvc_event ev;
    CHECK(!lsvc_queue_pop(&q, &ev));
    CHECK_EQ(lsvc_queue_len(&q), 0);
    for (uint32_t i = 1; i <= 5; i++) {
        lsvc_event in = ev_of(i, i * 10);
        CHECK_EQ(lsvc_queue_push(&q, &in), 0);
        CHECK_EQ(lsvc_queue_len(&q), i);
    }
    for (uint32_t i = 1; i <= 5; i++) {
        memset(&ev, 0, sizeof ev);
        CHECK(lsvc_queue_pop(&q, &ev));
        CHECK_EQ(ev.code, i);
        CHECK_EQ(ev.event_type, i * 10);
        CHECK_EQ(ev.arrived_ns, 1000u + i);
        CHECK_EQ(lsvc_queue_len(&q), 5 - i);
    }
    ev.code = 77;
    CHECK(!lsvc_queue_pop(&q, &ev));
    CHECK_EQ(ev.code, 77); /* untouched when empty */
    lsvc_queue_destroy(&q);

    /* A queue never pushed to destroys cleanly. */
    CHECK_EQ(lsvc_queue_init(&q), 0);
    lsvc_queue_destroy(&q);
}

/* Pushes and pops with running sequence numbers, checking order. */
typedef struct seq {
    lsvc_queue q;
    uint32_t next_push, next_pop;
} seq;

static void seq_push(seq *s, int n)
{
    for (int i = 0; i < n; i++) {
        lsvc_event ev = ev_of(s->next_push, ~s->next_push);
        if (lsvc_queue_push(&s->q, &ev) != 0)
            FAILF("push %u failed", s->next_push);
        s->next_push++;
    }
}

static void seq_pop(seq *s, int n)
{
    for (int i = 0; i < n; i++) {
        lsvc_event ev;
        checks++;
        if (!lsvc_queue_pop(&s->q, &ev)) {
            FAILF("pop %u: queue empty", s->next_pop);
            return;
        }
        if (ev.code != s->next_pop || ev.event_type != ~s->next_pop ||
            ev.arrived_ns != 1000u + s->next_pop)
            FAILF("pop: got code %u type %u, want %u", ev.code, ev.event_type, s->next_pop);
        s->next_pop++;
    }
}

static void test_growth(void)
{
    seq s = {0};
    CHECK_EQ(lsvc_queue_init(&s.q), 0);
    seq_push(&s, 16);
    CHECK_EQ(s.q.cap, 16);
    seq_push(&s, 1); /* past 16 */
    CHECK_EQ(s.q.cap, 32);
    seq_push(&s, 1000 - 17);
    CHECK_EQ(lsvc_queue_len(&s.q), 1000);
    CHECK(s.q.cap >= 1000);
    seq_pop(&s, 1000);
    CHECK_EQ(lsvc_queue_len(&s.q), 0);
    lsvc_event ev;
    CHECK(!lsvc_queue_pop(&s.q, &ev));
    lsvc_queue_destroy(&s.q);
}

static void test_wrap(void)
{
    seq s = {0};
    CHECK_EQ(lsvc_queue_init(&s.q), 0);
    /* Move head to the middle of a 16-slot ring. */
    seq_push(&s, 10);
    seq_pop(&s, 10);
    CHECK_EQ(s.q.cap, 16);
    CHECK_EQ(s.q.head, 10);
    /* Fill it: slots 10..15 then 0..9. */
    seq_push(&s, 16);
    CHECK_EQ(s.q.cap, 16);
    CHECK_EQ(s.q.len, 16);
    /* Interleave across the boundary, head going round several times. */
    for (int i = 0; i < 100; i++) {
        seq_pop(&s, 1);
        seq_push(&s, 1);
        checks++;
        if (s.q.cap != 16)
            FAILF("grew while interleaving at full ring (cap %zu)", s.q.cap);
    }
    for (int i = 0; i < 37; i++) {
        seq_pop(&s, 3);
        seq_push(&s, 3);
    }
    CHECK_EQ(s.q.cap, 16);
    CHECK_EQ(s.q.len, 16);
    CHECK(s.q.head != 0); /* still wrapped: full, head mid-ring */
    /* Grow while wrapped. */
    seq_push(&s, 1);
    CHECK_EQ(s.q.cap, 32);
    CHECK_EQ(lsvc_queue_len(&s.q), 17);
    seq_pop(&s, 17);

    /* Again at 32: wrap, then grow to 64 with a part-empty front. */
    seq_push(&s, 20);
    seq_pop(&s, 20);
    CHECK_EQ(s.q.cap, 32);
    seq_push(&s, 32);
    CHECK_EQ(s.q.cap, 32);
    CHECK(s.q.head != 0);
    seq_pop(&s, 5);
    seq_push(&s, 5); /* still fits */
    CHECK_EQ(s.q.cap, 32);
    seq_push(&s, 40);
    CHECK_EQ(s.q.cap, 128);
    CHECK_EQ(lsvc_queue_len(&s.q), 72);
    /* Interleaved pops and pushes of odd sizes, draining in the end. */
    for (int i = 0; i < 200; i++) {
        seq_pop(&s, 7);
        seq_push(&s, 5);
        if (lsvc_queue_len(&s.q) < 7)
            break;
    }
    seq_pop(&s, (int)lsvc_queue_len(&s.q));
    CHECK_EQ(s.next_pop, s.next_push);
    lsvc_event ev;
    CHECK(!lsvc_queue_pop(&s.q, &ev));
    lsvc_queue_destroy(&s.q);
}

/* ---- lsvc_queue_wait ----------------------------------------------------- */

static void test_wait_deadline(void)
{
    lsvc_queue q;
    CHECK_EQ(lsvc_queue_init(&q), 0);

    /* A deadline in the past returns at once. */
    uint64_t t0 = lsvc_now_ns();
    lsvc_queue_wait(&q, 1);
    lsvc_queue_wait(&q, t0 - 1);
    lsvc_queue_wait(&q, t0);
    uint64_t el = lsvc_now_ns() - t0;
    CHECK(el < 1000 * MS);
    CHECK_EQ(lsvc_queue_len(&q), 0);

    /* A deadline 50 ms ahead returns after at least 50 ms. */
    t0 = lsvc_now_ns();
    lsvc_queue_wait(&q, t0 + 50 * MS);
    el = lsvc_now_ns() - t0;
    CHECK(el >= 50 * MS);
    CHECK(el < 5000 * MS);
    CHECK_EQ(lsvc_queue_len(&q), 0);

    /* An event already queued: at once, and the event stays. */
    lsvc_event in = ev_of(9, 0), out;
    CHECK_EQ(lsvc_queue_push(&q, &in), 0);
    t0 = lsvc_now_ns();
    lsvc_queue_wait(&q, t0 + 5000 * MS);
    lsvc_queue_wait(&q, 0);
    el = lsvc_now_ns() - t0;
    CHECK(el < 1000 * MS);
    CHECK_EQ(lsvc_queue_len(&q), 1);
    CHECK(lsvc_queue_pop(&q, &out));
    CHECK_EQ(out.code, 9);

    /* A pending wake: at once, and consumed (all of them): the next wait
     * runs to its deadline. */
    lsvc_queue_wake(&q);
    lsvc_queue_wake(&q);
    lsvc_queue_wake(&q);
    t0 = lsvc_now_ns();
    lsvc_queue_wait(&q, 0);
    el = lsvc_now_ns() - t0;
    CHECK(el < 1000 * MS);
    t0 = lsvc_now_ns();
    lsvc_queue_wait(&q, t0 + 30 * MS);
    el = lsvc_now_ns() - t0;
    CHECK(el >= 30 * MS);
    CHECK_EQ(lsvc_queue_len(&q), 0);

    lsvc_queue_destroy(&q);
}

typedef struct waker {
    lsvc_queue *q;
    atomic_int waiting; /* set by the main thread just before it waits */
    bool push;          /* push an event, or lsvc_queue_wake */
} waker;

static void *waker_main(void *arg)
{
    waker *w = arg;
    while (!atomic_load(&w->waiting))
        sched_yield();
    /* Give the main thread time to block: the test is correct either way,
     * this only makes the blocking path the likely one. */
    sleep_ms(20);
    if (w->push) {
        lsvc_event ev = ev_of(42, 7);
        if (lsvc_queue_push(w->q, &ev) != 0)
            FAILF("push from thread failed");
    } else {
        lsvc_queue_wake(w->q);
    }
    return NULL;
}

/* Wait (with deadline, or forever when deadline_ms is 0) for another thread
 * to push or wake. */
static void wait_for_thread(bool push, unsigned deadline_ms)
{
    lsvc_queue q;
    CHECK_EQ(lsvc_queue_init(&q), 0);
    waker w = {.q = &q, .push = push};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, waker_main, &w), 0);
    uint64_t t0 = lsvc_now_ns();
    atomic_store(&w.waiting, 1);
    lsvc_queue_wait(&q, deadline_ms ? t0 + deadline_ms * MS : 0);
    uint64_t el = lsvc_now_ns() - t0;
    CHECK_EQ(pthread_join(th, NULL), 0);
    if (deadline_ms)
        CHECK(el < deadline_ms * MS); /* woken, not timed out */
    lsvc_event ev;
    if (push) {
        CHECK_EQ(lsvc_queue_len(&q), 1);
        CHECK(lsvc_queue_pop(&q, &ev));
        CHECK_EQ(ev.code, 42);
        CHECK_EQ(ev.event_type, 7);
    } else {
        CHECK_EQ(lsvc_queue_len(&q), 0);
        /* The wake was consumed. */
        t0 = lsvc_now_ns();
        lsvc_queue_wait(&q, t0 + 20 * MS);
        CHECK(lsvc_now_ns() - t0 >= 20 * MS);
    }
    lsvc_queue_destroy(&q);
}

static void test_wait_threads(void)
{
    wait_for_thread(true, 10000);
    wait_for_thread(false, 10000);
    wait_for_thread(true, 0); /* forever: the ctest timeout catches a hang */
    wait_for_thread(false, 0);
}

/* ---- many producers, one consumer ---------------------------------------- */

#define PRODUCERS 4
#define PER_PRODUCER 10000

typedef struct producer {
    lsvc_queue *q;
    pthread_barrier_t *go;
    uint32_t id;
    int push_errors;
} producer;

static void *producer_main(void *arg)
{
    producer *p = arg;
    pthread_barrier_wait(p->go);
    for (uint32_t i = 0; i < PER_PRODUCER; i++) {
        lsvc_event ev = {.code = i, .event_type = p->id, .arrived_ns = lsvc_now_ns()};
        int rc;
        while ((rc = lsvc_queue_push(p->q, &ev)) == -2)
            sched_yield(); /* full: the consumer makes room */
        if (rc != 0)
            p->push_errors++;
        if (i % 1000 == 999)
            sched_yield();
    }
    return NULL;
}

static void test_producers(void)
{
    lsvc_queue q;
    CHECK_EQ(lsvc_queue_init(&q), 0);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, PRODUCERS + 1);
    producer ps[PRODUCERS];
    pthread_t th[PRODUCERS];
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        ps[i] = (producer){.q = &q, .go = &go, .id = i};
        CHECK_EQ(pthread_create(&th[i], NULL, producer_main, &ps[i]), 0);
    }
    static uint8_t seen[PRODUCERS][PER_PRODUCER];
    memset(seen, 0, sizeof seen);
    long long last[PRODUCERS];
    int count[PRODUCERS] = {0};
    for (int i = 0; i < PRODUCERS; i++)
        last[i] = -1;
    int total = 0, order_errors = 0, dups = 0, bad = 0;
    bool stalled = false;

    pthread_barrier_wait(&go);
    while (total < PRODUCERS * PER_PRODUCER) {
        lsvc_event ev;
        if (!lsvc_queue_pop(&q, &ev)) {
            uint64_t deadline = lsvc_now_ns() + 10000 * MS;
            lsvc_queue_wait(&q, deadline);
            if (lsvc_queue_len(&q) == 0 && lsvc_now_ns() >= deadline) {
                stalled = true;
                break;
            }
            continue;
        }
        total++;
        if (ev.event_type >= PRODUCERS || ev.code >= PER_PRODUCER) {
            if (bad++ < 5)
                FAILF("unexpected event: producer %u seq %u", ev.event_type, ev.code);
            continue;
        }
        uint32_t id = ev.event_type;
        if (seen[id][ev.code]++ && dups++ < 5)
            FAILF("duplicate: producer %u seq %u", id, ev.code);
        if ((long long)ev.code <= last[id] && order_errors++ < 5)
            FAILF("out of order: producer %u seq %u after %lld", id, ev.code, last[id]);
        last[id] = ev.code;
        count[id]++;
    }
    for (int i = 0; i < PRODUCERS; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&go);

    CHECK(!stalled);
    CHECK_EQ(total, PRODUCERS * PER_PRODUCER);
    CHECK_EQ(order_errors, 0);
    CHECK_EQ(dups, 0);
    CHECK_EQ(bad, 0);
    int lost = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        CHECK_EQ(ps[i].push_errors, 0);
        CHECK_EQ(count[i], PER_PRODUCER);
        CHECK_EQ(last[i], PER_PRODUCER - 1);
        for (int k = 0; k < PER_PRODUCER; k++)
            if (seen[i][k] != 1)
                lost += seen[i][k] == 0;
    }
    CHECK_EQ(lost, 0);
    lsvc_event ev;
    CHECK(!lsvc_queue_pop(&q, &ev));
    CHECK_EQ(lsvc_queue_len(&q), 0);
    lsvc_queue_destroy(&q);
}

/* Past LSVC_QUEUE_MAX waiting, a push is refused (-2) and nothing changes;
 * a pop makes room for one more. */
static void test_bound(void)
{
    lsvc_queue q;
    CHECK_EQ(lsvc_queue_init(&q), 0);
    for (uint32_t i = 0; i < LSVC_QUEUE_MAX; i++) {
        lsvc_event in = ev_of(i, 0);
        CHECK_EQ(lsvc_queue_push(&q, &in), 0);
    }
    lsvc_event in = ev_of(9999, 0), ev;
    CHECK_EQ(lsvc_queue_push(&q, &in), -2);
    CHECK_EQ(lsvc_queue_len(&q), LSVC_QUEUE_MAX);
    CHECK(lsvc_queue_pop(&q, &ev));
    CHECK_EQ(ev.code, 0);
    CHECK_EQ(lsvc_queue_push(&q, &in), 0);
    CHECK_EQ(lsvc_queue_push(&q, &in), -2);
    lsvc_queue_destroy(&q);
}

/* ---- the waker ------------------------------------------------------------- */

typedef struct waker_probe {
    lsvc_queue *q;
    int calls, free_calls; /* calls that found the queue's mutex free */
    atomic_bool inside, release, removed;
} waker_probe;

static void probe_waker(void *ud)
{
    waker_probe *p = ud;
    p->calls++;
    if (pthread_mutex_trylock(&p->q->mu) == 0) {
        p->free_calls++;
        pthread_mutex_unlock(&p->q->mu);
    }
    atomic_store(&p->inside, true);
    while (!atomic_load(&p->release))
        sched_yield();
    atomic_store(&p->inside, false);
}

static void *push_one(void *arg)
{
    waker_probe *p = arg;
    lsvc_event in = ev_of(7, 0);
    CHECK_EQ(lsvc_queue_push(p->q, &in), 0);
    return NULL;
}

static void *remove_waker(void *arg)
{
    waker_probe *p = arg;
    lsvc_queue_set_waker(p->q, NULL, NULL);
    atomic_store(&p->removed, true);
    return NULL;
}

/* A woken consumer that takes the mutex at once must find it free (on one
 * CPU it would otherwise block and hand the CPU back); and removing the
 * waker waits for a call of it under way (the worker closes the loop the
 * waker wakes right after). */
static void test_waker(void)
{
    lsvc_queue q;
    CHECK_EQ(lsvc_queue_init(&q), 0);
    waker_probe p = {.q = &q};
    atomic_store(&p.release, true);
    lsvc_queue_set_waker(&q, probe_waker, &p);
    lsvc_event in = ev_of(1, 0), out;
    CHECK_EQ(lsvc_queue_push(&q, &in), 0);
    lsvc_queue_wake(&q);
    CHECK_EQ(lsvc_queue_push_quiet(&q, &in), 0);
    CHECK_EQ(p.calls, 2); /* the quiet push wakes nobody ... */
    lsvc_queue_notify(&q);
    CHECK_EQ(p.calls, 3); /* ... until told */
    CHECK_EQ(p.free_calls, 3);
    while (lsvc_queue_pop(&q, &out))
        ;

    atomic_store(&p.release, false);
    pthread_t pusher, remover;
    CHECK_EQ(pthread_create(&pusher, NULL, push_one, &p), 0);
    uint64_t deadline = lsvc_now_ns() + 5000 * MS;
    while (!atomic_load(&p.inside) && lsvc_now_ns() < deadline)
        sched_yield();
    CHECK(atomic_load(&p.inside));
    CHECK_EQ(pthread_create(&remover, NULL, remove_waker, &p), 0);
    /* while the call lasts (50 ms here), the removal does not return */
    uint64_t until = lsvc_now_ns() + 50 * MS;
    while (lsvc_now_ns() < until && !atomic_load(&p.removed))
        sched_yield();
    CHECK(!atomic_load(&p.removed));
    atomic_store(&p.release, true);
    pthread_join(pusher, NULL);
    pthread_join(remover, NULL);
    CHECK(atomic_load(&p.removed));
    CHECK_EQ(p.calls, 4);
    lsvc_queue_destroy(&q);
}

int main(void)
{
    test_fifo();
    test_bound();
    test_growth();
    test_wrap();
    test_wait_deadline();
    test_wait_threads();
    test_producers();
    test_waker();
    return CHECK_EXIT("test_queue");
}
