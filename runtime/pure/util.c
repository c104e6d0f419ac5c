/*
 * util.c - small pure helpers: the bounded buffer, JSON string escaping,
 * name and control parsing. Any thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pure.h"

/* The length of the valid UTF-8 sequence at p (1-4), or 0 when p starts
 * no valid sequence (a stray continuation byte, an overlong form, a
 * surrogate, past U+10FFFF, or cut short by the end of the string). */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

lsvc_buf lsvc_buf_init(char *p, size_t cap)
{
    if (cap)
        p[0] = '\0';
    return (lsvc_buf){p, cap, 0};
}

static void buf_put(lsvc_buf *b, char c)
{
    if (b->len + 1 < b->cap)
        b->p[b->len] = c;
    b->len++;
}

static void buf_end(lsvc_buf *b)
{
    if (b->cap)
        b->p[b->len < b->cap ? b->len : b->cap - 1] = '\0';
}

void lsvc_buf_add(lsvc_buf *b, const char *s)
{
    while (*s)
        buf_put(b, *s++);
    buf_end(b);
}

void lsvc_buf_printf(lsvc_buf *b, const char *fmt, ...)
{
    size_t room = b->len < b->cap ? b->cap - b->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->len += (size_t)k;
    buf_end(b);
}

void lsvc_buf_json(lsvc_buf *b, const char *s)
{
    buf_put(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned char c = *p;
        size_t n = utf8_len(p);
        if (n == 0) {
            lsvc_buf_add(b, "\\ufffd"); /* not UTF-8: the replacement character */
            p++;
            continue;
        }
        if (c == '"' || c == '\\') {
            buf_put(b, '\\');
            buf_put(b, (char)c);
        } else if (c == '\n') {
            lsvc_buf_add(b, "\\n");
        } else if (c < 0x20) {
            lsvc_buf_printf(b, "\\u%04x", c);
        } else {
            for (size_t i = 0; i < n; i++)
                buf_put(b, (char)p[i]);
        }
        p += n;
    }
    buf_put(b, '"');
    buf_end(b);
}

bool lsvc_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 80 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    if (name[0] == '-' || name[0] == ' ' || name[n - 1] == ' ')
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == '/' || *p == '\\' || *p == 0x7f)
            return false;
    return true;
}

int lsvc_parse_control(const char *s)
{
    if (!s || !*s)
        return -1;
    if (s[0] >= '0' && s[0] <= '9') {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end || v < 1 || v > LSVC_CTRL_USER_MAX)
            return -1;
        return (int)v;
    }
    return lsvc_control_from_name(s);
}

int lsvc_parse_name_json(const char *cmd, int argc, char **argv, const char **name, bool *json)
{
    *name = NULL;
    *json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            *json = true;
        } else if (!*name && argv[i][0] != '-') {
            *name = argv[i];
        } else {
            fprintf(stderr, "luasvc %s: unexpected argument '%s'\n", cmd, argv[i]);
            *name = NULL;
            return 2;
        }
    }
    return 0;
}
