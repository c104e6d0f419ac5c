/*
 * proto.c - the control endpoint's wire format. A request is one line:
 *
 *   CONTROL <code> <service name>\n     code: 1-255
 *   STATUS <service name>\n
 *   EVAL <length> <service name>\n      then <length> bytes: a Lua chunk
 *   LOG <service name>\n
 *
 * and the reply one line: "OK\n", "OK <json>\n" or "ERR <win32 code>
 * <text>\n"; an EVAL's or a LOG's reply, once accepted, is a stream of
 * frames "<tag> <length>\n<bytes>" (primitives' console.c). The parser is pure and bounded (it has a libFuzzer target):
 * anything malformed, truncated (no newline), oversized or carrying control
 * characters is refused with a message. Any thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pure.h"

static int fail(char *err, size_t errlen, const char *msg)
{
    if (errlen)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

int lsvc_proto_parse(const char *buf, size_t len, lsvc_request *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > LSVC_PROTO_MAX)
        return fail(err, errlen, "request too long");
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return fail(err, errlen, "truncated request (no newline)");
    if ((size_t)(nl - buf) + 1 != len)
        return fail(err, errlen, "trailing bytes after the request");
    size_t n = (size_t)(nl - buf);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            return fail(err, errlen, "control character in request");

    const char *p = buf, *end = nl;
    const char *rest;
    if (n >= 8 && memcmp(p, "CONTROL ", 8) == 0) {
        out->kind = LSVC_REQ_CONTROL;
        p += 8;
        uint32_t code = 0;
        int digits = 0;
        while (p < end && *p >= '0' && *p <= '9' && digits < 4) {
            code = code * 10 + (uint32_t)(*p - '0');
            p++;
            digits++;
        }
        if (digits == 0 || digits > 3 || p >= end || *p != ' ' || code < 1 || code > 255)
            return fail(err, errlen, "bad control code (1-255 expected)");
        out->code = code;
        rest = p + 1;
    } else if (n >= 7 && memcmp(p, "STATUS ", 7) == 0) {
        out->kind = LSVC_REQ_STATUS;
        rest = p + 7;
    } else if (n >= 5 && memcmp(p, "EVAL ", 5) == 0) {
        out->kind = LSVC_REQ_EVAL;
        p += 5;
        uint32_t plen = 0;
        int digits = 0;
        while (p < end && *p >= '0' && *p <= '9' && digits < 8) {
            plen = plen * 10 + (uint32_t)(*p - '0');
            p++;
            digits++;
        }
        if (digits == 0 || p >= end || *p != ' ' || plen > LSVC_PROTO_EVAL_MAX)
            return fail(err, errlen, "bad chunk length (0-1048576 expected)");
        out->payload_len = plen;
        rest = p + 1;
    } else if (n >= 4 && memcmp(p, "LOG ", 4) == 0) {
        out->kind = LSVC_REQ_LOG;
        rest = p + 4;
    } else {
        return fail(err, errlen, "unknown request (CONTROL, STATUS, EVAL or LOG expected)");
    }
    size_t nlen = (size_t)(end - rest);
    if (nlen == 0 || nlen >= sizeof out->name)
        return fail(err, errlen, "bad service name length");
    memcpy(out->name, rest, nlen);
    out->name[nlen] = '\0';
    if (!lsvc_name_valid(out->name))
        return fail(err, errlen, "invalid service name");
    return 0;
}
