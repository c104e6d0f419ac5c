/*
 * http_head.h - reading an HTTP/1.x request's head as it arrives
 * (http_head.c): the request line and the header lines, checked line by
 * line, bounded, without copying. The host's metrics endpoint (metrics.c)
 * reads its requests with it; spec/fuzz/fuzz_http_head.c fuzzes it. Pure:
 * any thread, one lsvc_http_head per request.
 */
#ifndef LSVC_HTTP_HEAD_H
#define LSVC_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>

#define LSVC_HTTP_DONE 1 /* lsvc_http_feed: the head has ended */

typedef struct lsvc_http_head {
    size_t off;      /* the complete lines before it are checked */
    bool have_line;  /* the request line was among them */
    bool get, head;  /* the method is GET, or HEAD */
    bool version_ok; /* HTTP/1.x (else another version: 505) */
    size_t path;     /* the target's path (before any '?'): its offset */
    size_t path_len; /* and length */
} lsvc_http_head;

/*
 * Go on reading the head in in[0..len) (the same bytes as before, and
 * more; zero h before the first call). Returns 0 while the head may go on,
 * LSVC_HTTP_DONE once its empty line has come (h then says what it asks),
 * or as soon as the bytes show what is wrong: 400 (malformed: at the first
 * byte that shows it, even before the line ends), 413 (the request line
 * longer than line_max) or 431 (the head longer than head_max, which
 * len must never pass).
 */
int lsvc_http_feed(lsvc_http_head *h, const char *in, size_t len, size_t line_max, size_t head_max);

#endif
