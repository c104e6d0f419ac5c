/*
 * posix_unit.c - the systemd units luasvc installed, as the client finds
 * them: the unit directories, a unit's markers (luasvc's own "#
 * luasvc-service: NAME", and "# luasvc-runtime-dir: DIR" for a unit with
 * a runtime directory of its own), systemctl, and what start, stop,
 * reload, status and control ask of an installed unit. posix_install.c
 * (install, uninstall) calls it; it calls nothing of install's. Main
 * thread of a client only.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "posix.h"

int lsvc_unit_dir(bool user, const char *given, char *buf, size_t len)
{
    int n;
    if (given)
        n = snprintf(buf, len, "%s", given);
    else if (!user)
        n = snprintf(buf, len, "/etc/systemd/system");
    else if (getenv("XDG_CONFIG_HOME") && *getenv("XDG_CONFIG_HOME"))
        n = snprintf(buf, len, "%s/systemd/user", getenv("XDG_CONFIG_HOME"));
    else if (getenv("HOME") && *getenv("HOME"))
        n = snprintf(buf, len, "%s/.config/systemd/user", getenv("HOME"));
    else
        return -1;
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

bool lsvc_unit_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 200)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == ':' || *p == '_' || *p == '.' || *p == '-'))
            return false;
    return true;
}

/* Start systemctl [--user] A1 [A2] [A3]; its pid, or -1. */
static pid_t systemctl_spawn(bool user, const char *a1, const char *a2, const char *a3, bool quiet)
{
    const char *argv[7];
    int k = 0;
    argv[k++] = "systemctl";
    if (user)
        argv[k++] = "--user";
    argv[k++] = a1;
    if (a2)
        argv[k++] = a2;
    if (a3)
        argv[k++] = a3;
    argv[k] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (quiet) { /* its answer is the exit status */
            FILE *f = freopen("/dev/null", "w", stderr);
            f = freopen("/dev/null", "w", stdout);
            (void)f;
        }
        execvp("systemctl", (char *const *)argv);
        fprintf(stderr, "luasvc: cannot run systemctl: %s\n", strerror(errno));
        _exit(127);
    }
    return pid;
}

/* pid's exit status (128 + signal), waiting at most until deadline_ns (0:
 * for ever); -1 when it has not ended by then (it is still running). */
static int systemctl_reap(pid_t pid, uint64_t deadline_ns)
{
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, deadline_ns ? WNOHANG : 0);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 && errno != EINTR)
            return 127;
        if (r == 0 && lsvc_now_ns() >= deadline_ns)
            return -1;
        if (r == 0) {
            struct timespec ts = {0, 20000000L}; /* 20 ms */
            nanosleep(&ts, NULL);
        }
    }
}

int lsvc_systemctl(bool user, const char *a1, const char *a2, bool quiet)
{
    pid_t pid = systemctl_spawn(user, a1, a2, NULL, quiet);
    return pid < 0 ? 127 : systemctl_reap(pid, 0);
}

/* The value of a marker line ("# key: value\n") into buf. */
static void marker_value(const char *line, size_t skip, char *buf, size_t len)
{
    size_t n = strcspn(line + skip, "\n");
    if (n >= len)
        n = len - 1; /* longer than any name it can hold */
    memcpy(buf, line + skip, n);
    buf[n] = '\0';
}

/* Whether the unit file at path is luasvc's; then (optionally) its
 * service name and its own runtime directory ("" when it uses the shared
 * one). */
static bool unit_markers(const char *path, char *svc, size_t svclen, char *rundir, size_t rundirlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[1024];
    bool ours = false;
    if (rundir)
        rundir[0] = '\0';
    /* the markers are in the comment block that opens the unit */
    while (fgets(line, sizeof line, f) && line[0] == '#') {
        if (strncmp(line, LSVC_UNIT_MARKER, strlen(LSVC_UNIT_MARKER)) == 0) {
            ours = true;
            if (svc)
                marker_value(line, strlen(LSVC_UNIT_MARKER), svc, svclen);
        } else if (rundir &&
                   strncmp(line, LSVC_UNIT_RUNDIR_MARKER, strlen(LSVC_UNIT_RUNDIR_MARKER)) == 0)
            marker_value(line, strlen(LSVC_UNIT_RUNDIR_MARKER), rundir, rundirlen);
    }
    fclose(f);
    return ours;
}

/* Find NAME.service written by luasvc: the user's units first, then the
 * system's. Fills path, user, and (optionally) the service name and the
 * unit's own runtime directory ("" when it uses the shared one). */
static bool unit_find(const char *name, char *path, size_t len, bool *user, char *svc,
                      size_t svclen, char *rundir, size_t rundirlen)
{
    if (!lsvc_unit_name_valid(name))
        return false;
    for (int u = 1; u >= 0; u--) {
        char dir[PATH_MAX];
        if (lsvc_unit_dir(u, NULL, dir, sizeof dir) != 0)
            continue;
        int n = snprintf(path, len, "%s/%s.service", dir, name);
        if (n < 0 || (size_t)n >= len)
            continue;
        if (unit_markers(path, svc, svclen, rundir, rundirlen)) {
            *user = u;
            return true;
        }
    }
    return false;
}

/* The path of a unit's own runtime directory (its marker's rundir): %t is
 * /run for the system manager, $XDG_RUNTIME_DIR for a user's. false when
 * there is none to look in: no marker, LUASVC_RUNTIME_DIR set (the client
 * looks there only), no %t, or a marker that leaves %t. */
static bool unit_rundir_path(bool user, const char *rundir, char *out, size_t len)
{
    const char *rt = user ? getenv("XDG_RUNTIME_DIR") : "/run";
    const char *env = getenv("LUASVC_RUNTIME_DIR");
    if (!rundir[0] || !rt || !*rt || (env && *env) || strstr(rundir, ".."))
        return false;
    int n = snprintf(out, len, "%s/%s", rt, rundir);
    return n > 0 && (size_t)n < len;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void lsvc_unit_rundirs(lsvc_unit_rundir_fn fn, void *arg)
{
    char **seen = NULL; /* units of luasvc's already found: the user's shadow the system's */
    size_t nseen = 0;
    for (int u = 1; u >= 0; u--) {
        char dir[PATH_MAX];
        if (lsvc_unit_dir(u, NULL, dir, sizeof dir) != 0)
            continue;
        DIR *d = opendir(dir);
        if (!d)
            continue;
        char **units = NULL;
        size_t nunits = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t l = strlen(de->d_name);
            if (l <= 8 || strcmp(de->d_name + l - 8, ".service") != 0)
                continue;
            char **grown = realloc(units, (nunits + 1) * sizeof *units);
            if (!grown)
                break;
            units = grown;
            if ((units[nunits] = strndup(de->d_name, l - 8)))
                nunits++;
        }
        closedir(d);
        if (nunits)
            qsort(units, nunits, sizeof *units, cmp_str); /* a stable listing */
        for (size_t i = 0; i < nunits; i++) {
            char path[PATH_MAX + 300], rundir[256], rdpath[PATH_MAX];
            bool dup = false;
            for (size_t k = 0; k < nseen && !dup; k++)
                dup = strcmp(seen[k], units[i]) == 0;
            int n = snprintf(path, sizeof path, "%s/%s.service", dir, units[i]);
            if (dup || !lsvc_unit_name_valid(units[i]) || n < 0 || (size_t)n >= sizeof path ||
                !unit_markers(path, NULL, 0, rundir, sizeof rundir)) {
                free(units[i]);
                continue;
            }
            char **grown = realloc(seen, (nseen + 1) * sizeof *seen);
            if (!grown) {
                free(units[i]);
                continue;
            }
            seen = grown;
            seen[nseen++] = units[i];
            if (unit_rundir_path(u, rundir, rdpath, sizeof rdpath))
                fn(units[i], rdpath, arg);
        }
        free(units);
    }
    for (size_t k = 0; k < nseen; k++)
        free(seen[k]);
    free(seen);
}

/* What systemd says of unit: "ActiveState/SubState" into buf. */
static void unit_state(bool user, const char *unit, char *buf, size_t len)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "systemctl %s show -p ActiveState -p SubState --value %s",
             user ? "--user" : "", unit); /* unit: checked, no shell characters */
    FILE *p = popen(cmd, "r");
    char a[64] = "", b[64] = "";
    if (p) {
        if (!fgets(a, sizeof a, p) || !fgets(b, sizeof b, p))
            b[0] = '\0';
        pclose(p);
    }
    a[strcspn(a, "\n")] = b[strcspn(b, "\n")] = '\0';
    snprintf(buf, len, "%s/%s", a[0] ? a : "unknown", b[0] ? b : "unknown");
}

/* The unit NAME.service of luasvc's, into unit; whether the manager is the
 * user's. false when there is none, or (a verb but start) systemd does not
 * run it: the service may run by hand (luasvc run) under the same name;
 * its endpoint decides. */
static bool unit_for(const char *name, const char *verb, char *unit, size_t len, bool *user)
{
    char path[PATH_MAX];
    if (!unit_find(name, path, sizeof path, user, NULL, 0, NULL, 0))
        return false;
    snprintf(unit, len, "%s.service", name);
    if (strcmp(verb, "start") == 0 || lsvc_systemctl(*user, "is-active", unit, true) == 0)
        return true;
    /* on its way (deactivating after an earlier stop, activating): the
     * manager's job is the one to wait for, not the endpoint going away */
    char state[140];
    unit_state(*user, unit, state, sizeof state);
    return strncmp(state, "deactivating/", 13) == 0 || strncmp(state, "activating/", 11) == 0 ||
           strncmp(state, "reloading/", 10) == 0;
}

int lsvc_unit_systemctl(const char *name, const char *verb)
{
    char unit[256];
    bool user;
    if (!unit_for(name, verb, unit, sizeof unit, &user))
        return -1;
    return lsvc_systemctl(user, verb, unit, false);
}

int lsvc_unit_systemctl_wait(const char *name, const char *verb, uint64_t timeout_ms)
{
    char unit[256], state[140];
    bool user;
    if (!unit_for(name, verb, unit, sizeof unit, &user))
        return -1;
    /* systemctl start/stop waits for its job; the job goes on when this
     * client stops waiting for it */
    pid_t pid = systemctl_spawn(user, verb, unit, NULL, false);
    if (pid < 0)
        return 127;
    int rc = systemctl_reap(pid, lsvc_now_ns() + timeout_ms * 1000000ull);
    if (rc >= 0)
        return rc;
    kill(pid, SIGTERM);
    systemctl_reap(pid, 0);
    unit_state(user, unit, state, sizeof state);
    fprintf(stderr, "luasvc %s: %s is still %s after %.1f s (its %s goes on)\n", verb, unit, state,
            (double)timeout_ms / 1000.0, verb);
    return 1;
}

const char *lsvc_unit_service_name(const char *name, char *buf, size_t len)
{
    char path[PATH_MAX], rundir[256], dir[PATH_MAX];
    bool user;
    if (!unit_find(name, path, sizeof path, &user, buf, len, rundir, sizeof rundir) || !buf[0])
        return name;
    /* A unit with a runtime directory of its own has its endpoint there. */
    if (unit_rundir_path(user, rundir, dir, sizeof dir))
        setenv("LUASVC_RUNTIME_DIR", dir, 1);
    return buf;
}
