/*
 * log.c - the log. Log lines go to stderr as
 * "TIME LEVEL SERVICE: message", one write per line so lines from several
 * threads never interleave; when stderr is systemd's journal, as
 * "<N>LEVEL SERVICE: message" instead (N: syslog priority, which journald
 * files the line under; it keeps its own time). Any thread may call
 * these.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "luasvc.h"

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
    if (strcmp(name, "warn") == 0)
        return LSVC_LOG_WARNING;
    return -1;
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

/* The sinks: filled from the front, never emptied, so a logging thread
 * reads them without a lock (a slot is published by its fn, set last). */
static struct {
    _Atomic(lsvc_log_sink) fn;
    atomic_int max_level;
    atomic_bool shown_only;
} sinks[LSVC_LOG_MAX_SINKS];
static atomic_int nsinks_claimed;

int lsvc_log_add_sink(lsvc_log_sink fn, lsvc_level max_level, bool shown_only)
{
    int i = atomic_fetch_add(&nsinks_claimed, 1);
    if (i >= LSVC_LOG_MAX_SINKS)
        return -1;
    atomic_store(&sinks[i].max_level, (int)max_level);
    atomic_store(&sinks[i].shown_only, shown_only);
    atomic_store(&sinks[i].fn, fn);
    return 0;
}

static void to_sinks(lsvc_level lv, const char *service, const char *text, bool shown)
{
    for (int i = 0; i < LSVC_LOG_MAX_SINKS; i++) {
        lsvc_log_sink fn = atomic_load(&sinks[i].fn);
        if (fn && (int)lv <= atomic_load(&sinks[i].max_level) &&
            (shown || !atomic_load(&sinks[i].shown_only)))
            fn(lv, service, text);
    }
}

void lsvc_log_text(lsvc_level lv, const char *service, const char *text)
{
    bool shown = (int)lv <= atomic_load(&min_level);
    if (!shown) {
        to_sinks(lv, service, text, false);
        return;
    }
    char line[8192];
    if (atomic_load(&journal)) {
        /* the level values are syslog's priorities (luasvc.h) */
        int k = snprintf(line, sizeof line - 1, "<%d>%-7s %s: %s", (int)lv, lsvc_level_name(lv),
                         service ? service : "luasvc", text);
        size_t n = k < 0 ? 0 : (size_t)k > sizeof line - 2 ? sizeof line - 2 : (size_t)k;
        line[n++] = '\n';
        ssize_t w = write(STDERR_FILENO, line, n);
        (void)w;
        to_sinks(lv, service, text, true);
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
    to_sinks(lv, service, text, true);
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
