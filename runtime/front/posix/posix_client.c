/*
 * posix_client.c - the client commands of a POSIX machine: control, stop,
 * pause, continue, reload and status, through a host's control endpoint;
 * with --wait, stop, pause and continue then poll the endpoint until the
 * service is in the state the control leads to. Runs in the luasvc client
 * process (main thread).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "posix.h"

/* Exit status of a client command: 0 accepted, 1 refused or unreachable. */
int lsvc_client_control(const char *name, int code)
{
    char dir[256], err[512], req[LSVC_PROTO_MAX + 1], out[65536];
    if (!lsvc_name_valid(name)) {
        fprintf(stderr, "luasvc: invalid service name '%s'\n", name);
        return 2;
    }
    if (lsvc_runtime_dir(dir, sizeof dir, err, sizeof err) != 0) {
        fprintf(stderr, "luasvc: %s\n", err);
        return 1;
    }
    snprintf(req, sizeof req, "CONTROL %d %s\n", code, name);
    int rc = lsvc_endpoint_request(dir, name, req, out, sizeof out, err, sizeof err);
    if (rc == LSVC_CLIENT_NOT_RUNNING) {
        fprintf(stderr, "luasvc: %s: error %d: %s\n", err, LSVC_ERROR_SERVICE_NOT_ACTIVE,
                lsvc_win32_message(LSVC_ERROR_SERVICE_NOT_ACTIVE));
        return 1;
    }
    if (rc != LSVC_CLIENT_OK) {
        fprintf(stderr, "luasvc: %s\n", err);
        return 1;
    }
    if (strncmp(out, "OK", 2) == 0)
        return 0;
    const char *ctl = lsvc_control_name((uint32_t)code);
    unsigned werr;
    int off = 0;
    if (sscanf(out, "ERR %u %n", &werr, &off) == 1 && off > 0)
        fprintf(stderr, "luasvc: %s %d to '%s' refused: error %u: %s\n", ctl ? ctl : "control",
                code, name, werr, out + off);
    else
        fprintf(stderr, "luasvc: unexpected reply from '%s': %s\n", name, out);
    return 1;
}

/* Pull a scalar field out of our own status JSON (flat, known keys). */
static void field(const char *json, const char *key, char *buf, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    buf[0] = '\0';
    if (!p)
        return;
    p += strlen(pat);
    size_t n = 0;
    if (*p == '"') {
        p++;
        while (*p && *p != '"' && n + 1 < len) {
            if (*p == '\\' && p[1])
                p++;
            buf[n++] = *p++;
        }
    } else if (*p == '[') {
        p++;
        while (*p && *p != ']' && n + 1 < len) {
            if (*p != '"')
                buf[n++] = *p;
            p++;
        }
    } else {
        while (*p && *p != ',' && *p != '}' && n + 1 < len)
            buf[n++] = *p++;
    }
    buf[n] = '\0';
}

/* How often --wait asks the endpoint. */
#define WAIT_POLL_MS 20

/* The service's state (and checkpoint, wait hint, stop_timeout) from its
 * endpoint at dir: 1, 0 when it is not running (no endpoint), 2 when its
 * host closed the connection without a reply (it is closing its endpoint:
 * going away), -1 after saying why it cannot be asked. */
static int query_state(const char *dir, const char *name, char state[32], unsigned *cp,
                       unsigned *hint, unsigned *stop_timeout)
{
    char err[512], req[LSVC_PROTO_MAX + 1], out[65536], v[32];
    snprintf(req, sizeof req, "STATUS %s\n", name);
    int rc = lsvc_endpoint_request(dir, name, req, out, sizeof out, err, sizeof err);
    if (rc == LSVC_CLIENT_NOT_RUNNING)
        return 0;
    if (rc == LSVC_CLIENT_ERROR && strncmp(err, "no reply", 8) == 0 && !strstr(err, "within"))
        return 2;
    if (rc != LSVC_CLIENT_OK || strncmp(out, "OK ", 3) != 0) {
        fprintf(stderr, "luasvc: %s\n", rc != LSVC_CLIENT_OK ? err : out);
        return -1;
    }
    field(out + 3, "state", state, 32);
    field(out + 3, "checkpoint", v, sizeof v);
    *cp = (unsigned)strtoul(v, NULL, 10);
    field(out + 3, "wait_hint", v, sizeof v);
    *hint = (unsigned)strtoul(v, NULL, 10);
    field(out + 3, "stop_timeout", v, sizeof v);
    *stop_timeout = (unsigned)strtoul(v, NULL, 10);
    return 1;
}

/* The state a control leads to, and the pending state on the way. */
static void control_target(int code, const char **target, const char **pending)
{
    *target = code == LSVC_CTRL_STOP ? "STOPPED" : code == LSVC_CTRL_PAUSE ? "PAUSED" : "RUNNING";
    *pending = code == LSVC_CTRL_STOP    ? "STOP_PENDING"
               : code == LSVC_CTRL_PAUSE ? "PAUSE_PENDING"
                                         : "CONTINUE_PENDING";
}

/* Poll until name is in target (0), in a state that is neither target nor
 * pending (1, said), or the deadline passes (1, with the state it is in). */
static int wait_target(const char *verb, const char *dir, const char *name, int code,
                       uint64_t timeout_ms, unsigned stop_timeout)
{
    const char *target, *pending;
    control_target(code, &target, &pending);
    /* every pending state resolves within stop_timeout (+1 s when forced) */
    uint64_t t0 = lsvc_now_ns(), limit = timeout_ms ? timeout_ms : stop_timeout + 5000ull;
    char state[32];
    unsigned cp, hint, st;
    for (;;) {
        int q = query_state(dir, name, state, &cp, &hint, &st);
        if (q == 2 && code == LSVC_CTRL_STOP) /* the host is closing: look again */
            snprintf(state, sizeof state, "%s", pending);
        else if (q == 2)
            fprintf(stderr, "luasvc %s: service '%s' closed its endpoint without a reply\n", verb,
                    name);
        if (q < 0 || (q == 2 && code != LSVC_CTRL_STOP))
            return 1;
        if (q == 0) /* the host is gone: stopped */
            snprintf(state, sizeof state, "STOPPED");
        if (strcmp(state, target) == 0) {
            printf("%s: %s\n", name, state);
            return 0;
        }
        if (strcmp(state, pending) != 0) {
            fprintf(stderr, "luasvc %s: '%s' is %s, not %s\n", verb, name, state, target);
            return 1;
        }
        uint64_t waited = (lsvc_now_ns() - t0) / 1000000u;
        if (waited >= limit) {
            fprintf(stderr,
                    "luasvc %s: '%s' is still %s after %.1f s (checkpoint %u, wait hint %u "
                    "ms)%s\n",
                    verb, name, state, (double)limit / 1000.0, cp, hint,
                    timeout_ms ? "" : "; --timeout SECONDS waits longer");
            return 1;
        }
        struct timespec ts = {0, WAIT_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int lsvc_client_control_wait(const char *verb, const char *name, int code, uint64_t timeout_ms)
{
    char dir[256], err[512], state[32];
    unsigned cp, hint, stop_timeout = 0;
    const char *target, *pending;
    if (!lsvc_name_valid(name)) {
        fprintf(stderr, "luasvc: invalid service name '%s'\n", name);
        return 2;
    }
    if (lsvc_runtime_dir(dir, sizeof dir, err, sizeof err) != 0) {
        fprintf(stderr, "luasvc: %s\n", err);
        return 1;
    }
    control_target(code, &target, &pending);
    int q = query_state(dir, name, state, &cp, &hint, &stop_timeout);
    if (q == 2 && code == LSVC_CTRL_STOP) /* going away: wait for it */
        return wait_target(verb, dir, name, code, timeout_ms, LSVC_STOP_TIMEOUT_DEFAULT_MS);
    if (q < 0 || q == 2)
        return 1;
    /* already on its way there (an earlier control, or one whose wait
     * timed out): wait; already there: done, as the manager would say */
    bool on_the_way = q == 1 && strcmp(state, pending) == 0;
    if (q == 1 && code != LSVC_CTRL_STOP && strcmp(state, target) == 0) {
        printf("%s: %s\n", name, state);
        return 0;
    }
    if (!on_the_way) {
        int rc = lsvc_client_control(name, code);
        if (rc != 0)
            return rc;
    }
    return wait_target(verb, dir, name, code, timeout_ms, stop_timeout);
}

/* The status of service name at dir: one line, or its JSON object. unit:
 * the installed unit whose own runtime directory dir is (its name is the
 * one to address it by), or NULL. */
static int show(const char *dir, const char *name, bool json, bool quiet_missing, const char *unit)
{
    char err[512], req[LSVC_PROTO_MAX + 1], out[65536];
    snprintf(req, sizeof req, "STATUS %s\n", name);
    int rc = lsvc_endpoint_request(dir, name, req, out, sizeof out, err, sizeof err);
    if (rc == LSVC_CLIENT_NOT_RUNNING && quiet_missing)
        return 0;
    if (rc != LSVC_CLIENT_OK) {
        fprintf(stderr, "luasvc: %s\n", err);
        return 1;
    }
    if (strncmp(out, "OK ", 3) != 0) {
        fprintf(stderr, "luasvc: status of '%s': %s\n", name, out);
        return 1;
    }
    const char *j = out + 3;
    if (json) {
        if (unit && j[0] == '{') /* unit names need no escape */
            printf("{\"unit\":\"%s\",%s\n", unit, j + 1);
        else
            printf("%s\n", j);
        return 0;
    }
    char state[32], pid[16], acc[256], w32[16], sse[16], cp[16], wh[16];
    field(j, "state", state, sizeof state);
    field(j, "pid", pid, sizeof pid);
    field(j, "controls_accepted", acc, sizeof acc);
    field(j, "win32_exit_code", w32, sizeof w32);
    field(j, "service_exit_code", sse, sizeof sse);
    field(j, "checkpoint", cp, sizeof cp);
    field(j, "wait_hint", wh, sizeof wh);
    printf("%-20s %-16s pid %-7s accepts %-28s exit %s/%s", name, state, pid, acc[0] ? acc : "-",
           w32, sse);
    if (strstr(state, "PENDING"))
        printf("  checkpoint %s wait %s ms", cp, wh);
    char text[300];
    field(j, "status_text", text, sizeof text);
    if (text[0] && strcmp(text, "null") != 0)
        printf("  (%s)", text);
    if (unit) /* last: the status text is the script's */
        printf("  unit %s", unit);
    printf("\n");
    return 0;
}

/*
 * status without a NAME: the services of the runtime directory, then
 * those of installed units with a directory of their own (install
 * --user-account), each directory once. A unit's directory that cannot
 * be read (another user's) or is gone is passed over; a stale socket in
 * it (its host gone) is, as in the runtime directory.
 */
typedef struct listing {
    bool json;
    int rc;
    char **dirs; /* real paths of the directories listed */
    size_t ndirs;
} listing;

/* Whether dir was listed already (or cannot be); else noted as listed. */
static bool listed_before(listing *ls, const char *dir)
{
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return true;
    for (size_t i = 0; i < ls->ndirs; i++)
        if (strcmp(ls->dirs[i], real) == 0)
            return true;
    char **grown = realloc(ls->dirs, (ls->ndirs + 1) * sizeof *grown);
    if (!grown)
        return false;
    ls->dirs = grown;
    if ((ls->dirs[ls->ndirs] = strdup(real)))
        ls->ndirs++;
    return false;
}

static int list_dir(listing *ls, const char *dir, const char *unit)
{
    char **names;
    size_t n;
    if (lsvc_endpoint_list(dir, &names, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        ls->rc |= show(dir, names[i], ls->json, true, unit);
        free(names[i]);
    }
    free(names);
    return 0;
}

static void on_unit_rundir(const char *unit, const char *dir, void *arg)
{
    listing *ls = arg;
    if (!listed_before(ls, dir))
        list_dir(ls, dir, unit);
}

int lsvc_client_status(const char *name, bool json)
{
    char dir[256], err[512];
    if (lsvc_runtime_dir(dir, sizeof dir, err, sizeof err) != 0) {
        fprintf(stderr, "luasvc: %s\n", err);
        return 1;
    }
    if (name) {
        if (!lsvc_name_valid(name)) {
            fprintf(stderr, "luasvc: invalid service name '%s'\n", name);
            return 2;
        }
        return show(dir, name, json, false, NULL);
    }
    listing ls = {.json = json};
    if (!listed_before(&ls, dir) && list_dir(&ls, dir, NULL) != 0) {
        fprintf(stderr, "luasvc: cannot list %s\n", dir);
        ls.rc = 1;
    } else {
        lsvc_unit_rundirs(on_unit_rundir, &ls);
    }
    for (size_t i = 0; i < ls.ndirs; i++)
        free(ls.dirs[i]);
    free(ls.dirs);
    return ls.rc;
}
