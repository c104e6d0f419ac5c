/*
 * log.c - the clock and the log. Log lines go to stderr as
 * "TIME LEVEL SERVICE: message", one write per line so lines from several
 * threads never interleave; when stderr is systemd's journal, as
 * "<N>LEVEL SERVICE: message" instead (N: syslog priority, which journald
 * files the line under; it keeps its own time). Also the condition
 * variables whose timed waits take the clock's deadlines. Any thread may
 * call these.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "luasvc.h"

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

static atomic_int min_level = LSVC_LOG_INFO;

static const struct {
    lsvc_level lv;
    const char *name;
} levels[] = {
    {LSVC_LOG_DEBUG, "debug"}, {LSVC_LOG_INFO, "info"}, {LSVC_LOG_NOTICE, "notice"},
    {LSVC_LOG_WARNING, "warning"}, {LSVC_LOG_ERROR, "error"},
};

int lsvc_level_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (strcmp(levels[i].name, name) == 0)
            return (int)levels[i].lv;
    return -1; /* no aliases: "warn" is refused, as the docs say of an unknown level */
}

const char *lsvc_level_name(lsvc_level lv)
{
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (levels[i].lv == lv)
            return levels[i].name;
    return "info";
}

static atomic_bool journal;

void lsvc_log_set_level(lsvc_level lv) { atomic_store(&min_level, (int)lv); }
void lsvc_log_set_journal(bool on) { atomic_store(&journal, on); }

static _Atomic(lsvc_log_sink) sink;
static atomic_int sink_level = LSVC_LOG_ERROR;

void lsvc_log_set_sink(lsvc_log_sink fn, lsvc_level max_level)
{
    atomic_store(&sink_level, (int)max_level);
    atomic_store(&sink, fn);
}

static _Atomic(lsvc_log_sink) capture;

void lsvc_log_set_capture(lsvc_log_sink fn) { atomic_store(&capture, fn); }

void lsvc_log_text(lsvc_level lv, const char *service, const char *text)
{
    lsvc_status_slot_log(lv, service, text); /* info and above, whatever the level shown */
    lsvc_log_sink cap = atomic_load(&capture);
    if (cap) { /* luasvc check: findings, not log lines */
        if (lv <= LSVC_LOG_WARNING)
            cap(lv, service, text);
        return;
    }
    if ((int)lv > atomic_load(&min_level))
        return;
    char line[8192];
    if (atomic_load(&journal)) {
        /* the level values are syslog's priorities (luasvc.h) */
        int k = snprintf(line, sizeof line - 1, "<%d>%-7s %s: %s", (int)lv, lsvc_level_name(lv),
                         service ? service : "luasvc", text);
        size_t n = k < 0 ? 0 : (size_t)k > sizeof line - 2 ? sizeof line - 2 : (size_t)k;
        line[n++] = '\n';
        ssize_t w = write(STDERR_FILENO, line, n);
        (void)w;
        return;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
#ifdef _WIN32
    time_t secs = tv.tv_sec;
    localtime_s(&tm, &secs);
#else
    localtime_r(&tv.tv_sec, &tm);
#endif
    size_t n = strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
    int k = snprintf(line + n, sizeof line - n, ".%03ld %-7s %s: %s", (long)tv.tv_usec / 1000,
                     lsvc_level_name(lv), service ? service : "luasvc", text);
    n = k < 0 ? n : n + (size_t)k;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    lsvc_log_sink fn = atomic_load(&sink);
    if (fn && (int)lv <= atomic_load(&sink_level))
        fn(lv, service, text);
}

void lsvc_log(lsvc_level lv, const char *service, const char *fmt, ...)
{
    if ((int)lv > atomic_load(&min_level) && (int)lv > (int)LSVC_LOG_INFO)
        return;
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    lsvc_log_text(lv, service, text);
}
