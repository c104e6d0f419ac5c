/*
 * log.c - the log. Log lines go to stderr as
 * "TIME LEVEL SERVICE: message", one write per message so lines from
 * several threads never interleave; when stderr is systemd's journal, as
 * "<N>LEVEL SERVICE: message" instead (N: syslog priority, which journald
 * files the line under; it keeps its own time). Each line of a multi-line
 * message carries the prefix; control characters are escaped. Writes never
 * wait (see out_write). With --log-file the lines go to that file instead
 * (logfile.c: rotated by size, reopened on request), always with the time.
 * Sinks registered from above get every message as well. Any thread may
 * call these.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#ifndef _WIN32
#include <sys/socket.h>
#endif

#include "primitives.h"

static atomic_int min_level = LSVC_LOG_INFO;

static const struct {
    lsvc_level lv;
    const char *name;
} levels[] = {
    {LSVC_LOG_DEBUG, "debug"},     {LSVC_LOG_INFO, "info"},   {LSVC_LOG_NOTICE, "notice"},
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

/*
 * Where lines go: fd 2, never waited for. A pipe nobody reads, a terminal
 * stopped by Ctrl+S or a full journal stream must not stall the thread
 * that logs (the control handler, the watchdog, the signal path). fd 2
 * itself stays as it is (O_NONBLOCK on it would reach the shell and every
 * child that shares it): a pipe or terminal is opened a second time,
 * non-blocking, through /proc/self/fd/2; a socket (journald) is written
 * with MSG_DONTWAIT; a file is written as is. A line that cannot be
 * written at once is dropped and counted, and the next line that can be
 * written says how many were lost.
 */
#ifndef _WIN32
enum { OUT_PLAIN, OUT_REOPENED, OUT_SOCKET };
static int out_kind = OUT_PLAIN, out_fd = STDERR_FILENO;
static pthread_once_t out_once = PTHREAD_ONCE_INIT;

static void out_open(void)
{
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0)
        return;
    if (S_ISSOCK(st.st_mode)) {
        out_kind = OUT_SOCKET;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0) {
            out_fd = fd;
            out_kind = OUT_REOPENED;
        }
    }
}
#endif

void lsvc_log_prepare(void)
{
#ifndef _WIN32
    pthread_once(&out_once, out_open);
#endif
}

static atomic_ulong dropped;  /* lines not written since the last one that was */
static atomic_bool cut_short; /* a write wrote part of its lines: start afresh */

/* Write n bytes without waiting; false when not all of them went out. */
static bool out_write(const char *buf, size_t n)
{
    ssize_t w;
#ifdef _WIN32
    w = write(STDERR_FILENO, buf, n);
#else
    pthread_once(&out_once, out_open);
    do {
        if (out_kind == OUT_SOCKET)
            w = send(out_fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        else
            w = write(out_fd, buf, n);
    } while (w < 0 && errno == EINTR);
    if (w < 0 && errno == ENOTSOCK && out_kind == OUT_SOCKET) {
        out_kind = OUT_PLAIN;
        w = write(out_fd, buf, n);
    }
#endif
    if (w > 0 && (size_t)w < n)
        atomic_store(&cut_short, true);
    return w >= 0 && (size_t)w == n;
}

/* Append s to buf (cap bytes, pos in/out), escaping what a reader of the
 * log must never take for the log's own framing or a terminal's command:
 * control characters but tab become \r, \xHH; C1 controls (UTF-8 C2 80
 * to C2 9F) become \u00HH. A newline is not escaped here (the caller
 * splits lines there). */
static void put_escaped(char *buf, size_t cap, size_t *pos, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *pos + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r') {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = 'r';
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            *pos += (size_t)snprintf(buf + *pos, cap - *pos, "\\x%02x", c);
        } else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
                   (unsigned char)s[i + 1] <= 0x9f) {
            *pos += (size_t)snprintf(buf + *pos, cap - *pos, "\\u%04x", (unsigned char)s[++i]);
        } else {
            buf[(*pos)++] = (char)c;
        }
    }
}

/* The lines of text, each behind prefix (the time or journald's priority,
 * the level, the service), into buf. Every line of a multi-line text (a
 * traceback) carries the prefix, so no text can make a line that reads
 * as another service's or another priority's. Returns the length. */
static size_t format_lines(char *buf, size_t cap, const char *prefix, const char *text)
{
    size_t pos = 0, plen = strlen(prefix);
    const char *p = text;
    do {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (pos + plen + 16 >= cap) {
            memcpy(buf + pos - (pos ? 1 : 0), pos ? "...\n" : "", pos ? 4 : 0);
            pos += pos ? 3 : 0;
            break;
        }
        memcpy(buf + pos, prefix, plen);
        pos += plen;
        put_escaped(buf, cap - 1, &pos, p, n);
        buf[pos++] = '\n';
        p = nl ? nl + 1 : NULL;
    } while (p && *p);
    return pos;
}

static _Atomic(lsvc_log_sink) capture;

void lsvc_log_set_capture(lsvc_log_sink fn) { atomic_store(&capture, fn); }

/* --log-file: set once, never closed while the process runs (a thread
 * abandoned in a C call may still log). */
static _Atomic(lsvc_logfile *) log_file;

void lsvc_log_set_file(lsvc_logfile *lf) { atomic_store(&log_file, lf); }
void lsvc_log_reopen_file(void) { lsvc_logfile_reopen(atomic_load(&log_file)); }

void lsvc_log_text(lsvc_level lv, const char *service, const char *text)
{
    lsvc_log_sink cap = atomic_load(&capture);
    if (cap) { /* luasvc check: findings, not log lines */
        if (lv <= LSVC_LOG_WARNING)
            cap(lv, service, text);
        return;
    }
    bool shown = (int)lv <= atomic_load(&min_level);
    if (!shown) {
        to_sinks(lv, service, text, false);
        return;
    }
    char prefix[128], line[16384];
    lsvc_logfile *lf = atomic_load(&log_file);
    if (atomic_load(&journal) && !lf) {
        /* the level values are syslog's priorities (primitives.h) */
        snprintf(prefix, sizeof prefix, "<%d>%-7s %s: ", (int)lv, lsvc_level_name(lv),
                 service ? service : "luasvc");
    } else {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct tm tm;
#ifdef _WIN32
        time_t secs = tv.tv_sec;
        localtime_s(&tm, &secs);
#else
        localtime_r(&tv.tv_sec, &tm);
#endif
        size_t n = strftime(prefix, sizeof prefix, "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(prefix + n, sizeof prefix - n, ".%03ld %-7s %s: ", (long)tv.tv_usec / 1000,
                 lsvc_level_name(lv), service ? service : "luasvc");
    }
    if (lf) {
        /* one write, so a message is whole in one file; the file counts
         * what it loses, and says so in the next line it can write */
        lsvc_logfile_write(lf, line, format_lines(line, sizeof line, prefix, text));
        to_sinks(lv, service, text, true);
        return;
    }
    size_t pos = 0;
    if (atomic_exchange(&cut_short, false))
        line[pos++] = '\n'; /* after a line cut short: this one starts afresh */
    unsigned long lost = atomic_exchange(&dropped, 0);
    if (lost) {
        char note[128];
        snprintf(note, sizeof note, "%lu log line%s dropped: stderr was not writable", lost,
                 lost == 1 ? "" : "s");
        char np[160];
        const char *tail = strstr(prefix, lsvc_level_name(lv));
        snprintf(np, sizeof np, "%.*s%-7s luasvc: ", (int)(tail ? tail - prefix : 0), prefix,
                 "warning");
        if (atomic_load(&journal))
            np[1] = '0' + LSVC_LOG_WARNING;
        pos += format_lines(line + pos, sizeof line - pos, np, note);
    }
    pos += format_lines(line + pos, sizeof line - pos, prefix, text);
    if (!out_write(line, pos))
        atomic_fetch_add(&dropped, lost + 1);
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
