/*
 * jsonvalid.c - whether a text is one JSON value (RFC 8259): objects,
 * arrays, strings (escapes checked, UTF-8 well formed), numbers, true,
 * false, null, nested at most LSVC_JSON_MAX_DEPTH deep. Used by `luasvc
 * listen --json` to pass a writer's JSON object through as it is. Pure:
 * any thread, no allocation.
 */
#include <string.h>

#include "pure.h"

#define LSVC_JSON_MAX_DEPTH 128

typedef struct jscan {
    const unsigned char *p, *end;
} jscan;

static void skip_ws(jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool lit(jscan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    return true;
}

/* One UTF-8 sequence of 2-4 bytes at s->p (the lead byte >= 0x80). */
static bool utf8_seq(jscan *s)
{
    unsigned c = *s->p;
    int more = c >= 0xc2 && c <= 0xdf   ? 1
               : c >= 0xe0 && c <= 0xef ? 2
               : c >= 0xf0 && c <= 0xf4 ? 3
                                        : -1;
    if (more < 0 || s->end - s->p <= more)
        return false;
    for (int i = 1; i <= more; i++)
        if ((s->p[i] & 0xc0) != 0x80)
            return false;
    if ((c == 0xe0 && s->p[1] < 0xa0) || (c == 0xed && s->p[1] > 0x9f) ||
        (c == 0xf0 && s->p[1] < 0x90) || (c == 0xf4 && s->p[1] > 0x8f))
        return false; /* overlong, a surrogate, past U+10FFFF */
    s->p += more + 1;
    return true;
}

static bool string(jscan *s)
{
    s->p++; /* the opening quote */
    while (s->p < s->end) {
        unsigned c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            if (!utf8_seq(s))
                return false;
            continue;
        }
        s->p++;
        if (c != '\\')
            continue;
        if (s->p >= s->end)
            return false;
        c = *s->p++;
        if (c == 'u') {
            for (int i = 0; i < 4; i++, s->p++)
                if (s->p >= s->end || !strchr("0123456789abcdefABCDEF", *s->p) || !*s->p)
                    return false;
        } else if (!strchr("\"\\/bfnrt", (int)c) || !c) {
            return false;
        }
    }
    return false;
}

static bool digits(jscan *s)
{
    const unsigned char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start;
}

static bool number(jscan *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!digits(s))
        return false;
    if (s->p < s->end && *s->p == '.' && (s->p++, !digits(s)))
        return false;
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return false;
    }
    return true;
}

static bool value(jscan *s, int depth);

/* An object or array's members, after its opening bracket. */
static bool members(jscan *s, int depth, bool object)
{
    char close = object ? '}' : ']';
    skip_ws(s);
    if (s->p < s->end && *s->p == close)
        return s->p++, true;
    for (;;) {
        skip_ws(s);
        if (object) {
            if (s->p >= s->end || *s->p != '"' || !string(s))
                return false;
            skip_ws(s);
            if (s->p >= s->end || *s->p++ != ':')
                return false;
        }
        if (!value(s, depth + 1))
            return false;
        skip_ws(s);
        if (s->p >= s->end)
            return false;
        if (*s->p == close)
            return s->p++, true;
        if (*s->p++ != ',')
            return false;
    }
}

static bool value(jscan *s, int depth)
{
    skip_ws(s);
    if (s->p >= s->end || depth >= LSVC_JSON_MAX_DEPTH)
        return false;
    switch (*s->p) {
    case '{': s->p++; return members(s, depth, true);
    case '[': s->p++; return members(s, depth, false);
    case '"': return string(s);
    case 't': return lit(s, "true");
    case 'f': return lit(s, "false");
    case 'n': return lit(s, "null");
    default: return (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) && number(s);
    }
}

bool lsvc_json_valid(const char *text, size_t len, char *first)
{
    jscan s = {(const unsigned char *)text, (const unsigned char *)text + len};
    skip_ws(&s);
    if (first)
        *first = s.p < s.end ? (char)*s.p : '\0';
    if (!value(&s, 0))
        return false;
    skip_ws(&s);
    return s.p == s.end;
}
