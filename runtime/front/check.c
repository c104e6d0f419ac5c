/*
 * check.c - `luasvc check [--strict] [--json] [--allow-insecure-script]
 * SCRIPT...` (options anywhere): loads each script as its service would (its own worker and
 * Lua state, the same loader, contract and security check, the same load
 * deadline) without starting it, and reports what the load found: errors
 * (the script would not start) and the contract's warnings
 * (lua/contract.lua, through Lua's warn(), luawarn.c). Both reach this file
 * as the services' log lines, captured (lsvc_log_set_capture) instead of
 * printed; nothing starts, so no state is reported either.
 *
 * Output: each finding as "FILE:LINE: warning: MESSAGE" (or error) on
 * stderr, then "SCRIPT: ok (service 'NAME')" per good script on stdout;
 * --json: one JSON array of findings on stdout and nothing else. Exit
 * status: 2 when a script does not load (or for bad usage), 1 when
 * --strict and there are warnings, else 0.
 *
 * Main thread; the capture callback runs on the workers' threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

typedef struct finding {
    lsvc_level lv;
    char *service; /* the service's name when it was logged */
    char *text;    /* "FILE:LINE: message", "FILE: message" or "message" */
} finding;

static pthread_mutex_t found_mu = PTHREAD_MUTEX_INITIALIZER;
static finding *found;
static size_t nfound, capfound;

/* Called on a worker's thread for each line at warning or above. */
static void capture(lsvc_level lv, const char *service, const char *text)
{
    pthread_mutex_lock(&found_mu);
    if (nfound == capfound) {
        size_t n = capfound ? capfound * 2 : 16;
        finding *f = realloc(found, n * sizeof *f);
        if (!f) {
            pthread_mutex_unlock(&found_mu);
            return;
        }
        found = f;
        capfound = n;
    }
    found[nfound].lv = lv;
    found[nfound].service = strdup(service ? service : "");
    found[nfound].text = strdup(text);
    if (found[nfound].service && found[nfound].text)
        nfound++;
    pthread_mutex_unlock(&found_mu);
}

/* The parts of a finding's text: file (NULL: none named), line (0: none),
 * message; the file is cut out of text in place. */
static void split(char *text, char **file, long *line, char **msg)
{
    *file = NULL;
    *line = 0;
    *msg = text;
    /* "FILE:LINE: message": the first ":DIGITS: " */
    for (char *p = strchr(text, ':'); p; p = strchr(p + 1, ':')) {
        char *end;
        if (p[1] < '0' || p[1] > '9')
            continue;
        long v = strtol(p + 1, &end, 10);
        if (end[0] == ':' && end[1] == ' ' && p > text) {
            *p = '\0';
            *file = text;
            *line = v;
            *msg = end + 2;
            return;
        }
    }
    /* "FILE: message", FILE ending in .lua */
    char *p = strstr(text, ".lua: ");
    if (p && !memchr(text, '\n', (size_t)(p - text))) {
        p[4] = '\0';
        *file = text;
        *msg = p + 6;
    }
}

/* The script a finding is about: the one it names, else the service it
 * was logged under (by its name from the file, or its final name). */
static size_t owner(lsvc_host *h, const char *file, const char *service)
{
    for (size_t k = 0; file && k < lsvc_host_count(h); k++)
        if (strcmp(lsvc_service_script(lsvc_host_service(h, k)), file) == 0)
            return k;
    for (size_t k = 0; k < lsvc_host_count(h); k++) {
        const char *path = lsvc_service_script(lsvc_host_service(h, k));
        const char *base = strrchr(path, '/');
#ifdef _WIN32
        const char *bs = strrchr(path, '\\');
        if (bs && (!base || bs > base))
            base = bs;
#endif
        base = base ? base + 1 : path;
        size_t n = strlen(base);
        if (n > 4 && strcmp(base + n - 4, ".lua") == 0)
            n -= 4;
        if ((strlen(service) == n && strncmp(service, base, n) == 0) ||
            strcmp(service, lsvc_service_name(lsvc_host_service(h, k))) == 0)
            return k;
    }
    return 0;
}

static void put_json_str(const char *s)
{
    lsvc_buf b = lsvc_buf_init(NULL, 0);
    lsvc_buf_json(&b, s); /* measure */
    size_t n = b.len + 1;
    char *buf = malloc(n);
    if (!buf) {
        fputs("\"\"", stdout);
        return;
    }
    b = lsvc_buf_init(buf, n);
    lsvc_buf_json(&b, s);
    fputs(buf, stdout);
    free(buf);
}

/* Load every script of argv (the arguments that are not options) as a
 * service would, start none, and collect what they log. NULL when the
 * host could not be set up. */
static lsvc_host *load_all(int argc, char **argv, bool allow_insecure)
{
    lsvc_log_set_capture(capture);
    lsvc_host *h = lsvc_host_new();
    if (!h)
        return NULL;
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1])
            continue;
        lsvc_service_opts o = {.script = argv[i], .allow_insecure = allow_insecure};
        lsvc_service *svc = lsvc_service_new(h, &o);
        if (!svc || lsvc_host_add(h, svc) != 0)
            return NULL;
    }
    if (lsvc_watchdog_start(h) != 0)
        return NULL;
    for (size_t k = 0; k < lsvc_host_count(h); k++)
        if (lsvc_worker_start(lsvc_host_service(h, k)) != 0) {
            fputs("luasvc check: cannot start a worker thread\n", stderr);
            return NULL;
        }
    lsvc_host_wait_loaded(h);
    lsvc_host_release(h, false);
    lsvc_host_wait_stopped(h);
    lsvc_host_join(h);
    lsvc_log_set_capture(NULL);
    return h;
}

/* Finding i, "FILE:LINE: SEVERITY: MESSAGE" on stderr, or (json) an
 * element of the array on stdout; counted for the script it is about. */
static void report_finding(lsvc_host *h, size_t i, bool json, size_t *warnings, size_t *errors)
{
    finding *f = &found[i];
    bool is_warning = f->lv == LSVC_LOG_WARNING;
    char *file, *msg;
    long line;
    split(f->text, &file, &line, &msg);
    size_t k = owner(h, file, f->service);
    const char *script = lsvc_service_script(lsvc_host_service(h, k));
    if (!file)
        file = (char *)script;
    (is_warning ? warnings : errors)[k]++;
    const char *sev = is_warning ? "warning" : "error";
    if (!json) {
        if (line)
            fprintf(stderr, "%s:%ld: %s: %s\n", file, line, sev, msg);
        else
            fprintf(stderr, "%s: %s: %s\n", file, sev, msg);
        return;
    }
    /* a traceback, if any, is kept apart from the one-line message */
    char *tb = strchr(msg, '\n');
    if (tb)
        *tb++ = '\0';
    printf("%s\n  {\"file\": ", i ? "," : "");
    put_json_str(file);
    if (line)
        printf(", \"line\": %ld", line);
    else
        fputs(", \"line\": null", stdout);
    printf(", \"severity\": \"%s\", \"message\": ", sev);
    put_json_str(msg);
    if (tb) {
        fputs(", \"detail\": ", stdout);
        put_json_str(tb);
    }
    fputs(", \"script\": ", stdout);
    put_json_str(script);
    fputs("}", stdout);
}

/* A line per script that did not fail (not for json). true if any failed. */
static bool summarize(lsvc_host *h, const size_t *warnings, const size_t *errors, bool json,
                      bool strict)
{
    bool any_failed = false;
    for (size_t k = 0; k < lsvc_host_count(h); k++) {
        lsvc_service *svc = lsvc_host_service(h, k);
        bool failed = errors[k] || lsvc_service_load_failed(svc);
        any_failed = any_failed || failed;
        if (json || failed)
            continue;
        const char *script = lsvc_service_script(svc), *name = lsvc_service_name(svc);
        const char *s = warnings[k] == 1 ? "" : "s";
        if (!warnings[k])
            printf("%s: ok (service '%s')\n", script, name);
        else if (strict)
            printf("%s: %zu warning%s, failed (--strict)\n", script, warnings[k], s);
        else
            printf("%s: ok (service '%s'), %zu warning%s\n", script, name, warnings[k], s);
    }
    return any_failed;
}

static void forget_findings(void)
{
    for (size_t i = 0; i < nfound; i++) {
        free(found[i].service);
        free(found[i].text);
    }
    free(found);
    found = NULL;
    nfound = capfound = 0;
}

int lsvc_check_main(int argc, char **argv)
{
    bool strict = false, json = false, allow_insecure = false;
    int nscripts = 0;
    for (int i = 0; i < argc; i++) { /* options anywhere */
        if (strcmp(argv[i], "--strict") == 0)
            strict = true;
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--allow-insecure-script") == 0)
            allow_insecure = true;
        else if (argv[i][0] == '-' && argv[i][1])
            return lsvc_usage_error("check", "unknown option '%s'", argv[i]);
        else
            nscripts++;
    }
    if (!nscripts)
        return lsvc_usage_error("check", "no script given");

    lsvc_host *h = load_all(argc, argv, allow_insecure);
    if (!h)
        return 1;
    size_t *warnings = calloc(lsvc_host_count(h), sizeof *warnings);
    size_t *errors = calloc(lsvc_host_count(h), sizeof *errors);
    if (!warnings || !errors)
        return 1;
    if (json)
        fputs("[", stdout);
    for (size_t i = 0; i < nfound; i++)
        report_finding(h, i, json, warnings, errors);
    if (json)
        fputs(nfound ? "\n]\n" : "]\n", stdout);
    bool any_failed = summarize(h, warnings, errors, json, strict);
    size_t nwarn = 0;
    for (size_t k = 0; k < lsvc_host_count(h); k++)
        nwarn += warnings[k];
    forget_findings();
    free(warnings);
    free(errors);
    return any_failed ? 2 : strict && nwarn ? 1 : 0;
}
