/*
 * test_proto.c - unit tests of proto.c (lsvc_proto_parse). Every request is
 * parsed from a heap buffer of exactly len bytes, so an ASan build catches
 * any read past len.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pure/pure.h"

#include "check.h"

/* Printable form of a request for messages. */
static const char *show(const char *s, size_t len)
{
    static char out[4 * 80 + 16];
    size_t o = 0;
    for (size_t i = 0; i < len && o + 8 < sizeof out; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            o += (size_t)snprintf(out + o, sizeof out - o, "\\n");
        else if (c < 0x20 || c >= 0x7f)
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (o + 8 >= sizeof out)
        o += (size_t)snprintf(out + o, sizeof out - o, "...");
    out[o] = '\0';
    return out;
}

/* Parse s[0..len) from an exact-size heap copy. */
static int parse_exact(const char *s, size_t len, lsvc_request *out, char *err, size_t errlen)
{
    char *b = malloc(len);
    static char empty;
    if (!b && len == 0)
        b = &empty;
    if (!b) {
        FAILF("malloc(%zu)", len);
        return -2;
    }
    if (len)
        memcpy(b, s, len);
    int rc = lsvc_proto_parse(b, len, out, err, errlen);
    if (b != &empty)
        free(b);
    return rc;
}

static void expect_ok(const char *s, size_t len, lsvc_req_kind kind, uint32_t code,
                      const char *name, int line)
{
    lsvc_request r;
    char err[128] = "";
    int rc = parse_exact(s, len, &r, err, sizeof err);
    checks++;
    if (rc != 0) {
        FAILF("(line %d) refused [%s]: %s", line, show(s, len), err);
        return;
    }
    checks++;
    if (r.kind != kind || r.code != code || strcmp(r.name, name) != 0)
        FAILF("(line %d) [%s] gave kind %d code %u name \"%s\", want %d %u \"%s\"", line,
              show(s, len), (int)r.kind, r.code, r.name, (int)kind, code, name);
}
#define OK_CONTROL(s, code, name) expect_ok(s, strlen(s), LSVC_REQ_CONTROL, code, name, __LINE__)
#define OK_STATUS(s, name) expect_ok(s, strlen(s), LSVC_REQ_STATUS, 0, name, __LINE__)

static void expect_err_n(const char *s, size_t len, int line)
{
    lsvc_request r;
    char err[128];
    memset(err, 'Z', sizeof err);
    int rc = parse_exact(s, len, &r, err, sizeof err);
    checks++;
    if (rc != -1) {
        FAILF("(line %d) accepted [%s] (rc %d, name \"%s\")", line, show(s, len), rc,
              rc == 0 ? r.name : "");
        return;
    }
    checks++;
    if (!memchr(err, '\0', sizeof err) || err[0] == '\0')
        FAILF("(line %d) refused [%s] without a NUL-terminated message", line, show(s, len));
}
#define ERR(s) expect_err_n(s, strlen(s), __LINE__)
#define ERR_N(s, n) expect_err_n(s, n, __LINE__)

/* ---- tests --------------------------------------------------------------- */

static void test_valid(void)
{
    OK_CONTROL("CONTROL 200 heartbeat\n", 200, "heartbeat");
    OK_STATUS("STATUS heartbeat\n", "heartbeat");
    OK_CONTROL("CONTROL 1 x\n", 1, "x");
    OK_CONTROL("CONTROL 4 x\n", 4, "x");
    OK_CONTROL("CONTROL 99 x\n", 99, "x");
    OK_CONTROL("CONTROL 128 x\n", 128, "x");
    OK_CONTROL("CONTROL 255 x\n", 255, "x");
    OK_CONTROL("CONTROL 200 my svc\n", 200, "my svc");
    OK_CONTROL("CONTROL 200 my svc \xc3\xa9\n", 200, "my svc \xc3\xa9");
    OK_STATUS("STATUS my svc \xc3\xa9\n", "my svc \xc3\xa9");
    OK_STATUS("STATUS \xe2\x82\xac \xf0\x9f\x98\x80\n", "\xe2\x82\xac \xf0\x9f\x98\x80");
    OK_STATUS("STATUS STATUS\n", "STATUS");
    OK_STATUS("STATUS CONTROL 200 x\n", "CONTROL 200 x");
    OK_CONTROL("CONTROL 5 CONTROL\n", 5, "CONTROL");
    OK_STATUS("STATUS ...\n", "...");
    OK_STATUS("STATUS .x\n", ".x");
    OK_STATUS("STATUS svc-1_2.3\n", "svc-1_2.3");

    /* Every code 1-255. */
    for (int c = 1; c <= 255; c++) {
        char s[32];
        snprintf(s, sizeof s, "CONTROL %d svc\n", c);
        expect_ok(s, strlen(s), LSVC_REQ_CONTROL, (uint32_t)c, "svc", __LINE__);
    }

    /* The longest valid name: 80 bytes (lsvc_name_valid's limit). */
    char s[160], name[81];
    memset(name, 'n', 80);
    name[80] = '\0';
    snprintf(s, sizeof s, "STATUS %s\n", name);
    OK_STATUS(s, name);
    snprintf(s, sizeof s, "CONTROL 255 %s\n", name);
    OK_CONTROL(s, 255, name);

    /* STATUS leaves code at 0, whatever came before in out. */
    lsvc_request r;
    memset(&r, 0xab, sizeof r);
    CHECK_EQ(parse_exact("STATUS x\n", 9, &r, NULL, 0), 0);
    CHECK_EQ(r.kind, LSVC_REQ_STATUS);
    CHECK_EQ(r.code, 0);
    CHECK(strcmp(r.name, "x") == 0);
}

static void test_invalid(void)
{
    /* truncated: no newline */
    ERR("CONTROL 200 heartbeat");
    ERR("STATUS heartbeat");
    ERR("");
    ERR("C");
    ERR("CONTROL");
    ERR("CONTROL ");
    ERR("STATUS ");
    /* the newline is in the buffer, but past len */
    ERR_N("STATUS x\n", 8);
    ERR_N("CONTROL 200 heartbeat\n", 21);
    /* bytes after the newline */
    ERR("CONTROL 200 x\nSTATUS x\n");
    ERR("STATUS x\n\n");
    ERR("STATUS x\nx");
    ERR("\nSTATUS x\n");
    ERR_N("STATUS x\n\0", 10);
    /* an embedded NUL or control character */
    ERR_N("STATUS a\0b\n", 11);
    ERR_N("STATUS x\0\n", 10);
    ERR_N("\0STATUS x\n", 10);
    ERR_N("CONTROL 2\0000 x\n", 14);
    ERR("STATUS a\tb\n");
    ERR("STATUS a\rb\n");
    ERR("STATUS x\r\n");
    ERR("STATUS a\x1b[0m\n");
    ERR("STATUS a\x7f\n");
    ERR("\x01STATUS x\n");
    ERR("CONTROL\t200 x\n");
    ERR("STATUS\tx\n");
    /* empty name */
    ERR("STATUS \n");
    ERR("STATUS\n");
    ERR("CONTROL 200 \n");
    ERR("CONTROL 200\n");
    /* bad codes */
    ERR("CONTROL 0 x\n");
    ERR("CONTROL 00 x\n");
    ERR("CONTROL 000 x\n");
    ERR("CONTROL 256 x\n");
    ERR("CONTROL 999 x\n");
    ERR("CONTROL 1000 x\n");
    ERR("CONTROL 0200 x\n");
    ERR("CONTROL 4294967496 x\n"); /* 2^32 + 200 */
    ERR("CONTROL 99999999999999999999 x\n");
    ERR("CONTROL -1 x\n");
    ERR("CONTROL +1 x\n");
    ERR("CONTROL x\n");
    ERR("CONTROL stop x\n");
    ERR("CONTROL 0x10 x\n");
    /* bad spacing */
    ERR("CONTROL  200 x\n");
    ERR("CONTROL 200x y\n");
    ERR("CONTROL 200\n");
    ERR("CONTROL200 x\n");
    ERR("STATUSx\n");
    ERR(" STATUS x\n");
    ERR(" CONTROL 200 x\n");
    /* unknown verbs */
    ERR("STOP x\n");
    ERR("control 200 x\n");
    ERR("status x\n");
    ERR("Status x\n");
    ERR("CONTROLS 200 x\n");
    ERR("STAT x\n");
    ERR("GET / HTTP/1.0\n");
    ERR("\n");
    ERR(" \n");
    /* bad names */
    ERR("STATUS a/b\n");
    ERR("STATUS /\n");
    ERR("STATUS ../etc\n");
    ERR("CONTROL 200 a/b\n");
    ERR("STATUS a\\b\n");
    ERR("STATUS .\n");
    ERR("STATUS ..\n");
    ERR("CONTROL 200 ..\n");
}

static void test_lengths(void)
{
    char s[4200];
    /* Names of 81, 127, 128, 129, 200 and 400 bytes. */
    static const int lens[] = {81, 127, 128, 129, 200, 400};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        int n = snprintf(s, sizeof s, "STATUS ");
        memset(s + n, 'a', (size_t)lens[i]);
        n += lens[i];
        s[n++] = '\n';
        s[n] = '\0';
        ERR_N(s, (size_t)n);
        n = snprintf(s, sizeof s, "CONTROL 200 ");
        memset(s + n, 'a', (size_t)lens[i]);
        n += lens[i];
        s[n++] = '\n';
        s[n] = '\0';
        ERR_N(s, (size_t)n);
    }
    /* Whole requests at and past LSVC_PROTO_MAX, newline last. */
    static const size_t totals[] = {LSVC_PROTO_MAX - 1, LSVC_PROTO_MAX, LSVC_PROTO_MAX + 1, 600,
                                    4096};
    for (size_t i = 0; i < sizeof totals / sizeof totals[0]; i++) {
        size_t t = totals[i];
        memcpy(s, "STATUS ", 7);
        memset(s + 7, 'a', t - 8);
        s[t - 1] = '\n';
        ERR_N(s, t);
    }
    /* Too long is refused whatever it holds, even with no newline. */
    memset(s, 'a', LSVC_PROTO_MAX + 1);
    ERR_N(s, LSVC_PROTO_MAX + 1);
    /* A valid request followed by padding to past the maximum. */
    memset(s, ' ', sizeof s);
    memcpy(s, "STATUS x\n", 9);
    ERR_N(s, 600);
}

/* Mutations of valid requests: every prefix is truncated, every appended
 * byte trails, every byte turned into a control character is refused. */
static void test_mutations(void)
{
    static const char *const valid[] = {
        "CONTROL 200 heartbeat\n",
        "STATUS heartbeat\n",
        "CONTROL 1 my svc \xc3\xa9\n",
        "STATUS my svc \xc3\xa9\n",
    };
    char s[128];
    for (size_t k = 0; k < sizeof valid / sizeof valid[0]; k++) {
        size_t len = strlen(valid[k]);
        for (size_t p = 0; p < len; p++)
            ERR_N(valid[k], p);
        for (int c = 0; c < 256; c++) {
            memcpy(s, valid[k], len);
            s[len] = (char)c;
            ERR_N(s, len + 1);
        }
        for (size_t p = 0; p + 1 < len; p++) {
            static const char bad[] = {0, 1, '\t', '\n', '\r', 0x1f, 0x7f};
            for (size_t b = 0; b < sizeof bad; b++) {
                memcpy(s, valid[k], len);
                s[p] = bad[b];
                ERR_N(s, len);
            }
        }
    }
}

static void test_errbuf(void)
{
    lsvc_request r;
    /* A small message buffer is filled, NUL-terminated, not overrun. */
    char *err = malloc(4);
    if (err) {
        memset(err, 'Z', 4);
        CHECK_EQ(parse_exact("STOP x\n", 7, &r, err, 4), -1);
        CHECK_EQ(err[3], '\0');
        CHECK_EQ(strlen(err), 3);
        memset(err, 'Z', 4);
        CHECK_EQ(parse_exact("STATUS x", 8, &r, err, 1), -1);
        CHECK_EQ(err[0], '\0');
        CHECK_EQ(err[1], 'Z');
        free(err);
    }
    /* errlen 0: nothing written. */
    char one = 'Z';
    CHECK_EQ(parse_exact("STATUS \n", 8, &r, &one, 0), -1);
    CHECK_EQ(one, 'Z');
    /* Each kind of refusal has a message of its own. */
    char a[128], b[128];
    CHECK_EQ(parse_exact("STATUS x", 8, &r, a, sizeof a), -1);
    CHECK_EQ(parse_exact("STATUS x\nx", 10, &r, b, sizeof b), -1);
    CHECK(strcmp(a, b) != 0);
    CHECK_EQ(parse_exact("CONTROL 0 x\n", 12, &r, a, sizeof a), -1);
    CHECK_EQ(parse_exact("PING x\n", 7, &r, b, sizeof b), -1);
    CHECK(strcmp(a, b) != 0);
}

/* EVAL's line carries its chunk's length (bounded), LOG only a name. */
static void test_console(void)
{
    lsvc_request r;
    char err[128];
    CHECK_EQ(parse_exact("EVAL 12 svc\n", 12, &r, err, sizeof err), 0);
    CHECK_EQ(r.kind, LSVC_REQ_EVAL);
    CHECK_EQ(r.payload_len, 12);
    CHECK_EQ(r.code, 0);
    CHECK(strcmp(r.name, "svc") == 0);
    CHECK_EQ(parse_exact("EVAL 0 a b\n", 11, &r, err, sizeof err), 0);
    CHECK_EQ(r.payload_len, 0);
    CHECK(strcmp(r.name, "a b") == 0);
    CHECK_EQ(parse_exact("EVAL 1048576 x\n", 15, &r, err, sizeof err), 0);
    CHECK_EQ(r.payload_len, LSVC_PROTO_EVAL_MAX);
    CHECK_EQ(parse_exact("LOG svc\n", 8, &r, err, sizeof err), 0);
    CHECK_EQ(r.kind, LSVC_REQ_LOG);
    CHECK_EQ(r.payload_len, 0);
    ERR("EVAL 1048577 x\n");
    ERR("EVAL 123456789 x\n");
    ERR("EVAL x\n");
    ERR("EVAL -1 x\n");
    ERR("EVAL 1  x\n");
    ERR("EVAL 1 \n");
    ERR("EVAL 1 x");
    ERR("EVAL 2 x\nab"); /* the line alone is parsed: the chunk is the caller's */
    ERR("LOG \n");
    ERR("LOG x\nx");
    ERR("LOG ../x\n");
}

int main(void)
{
    test_valid();
    test_console();
    test_invalid();
    test_lengths();
    test_mutations();
    test_errbuf();
    return CHECK_EXIT("test_proto");
}
