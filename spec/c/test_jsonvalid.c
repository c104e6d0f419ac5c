/*
 * test_jsonvalid.c - unit tests of jsonvalid.c (lsvc_json_valid): what is
 * one JSON value and what is not. Each text is checked from a heap copy of
 * exactly its length (no NUL after it), so an ASan build catches a read
 * past the end.
 */
#include <stdlib.h>
#include <string.h>

#include "pure/pure.h"

#include "check.h"

static bool valid(const char *s, size_t len, char *first)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, s, len);
    bool ok = lsvc_json_valid(copy, len, first);
    free(copy);
    return ok;
}

#define VALID(s) CHECK(valid(s, sizeof s - 1, NULL))
#define INVALID(s) CHECK(!valid(s, sizeof s - 1, NULL))

int main(void)
{
    VALID("{}");
    VALID(" {\"a\": [1, 2.5e-3, -0, true, false, null, \"x\\u00e9\\n\"], \"b\": {}}\n");
    VALID("[]");
    VALID("\"caf\xc3\xa9\"");
    VALID("0");
    VALID("{\n  \"pretty\": true\n}\n");
    INVALID("");
    INVALID("   ");
    INVALID("{");
    INVALID("{\"a\":}");
    INVALID("{\"a\":1,}");
    INVALID("[1,]");
    INVALID("{a:1}");
    INVALID("{} {}");
    INVALID("01");
    INVALID("1.");
    INVALID("-");
    INVALID("tru");
    INVALID("\"raw\nnewline\"");
    INVALID("\"bad \\x escape\"");
    INVALID("\"\\u12\"");
    INVALID("\"bad \xff utf-8\"");
    INVALID("\"overlong \xc0\xaf\"");
    INVALID("\"surrogate \xed\xa0\x80\"");
    INVALID("\"cut \xe2\x82\"");
    INVALID("{\"a\":1");
    /* depth: 128 levels are fine, 129 are not */
    char deep[300];
    for (int n = 128; n <= 129; n++) {
        memset(deep, '[', (size_t)n);
        memset(deep + n, ']', (size_t)n);
        CHECK(valid(deep, (size_t)(2 * n), NULL) == (n == 128));
    }
    char first = 'x';
    CHECK(valid(" \n{\"k\":1}", 9, &first));
    CHECK_EQ(first, '{');
    CHECK(valid("[1]", 3, &first));
    CHECK_EQ(first, '[');
    CHECK(!valid("  ", 2, &first));
    CHECK_EQ(first, '\0');
    return CHECK_EXIT("test_jsonvalid");
}
