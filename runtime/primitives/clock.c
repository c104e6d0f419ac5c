/*
 * clock.c - the monotonic clock and the condition variables whose timed
 * waits take its deadlines. Any thread may call these.
 */
#include <errno.h>
#include <time.h>

#include "primitives.h"

uint64_t lsvc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* winpthreads: QueryPerformanceCounter */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int lsvc_cond_init(pthread_cond_t *cv)
{
#ifdef _WIN32
    return pthread_cond_init(cv, NULL); /* waits are relative: see below */
#else
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc)
        return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
#endif
}

int lsvc_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline_ns)
{
    if (deadline_ns == 0)
        return pthread_cond_wait(cv, mu);
#ifdef _WIN32
    /* winpthreads ignores pthread_condattr_setclock and reads an absolute
     * time on the wall clock; its relative wait sidesteps that clock. */
    uint64_t now = lsvc_now_ns();
    if (now >= deadline_ns)
        return ETIMEDOUT;
    uint64_t left = deadline_ns - now;
    struct timespec rel = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
    int rc = pthread_cond_timedwait_relative_np(cv, mu, &rel);
#else
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u), (long)(deadline_ns % 1000000000u)};
    int rc = pthread_cond_timedwait(cv, mu, &ts);
#endif
    if (rc == ETIMEDOUT || lsvc_now_ns() >= deadline_ns)
        return ETIMEDOUT;
    return rc;
}
