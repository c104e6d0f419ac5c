/*
 * posix_stream.c - the endpoint's streams: the clients it answers over
 * time rather than with one line, a console's eval (its frames, written
 * by the service's worker into the eval's channel) and a log stream (the
 * service's log lines, for luasvc attach). The endpoint's thread owns the
 * descriptors: it sends what a channel holds when the client can take it
 * (never waiting: a channel past its bound drops its client), sees a
 * client hang up (its channel is told: an eval then ends), and closes a
 * stream once its channel is finished. The log sink runs on whichever
 * thread logs: under `mu` it only appends to the log streams' channels.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "posix.h"

#define MAX_STREAMS 64

typedef struct stream {
    int fd; /* -1: free */
    lsvc_console *con;
    const char *service; /* a log stream: the service whose lines it gets */
    bool eof;            /* the client shut its sending side: not a hang-up */
} stream;

struct lsvc_streams {
    int wake[2]; /* a channel has bytes, or finished */
    stream st[MAX_STREAMS];
    size_t polled[MAX_STREAMS], npolled; /* the live streams the poll has, in order */
};

/* The log streams, for the sink (any thread): the one endpoint's. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static lsvc_streams *live;

static void wake(void *ud)
{
    lsvc_streams *s = ud;
    ssize_t w = write(s->wake[1], "x", 1); /* full: a wake is pending anyway */
    (void)w;
}

/* The log sink: a line of a service's (or the host's) to each log stream
 * of that service, as "HH:MM:SS.mmm level service: text". The console's
 * own lines (an eval's) are not sent back to consoles. */
static void log_sink(lsvc_level lv, const char *service, const char *text)
{
    if (strncmp(text, "console: ", 9) == 0)
        return;
    pthread_mutex_lock(&mu);
    char line[2048];
    int n = -1;
    for (size_t i = 0; live && i < MAX_STREAMS; i++) {
        stream *t = &live->st[i];
        if (t->fd < 0 || !t->service || (service && strcmp(service, t->service) != 0))
            continue;
        if (n < 0) {
            struct timespec ts;
            struct tm tm;
            clock_gettime(CLOCK_REALTIME, &ts);
            localtime_r(&ts.tv_sec, &tm);
            n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s %s: %s\n", tm.tm_hour,
                         tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, lsvc_level_name(lv),
                         service ? service : "luasvc", text);
            if (n >= (int)sizeof line) {
                n = (int)sizeof line - 1;
                line[n - 1] = '\n';
            }
        }
        lsvc_console_put(t->con, LSVC_CON_LOG, line, (size_t)n);
    }
    pthread_mutex_unlock(&mu);
}

lsvc_streams *lsvc_streams_new(void)
{
    static bool sink_added;
    lsvc_streams *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < MAX_STREAMS; i++)
        s->st[i].fd = -1;
    pthread_mutex_lock(&mu);
    live = s;
    pthread_mutex_unlock(&mu);
    if (!sink_added) /* the main thread's, once: a sink is never removed */
        sink_added = lsvc_log_add_sink(log_sink, LSVC_LOG_DEBUG, true) == 0;
    return s;
}

static long send_some(void *ud, const char *p, size_t n);

static void stream_close(stream *t)
{
    lsvc_console_hangup(t->con); /* an eval still running ends */
    lsvc_console_unref(t->con);
    close(t->fd);
    t->fd = -1;
    t->con = NULL;
    t->service = NULL;
}

void lsvc_streams_free(lsvc_streams *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&mu);
    if (live == s)
        live = NULL;
    for (size_t i = 0; i < MAX_STREAMS; i++) {
        stream *t = &s->st[i];
        if (t->fd < 0)
            continue;
        /* the host ends: what its services answered last is sent if the
         * client can take it now (an eval ended by the stop), never waited for */
        lsvc_console_send(t->con, send_some, &t->fd);
        stream_close(t);
    }
    pthread_mutex_unlock(&mu);
    close(s->wake[0]);
    close(s->wake[1]);
    free(s);
}

static stream *free_slot(lsvc_streams *s)
{
    for (size_t i = 0; i < MAX_STREAMS; i++)
        if (s->st[i].fd < 0)
            return &s->st[i];
    return NULL;
}

uint32_t lsvc_streams_eval(lsvc_streams *s, lsvc_service *svc, int fd, char *chunk, size_t len,
                           const char *who)
{
    stream *t = free_slot(s);
    lsvc_console *c = t ? lsvc_console_new(LSVC_CON_EVAL_MAX, who) : NULL;
    if (!c) {
        free(chunk);
        return LSVC_ERROR_NOT_ENOUGH_QUOTA;
    }
    lsvc_console_set_chunk(c, chunk, len);
    lsvc_console_set_reader(c, wake, s);
    lsvc_console_ref(c); /* the service's, with the event */
    uint32_t rc = lsvc_service_console(svc, c);
    if (rc != LSVC_NO_ERROR) {
        lsvc_console_unref(c);
        lsvc_console_unref(c);
        return rc;
    }
    pthread_mutex_lock(&mu);
    *t = (stream){.fd = fd, .con = c};
    pthread_mutex_unlock(&mu);
    return LSVC_NO_ERROR;
}

uint32_t lsvc_streams_log(lsvc_streams *s, lsvc_service *svc, int fd, const char *who)
{
    stream *t = free_slot(s);
    lsvc_console *c = t ? lsvc_console_new(LSVC_CON_LOG_MAX, who) : NULL;
    if (!c)
        return LSVC_ERROR_NOT_ENOUGH_QUOTA;
    lsvc_console_set_reader(c, wake, s);
    /* "OK" before any line: the client then knows it gets every line after */
    if (send(fd, "OK\n", 3, MSG_NOSIGNAL | MSG_DONTWAIT) != 3) {
        lsvc_console_unref(c);
        return LSVC_ERROR_INVALID_PARAMETER;
    }
    pthread_mutex_lock(&mu);
    *t = (stream){.fd = fd, .con = c, .service = lsvc_service_name(svc)};
    pthread_mutex_unlock(&mu);
    return LSVC_NO_ERROR;
}

size_t lsvc_streams_poll(lsvc_streams *s, struct pollfd *p)
{
    /* only the live ones: poll() refuses more entries than RLIMIT_NOFILE */
    size_t n = 0;
    p[n++] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
    s->npolled = 0;
    for (size_t i = 0; i < MAX_STREAMS; i++) {
        stream *t = &s->st[i];
        if (t->fd < 0)
            continue;
        short ev = t->eof ? 0 : POLLIN;
        if (lsvc_console_pending(t->con))
            ev |= POLLOUT;
        s->polled[s->npolled++] = i;
        p[n++] = (struct pollfd){.fd = t->fd, .events = ev};
    }
    return n;
}

static long send_some(void *ud, const char *p, size_t n)
{
    int fd = *(int *)ud;
    for (;;) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0)
            return (long)w;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

/* A stream's turn: a hang-up seen, what its channel holds sent, closed
 * once its channel is finished. */
static void stream_turn(stream *t, short revents)
{
    bool hung = (revents & (POLLHUP | POLLERR)) != 0; /* it closed: gone */
    if (revents & POLLIN) { /* a client sends nothing after its request: */
        char junk[256];     /* what comes is dropped */
        ssize_t r = recv(t->fd, junk, sizeof junk, MSG_DONTWAIT);
        t->eof = r == 0; /* it shut its side (rawsend): it still reads */
        hung = hung || (r < 0 && errno != EAGAIN && errno != EINTR);
    }
    if (!hung && lsvc_console_send(t->con, send_some, &t->fd) < 0)
        hung = true;
    if (hung || lsvc_console_finished(t->con)) {
        pthread_mutex_lock(&mu);
        stream_close(t);
        pthread_mutex_unlock(&mu);
    }
}

void lsvc_streams_events(lsvc_streams *s, const struct pollfd *p)
{
    char b[64];
    bool woken = p[0].revents != 0;
    while (woken && read(s->wake[0], b, sizeof b) > 0)
        ;
    short rev[MAX_STREAMS] = {0}; /* a stream taken since the poll: none */
    for (size_t k = 0; k < s->npolled; k++)
        rev[s->polled[k]] = p[1 + k].revents;
    for (size_t i = 0; i < MAX_STREAMS; i++) {
        stream *t = &s->st[i];
        if (t->fd >= 0 && (woken || rev[i]))
            stream_turn(t, rev[i]);
    }
}
