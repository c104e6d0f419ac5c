/*
 * console.c - a console's reply channel: what one client of the console
 * (luasvc eval, attach) asked and what it is answered, between the thread
 * that writes the answer (a service's worker, or whichever thread logs)
 * and the front end's thread that sends it to the client (the endpoint).
 * Any thread; the channel's mutex is held only for copies.
 *
 * The writer never waits: it appends a frame to a buffer bounded by the
 * channel's max (the front end sends it when the client can take it); a
 * frame that would pass the bound marks the client gone (one that does
 * not read is dropped, never waited for). The reader learns of new bytes
 * through its wake function, called only when the buffer was empty (one
 * wake per burst); the writer learns that the client went (it hung up, or
 * it was dropped) through its own, called under the mutex, so that a
 * writer that unsets it (lsvc_console_set_writer NULL) is never called
 * after. Both hold a reference; the last unref frees it.
 *
 * A frame on the wire: "<tag> <length>\n" and then <length> bytes (tags:
 * console.h's LSVC_CON_*).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "primitives.h"

struct lsvc_console {
    pthread_mutex_t mu;
    unsigned refs;
    char *chunk; /* the request: an eval's chunk (NULL for a log stream) */
    size_t chunk_len;
    char who[96];
    char *buf; /* frames not yet sent: [off, len) */
    size_t off, len, cap, max;
    bool ended; /* the writer said its last frame */
    bool gone;  /* the client went away, or was dropped */
    void (*reader)(void *ud);
    void *reader_ud;
    void (*writer)(void *ud);
    void *writer_ud;
};

lsvc_console *lsvc_console_new(size_t max, const char *who)
{
    lsvc_console *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->refs = 1;
    c->max = max;
    snprintf(c->who, sizeof c->who, "%s", who ? who : "?");
    return c;
}

void lsvc_console_ref(lsvc_console *c)
{
    pthread_mutex_lock(&c->mu);
    c->refs++;
    pthread_mutex_unlock(&c->mu);
}

void lsvc_console_unref(lsvc_console *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    unsigned left = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (left)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->chunk);
    free(c->buf);
    free(c);
}

void lsvc_console_set_chunk(lsvc_console *c, char *chunk, size_t len)
{
    free(c->chunk);
    c->chunk = chunk;
    c->chunk_len = len;
}

const char *lsvc_console_chunk(const lsvc_console *c, size_t *len)
{
    *len = c->chunk_len;
    return c->chunk;
}

const char *lsvc_console_who(const lsvc_console *c) { return c->who; }

void lsvc_console_set_reader(lsvc_console *c, void (*fn)(void *), void *ud)
{
    pthread_mutex_lock(&c->mu);
    c->reader = fn;
    c->reader_ud = ud;
    pthread_mutex_unlock(&c->mu);
}

void lsvc_console_set_writer(lsvc_console *c, void (*fn)(void *), void *ud)
{
    pthread_mutex_lock(&c->mu);
    c->writer = fn;
    c->writer_ud = ud;
    bool tell = fn && c->gone;
    if (tell)
        fn(ud); /* gone already: the writer learns it at once */
    pthread_mutex_unlock(&c->mu);
}

/* Under mu: the client is gone; the writer is told (once). */
static void mark_gone(lsvc_console *c)
{
    if (c->gone)
        return;
    c->gone = true;
    if (c->writer)
        c->writer(c->writer_ud);
}

/* Under mu: room for n more bytes within max. */
static bool make_room(lsvc_console *c, size_t n)
{
    if (c->off && c->off == c->len)
        c->off = c->len = 0;
    if (c->len - c->off + n > c->max)
        return false;
    if (c->len + n > c->cap && c->off) { /* slide what is left to the front */
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->len + n <= c->cap)
        return true;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < c->len + n)
        cap *= 2;
    char *b = realloc(c->buf, cap);
    if (!b)
        return false;
    c->buf = b;
    c->cap = cap;
    return true;
}

bool lsvc_console_put(lsvc_console *c, char tag, const char *data, size_t n)
{
    char head[32];
    int h = snprintf(head, sizeof head, "%c %zu\n", tag, n);
    void (*wake)(void *) = NULL;
    void *ud = NULL;
    pthread_mutex_lock(&c->mu);
    bool ok = !c->gone && !c->ended && make_room(c, (size_t)h + n);
    if (ok) {
        bool was_empty = c->off == c->len;
        memcpy(c->buf + c->len, head, (size_t)h);
        if (n)
            memcpy(c->buf + c->len + h, data, n);
        c->len += (size_t)h + n;
        if (was_empty) {
            wake = c->reader;
            ud = c->reader_ud;
        }
    } else if (!c->gone && !c->ended) {
        mark_gone(c); /* it does not read: dropped, never waited for */
        wake = c->reader;
        ud = c->reader_ud;
    }
    pthread_mutex_unlock(&c->mu);
    if (wake)
        wake(ud);
    return ok;
}

void lsvc_console_end(lsvc_console *c)
{
    pthread_mutex_lock(&c->mu);
    bool tell = !c->ended;
    c->ended = true;
    void (*wake)(void *) = tell ? c->reader : NULL;
    void *ud = c->reader_ud;
    pthread_mutex_unlock(&c->mu);
    if (wake)
        wake(ud);
}

long lsvc_console_send(lsvc_console *c, long (*send_fn)(void *ud, const char *p, size_t n),
                       void *ud)
{
    pthread_mutex_lock(&c->mu);
    long sent = 0;
    if (c->len > c->off && !c->gone) {
        sent = send_fn(ud, c->buf + c->off, c->len - c->off);
        if (sent > 0)
            c->off += (size_t)sent;
    }
    pthread_mutex_unlock(&c->mu);
    return sent;
}

bool lsvc_console_pending(lsvc_console *c)
{
    pthread_mutex_lock(&c->mu);
    bool p = c->len > c->off && !c->gone;
    pthread_mutex_unlock(&c->mu);
    return p;
}

bool lsvc_console_finished(lsvc_console *c)
{
    pthread_mutex_lock(&c->mu);
    bool f = c->gone || (c->ended && c->len == c->off);
    pthread_mutex_unlock(&c->mu);
    return f;
}

bool lsvc_console_gone(lsvc_console *c)
{
    pthread_mutex_lock(&c->mu);
    bool g = c->gone;
    pthread_mutex_unlock(&c->mu);
    return g;
}

void lsvc_console_hangup(lsvc_console *c)
{
    pthread_mutex_lock(&c->mu);
    mark_gone(c);
    pthread_mutex_unlock(&c->mu);
}
