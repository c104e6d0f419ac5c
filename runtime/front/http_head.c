/*
 * http_head.c - reading an HTTP/1.x request's head as it arrives (see
 * http_head.h): RFC 9112's request line (method SP request-target SP
 * HTTP-version, an origin-form target) and header fields (a token, ':',
 * a value of visible characters, spaces and tabs); CRLF or a bare LF ends
 * a line, a CR elsewhere is malformed, obs-fold is refused, one empty line
 * before the request line is skipped. Each call checks only the lines
 * that have ended since the last, so a client sending a byte at a time
 * costs a scan of that byte's line, not of the whole head. Pure: any
 * thread.
 */
#include <string.h>

#include "http_head.h"

#define METHOD_MAX 16 /* longer is no method this reader knows */

/* RFC 9110's tchar: what a method or a header's name is made of. */
static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The request line in[0..n) (no CR or LF), at offset base of the head:
 * 0, or 400. */
static int request_line(lsvc_http_head *h, const char *in, size_t n, size_t base)
{
    size_t i = 0, m, t;
    while (i < n && is_tchar((unsigned char)in[i]))
        i++;
    m = i;
    if (m == 0 || m > METHOD_MAX || i >= n || in[i] != ' ')
        return 400;
    t = ++i;
    while (i < n && (unsigned char)in[i] > ' ' && (unsigned char)in[i] < 0x7f)
        i++;
    if (i == t || in[t] != '/' || i >= n || in[i] != ' ')
        return 400;
    size_t p = t;
    while (p < i && in[p] != '?')
        p++;
    const char *v = in + i + 1;
    if (n - i - 1 != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return 400;
    h->get = m == 3 && memcmp(in, "GET", 3) == 0;
    h->head = m == 4 && memcmp(in, "HEAD", 4) == 0;
    h->version_ok = v[5] == '1';
    h->path = base + t;
    h->path_len = p - t;
    return 0;
}

/* A header line in[0..n) (no CR or LF): 0, or 400. */
static int header_line(const char *in, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)in[i]))
        i++;
    if (i == 0 || i >= n || in[i] != ':') /* also obs-fold: a line starting with a space */
        return 400;
    for (i++; i < n; i++)
        if (((unsigned char)in[i] < ' ' && in[i] != '\t') || in[i] == 0x7f)
            return 400;
    return 0;
}

/* Whether in[0..n), a request line not yet ended, could still be one:
 * garbage is answered at the first byte that shows it, not at a timeout. */
static bool plausible_start(const char *in, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)in[i]))
        i++;
    if (i == n)
        return i <= METHOD_MAX;
    if (in[i] != ' ' || i == 0)
        return false;
    for (i++; i < n; i++)
        if ((unsigned char)in[i] < ' ' && in[i] != '\r')
            return false;
    return true;
}

int lsvc_http_feed(lsvc_http_head *h, const char *in, size_t len, size_t line_max, size_t head_max)
{
    for (;;) {
        /* one empty line before the request line is skipped (RFC 9112 2.2) */
        if (!h->have_line && h->off == 0 && len >= 1 && in[0] == '\n')
            h->off = 1;
        else if (!h->have_line && h->off == 0 && len >= 2 && in[0] == '\r' && in[1] == '\n')
            h->off = 2;
        else if (!h->have_line && h->off == 0 && len == 1 && in[0] == '\r')
            return 0; /* the empty line's LF may follow */
        const char *nl = memchr(in + h->off, '\n', len - h->off);
        if (!nl) {
            if (h->have_line)
                return len >= head_max ? 431 : 0;
            if (len - h->off > line_max)
                return 413;
            return plausible_start(in + h->off, len - h->off) ? 0 : 400;
        }
        size_t n = (size_t)(nl - (in + h->off));
        if (n && in[h->off + n - 1] == '\r')
            n--;
        if (memchr(in + h->off, '\r', n))
            return 400; /* a CR inside a line */
        if (!h->have_line) {
            if (n > line_max)
                return 413;
            if (request_line(h, in + h->off, n, h->off) != 0)
                return 400;
            h->have_line = true;
        } else if (n == 0) {
            return LSVC_HTTP_DONE;
        } else if (header_line(in + h->off, n) != 0) {
            return 400;
        }
        h->off = (size_t)(nl - in) + 1;
    }
}
