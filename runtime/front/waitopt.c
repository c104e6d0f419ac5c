/*
 * waitopt.c - the arguments of the verbs that can wait for the state
 * their control leads to: `start`, `stop`, `pause` and `continue` take
 * NAME, `--wait` and `--timeout SECONDS` (Windows' start also its start
 * arguments, which "--" passes on as they are). Both platforms' clients
 * parse with it; what waiting means is each platform's. Main thread of a
 * client.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

/* --timeout's value: seconds, a decimal number above 0 and at most a day. */
static bool parse_seconds(const char *s, uint64_t *ms)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v <= 0 || v > 86400)
        return false;
    *ms = (uint64_t)(v * 1000.0 + 0.5);
    if (*ms == 0)
        *ms = 1;
    return true;
}

int lsvc_parse_wait(const char *verb, int argc, char **argv, bool takes_args, lsvc_wait_args *out)
{
    *out = (lsvc_wait_args){0};
    bool options = true;
    int first = -1; /* the first start argument: they are packed from there */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--wait") == 0) {
            out->wait = true;
        } else if (options && strcmp(a, "--timeout") == 0) {
            if (i + 1 >= argc)
                return lsvc_usage_error(verb, "--timeout needs a value (SECONDS)");
            if (!parse_seconds(argv[++i], &out->timeout_ms))
                return lsvc_usage_error(verb,
                                        "--timeout '%s': a number of seconds above 0, at most "
                                        "86400 (0.5, 30)",
                                        argv[i]);
        } else if (options && takes_args && out->name && strcmp(a, "--") == 0) {
            options = false;
        } else if (!out->name && a[0] != '-') {
            out->name = a;
        } else if (out->name && takes_args) {
            if (first < 0)
                first = i;
            argv[first + out->nargs++] = argv[i];
        } else {
            return lsvc_usage_error(verb, "unexpected argument '%s'", a);
        }
    }
    out->args = first < 0 ? NULL : argv + first;
    if (!out->name)
        return lsvc_usage_error(verb, "no NAME given");
    return 0;
}
