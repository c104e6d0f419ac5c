/*
 * fuzz_http_head.c - libFuzzer target for lsvc_http_feed, the metrics
 * endpoint's reader of a request's head (runtime/front/http_head.c). The
 * input's first byte is a chunk size: the rest is fed as it would arrive,
 * a chunk at a time, into a heap buffer of exactly the bytes so far (ASan
 * reports any read past them). Invariants: only the documented results;
 * a parse resumed chunk by chunk says what one parse of the same bytes at
 * once says; a finished head's path lies in it and starts with '/'.
 *
 *   fuzz_http_head -max_len=400 SCRATCH_DIR spec/fuzz/http-head-corpus
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/http_head.h"

#define LINE_MAX_ 64
#define HEAD_MAX_ 256

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http_head: invariant broken: %s (%s:%d)\n", #cond, __FILE__,     \
                    __LINE__);                                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One parse of in[0..len) at once. */
static int once(const char *in, size_t len, lsvc_http_head *h)
{
    memset(h, 0, sizeof *h);
    return lsvc_http_feed(h, in, len, LINE_MAX_, HEAD_MAX_);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)(data[0] % 17) + 1;
    const char *src = (const char *)data + 1;
    size_t total = size - 1 > HEAD_MAX_ ? HEAD_MAX_ : size - 1;
    lsvc_http_head h;
    memset(&h, 0, sizeof h);
    int rc = 0;
    size_t len = 0;
    while (rc == 0 && len < total) {
        len = len + chunk > total ? total : len + chunk;
        char *buf = malloc(len);
        if (!buf)
            return 0;
        memcpy(buf, src, len);
        rc = lsvc_http_feed(&h, buf, len, LINE_MAX_, HEAD_MAX_);
        REQUIRE(rc == 0 || rc == LSVC_HTTP_DONE || rc == 400 || rc == 413 || rc == 431);
        REQUIRE(h.off <= len);
        if (rc == LSVC_HTTP_DONE) {
            REQUIRE(h.have_line);
            REQUIRE(h.path < len && h.path_len >= 1 && h.path + h.path_len <= len);
            REQUIRE(buf[h.path] == '/');
            REQUIRE(memchr(buf + h.path, '?', h.path_len) == NULL);
            REQUIRE(!(h.get && h.head));
        }
        if (rc == 431)
            REQUIRE(len == HEAD_MAX_);
        /* resumed or at once: the same answer, the same request */
        lsvc_http_head w;
        int whole = once(buf, len, &w);
        REQUIRE(whole == rc);
        if (rc == LSVC_HTTP_DONE)
            REQUIRE(w.path == h.path && w.path_len == h.path_len && w.get == h.get &&
                    w.head == h.head && w.version_ok == h.version_ok);
        free(buf);
    }
    return 0;
}
