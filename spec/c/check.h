/*
 * check.h - the C unit tests' assertion kit: CHECK, CHECK_EQ, CHECK_STR
 * and FAILF count checks and failures (atomically: test_queue checks from
 * several threads) and say where a check failed. Each test's main prints
 * the counts and exits 1 on any failure (CHECK_EXIT).
 */
#ifndef LUASVC_SPEC_CHECK_H
#define LUASVC_SPEC_CHECK_H

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int checks, failures;

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(expr)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        checks++;                                                                                  \
        if (a_ != b_) {                                                                            \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", __FILE__,         \
                    __LINE__, #a, #b, a_, b_);                                                     \
        }                                                                                          \
    } while (0)

/* Strings equal, NULL only equal to NULL. */
#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        checks++;                                                                                  \
        if (!((a_ == NULL && b_ == NULL) || (a_ != NULL && b_ != NULL && strcmp(a_, b_) == 0))) {  \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__,    \
                    __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                     \
        }                                                                                          \
    } while (0)

/* Report a failure found inside a loop, with the loop's values. */
#define FAILF(...)                                                                                 \
    do {                                                                                           \
        failures++;                                                                                \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
    } while (0)

/* Print "NAME: N checks, M failed"; the test's exit status. */
#define CHECK_EXIT(name)                                                                           \
    (printf("%s: %d checks, %d failed\n", (name), atomic_load(&checks), atomic_load(&failures)),   \
     atomic_load(&failures) ? 1 : 0)

#endif
