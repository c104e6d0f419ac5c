/*
 * fuzz_proto.c - libFuzzer target for lsvc_proto_parse, the control
 * endpoint's request parser. The input is copied into a heap buffer of
 * exactly its size, so ASan reports any read past len. A request the parser
 * accepts must satisfy the invariants below; a broken one aborts.
 *
 *   fuzz_proto -max_len=600 SCRATCH_DIR spec/fuzz/corpus
 *
 * (libFuzzer writes new inputs into the first directory: keep the seeds
 * second, or work on a copy.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pure/pure.h"

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_proto: invariant broken: %s (%s:%d)\n",      \
                    #cond, __FILE__, __LINE__);                                \
            abort();                                                           \
        }                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char empty;
    char *buf = malloc(size);
    if (!buf) {
        if (size)
            return 0;
        buf = &empty;
    }
    if (size)
        memcpy(buf, data, size);

    lsvc_request req;
    char err[128];
    memset(err, 0x55, sizeof err);
    int rc = lsvc_proto_parse(buf, size, &req, err, sizeof err);
    REQUIRE(rc == 0 || rc == -1);

    if (rc == 0) {
        /* the request as a whole */
        REQUIRE(size >= 1 && size <= LSVC_PROTO_MAX);
        REQUIRE(data[size - 1] == '\n');
        REQUIRE(memchr(data, '\n', size) == data + size - 1);
        for (size_t i = 0; i + 1 < size; i++)
            REQUIRE(data[i] >= 0x20 && data[i] != 0x7f);
        /* the name */
        REQUIRE(memchr(req.name, '\0', sizeof req.name) != NULL);
        size_t nlen = strlen(req.name);
        REQUIRE(nlen > 0);
        REQUIRE(lsvc_name_valid(req.name));
        /* the name is the tail of the line */
        REQUIRE(nlen + 1 < size);
        REQUIRE(memcmp(data + size - 1 - nlen, req.name, nlen) == 0);
        REQUIRE(data[size - 2 - nlen] == ' ');
        /* the kind and code */
        if (req.kind == LSVC_REQ_CONTROL) {
            REQUIRE(req.code >= 1 && req.code <= 255);
            REQUIRE(size > 8 && memcmp(data, "CONTROL ", 8) == 0);
            /* "CONTROL " digits " " name "\n" */
            size_t digits = size - 8 - 1 - nlen - 1;
            REQUIRE(digits >= 1 && digits <= 3);
            uint32_t code = 0;
            for (size_t i = 0; i < digits; i++) {
                REQUIRE(data[8 + i] >= '0' && data[8 + i] <= '9');
                code = code * 10 + (uint32_t)(data[8 + i] - '0');
            }
            REQUIRE(code == req.code);
        } else if (req.kind == LSVC_REQ_EVAL) {
            /* "EVAL " digits " " name "\n": the chunk's length, bounded */
            REQUIRE(req.code == 0);
            REQUIRE(req.payload_len <= LSVC_PROTO_EVAL_MAX);
            REQUIRE(size > 5 && memcmp(data, "EVAL ", 5) == 0);
            size_t digits = size - 5 - 1 - nlen - 1;
            REQUIRE(digits >= 1 && digits <= 8);
            uint32_t plen = 0;
            for (size_t i = 0; i < digits; i++) {
                REQUIRE(data[5 + i] >= '0' && data[5 + i] <= '9');
                plen = plen * 10 + (uint32_t)(data[5 + i] - '0');
            }
            REQUIRE(plen == req.payload_len);
        } else if (req.kind == LSVC_REQ_LOG) {
            REQUIRE(req.code == 0 && req.payload_len == 0);
            REQUIRE(size > 4 && memcmp(data, "LOG ", 4) == 0);
            REQUIRE(size == 4 + nlen + 1);
        } else {
            REQUIRE(req.kind == LSVC_REQ_STATUS);
            REQUIRE(req.code == 0 && req.payload_len == 0);
            REQUIRE(size > 7 && memcmp(data, "STATUS ", 7) == 0);
            REQUIRE(size == 7 + nlen + 1);
        }
    } else {
        /* refused: a NUL-terminated, non-empty message */
        REQUIRE(memchr(err, '\0', sizeof err) != NULL);
        REQUIRE(err[0] != '\0');
    }

    if (buf != &empty)
        free(buf);
    return 0;
}
