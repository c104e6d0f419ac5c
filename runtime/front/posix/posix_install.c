/*
 * posix_install.c - services as systemd units: `luasvc install SCRIPT
 * --systemd` writes NAME.service (Type=notify, run by `luasvc run`),
 * `luasvc uninstall NAME --systemd` stops and removes it, and the client
 * commands start/stop/reload go through systemctl for units luasvc
 * installed. A unit is luasvc's when its file carries the marker comment
 * "# luasvc-service: NAME" (NAME: the script's service name, which is
 * also the name of its control endpoint). A unit that runs as another
 * account (--user-account) has a runtime directory of its own, named by a
 * second marker, "# luasvc-runtime-dir: DIR" (DIR relative to the
 * manager's runtime directory, %t), where the client then looks. Every
 * unit gets the sandbox below (hardening[]). Main thread of a client only.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../frontend.h"
#include "posix.h"

#define MARKER "# luasvc-service: "
#define RUNDIR_MARKER "# luasvc-runtime-dir: "
/* TimeoutStopSec beyond stop_timeout: the forced stop's last budget (see
 * worker.c) and the exit itself. */
#define STOP_MARGIN_MS 3000u

static int fail2(const char *cmd, const char *msg)
{
    fprintf(stderr, "luasvc %s: %s\n", cmd, msg);
    return 2;
}

/* The unit directory: DIR given, else the user's or the system's. */
static int unit_dir(bool user, const char *given, char *buf, size_t len)
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

/* systemd's unit name characters, and no template '@'. */
static bool unit_name_valid(const char *s)
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

/* Run systemctl [--user] ARGS...; its exit status (127 when it cannot run). */
static int systemctl(bool user, const char *a1, const char *a2, bool quiet)
{
    const char *argv[6];
    int k = 0;
    argv[k++] = "systemctl";
    if (user)
        argv[k++] = "--user";
    argv[k++] = a1;
    if (a2)
        argv[k++] = a2;
    argv[k] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 127;
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
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 127;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
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
        if (strncmp(line, MARKER, strlen(MARKER)) == 0) {
            ours = true;
            if (svc)
                marker_value(line, strlen(MARKER), svc, svclen);
        } else if (rundir && strncmp(line, RUNDIR_MARKER, strlen(RUNDIR_MARKER)) == 0)
            marker_value(line, strlen(RUNDIR_MARKER), rundir, rundirlen);
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
    if (!unit_name_valid(name))
        return false;
    for (int u = 1; u >= 0; u--) {
        char dir[PATH_MAX];
        if (unit_dir(u, NULL, dir, sizeof dir) != 0)
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
        if (unit_dir(u, NULL, dir, sizeof dir) != 0)
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
            if (dup || !unit_name_valid(units[i]) || n < 0 || (size_t)n >= sizeof path ||
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

int lsvc_unit_systemctl(const char *name, const char *verb)
{
    char path[PATH_MAX], unit[256];
    bool user;
    if (!unit_find(name, path, sizeof path, &user, NULL, 0, NULL, 0))
        return -1;
    snprintf(unit, sizeof unit, "%s.service", name);
    /* stop and reload of a unit systemd does not run: the service may run
     * by hand (luasvc run) under the same name; its endpoint decides */
    if (strcmp(verb, "start") != 0 && systemctl(user, "is-active", unit, true) != 0)
        return -1;
    return systemctl(user, verb, unit, false);
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

/* Append s to the unit text as one double-quoted word: C-style escapes
 * for '"' and '\', '%' doubled (specifiers), and '$' doubled when vars
 * (ExecStart= expands variables; path settings do not). Returns -1 for a
 * character a unit file cannot carry (control chars). */
static int put_quoted(FILE *f, const char *s, bool vars)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return -1;
    fputc('"', f);
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', f);
        else if (*p == '%' || (vars && *p == '$'))
            fputc(*p, f);
        fputc(*p, f);
    }
    fputc('"', f);
    return 0;
}

/* One ExecStart= word. */
static int put_word(FILE *f, const char *s) { return put_quoted(f, s, true); }

/* What `luasvc install` was asked. */
typedef struct install_opts {
    const char *script, *dir, *name, *description, *account;
    const char *log_file, *log_max_size, *log_keep; /* passed on to `luasvc run` */
    char log_path[PATH_MAX];                        /* log_file made absolute */
    bool systemd, user, restart;
} install_opts;

/* --user-account NAME: a user systemd can run a unit as (User=): one the
 * system knows, by name or uid, in characters a unit file carries as is. */
static int account_check(const char *a)
{
    for (const char *p = a; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-') ||
            (p == a && *p == '-')) {
            fprintf(stderr,
                    "luasvc install: --user-account '%s' is not a user name (A-Z a-z 0-9 _ . -, "
                    "not starting with -)\n",
                    a);
            return 2;
        }
    char *end;
    unsigned long uid = strtoul(a, &end, 10);
    bool numeric = *end == '\0';
    if (numeric ? getpwuid((uid_t)uid) == NULL : getpwnam(a) == NULL) {
        fprintf(stderr, "luasvc install: --user-account '%s': no such user on this system\n", a);
        return 2;
    }
    return 0;
}

/* --log-file PATH [--log-max-size SIZE] [--log-keep N]: what `luasvc run`
 * will take, checked now; PATH made absolute (its directory must exist:
 * the unit makes it writable with ReadWritePaths=). 0, or 2. */
static int log_check(install_opts *o)
{
    uint64_t size;
    char *end = NULL;
    if ((o->log_max_size || o->log_keep) && !o->log_file)
        return lsvc_usage_error("install", "--log-max-size and --log-keep go with --log-file");
    if (o->log_max_size && (lsvc_parse_size(o->log_max_size, &size) != 0 || size == 0))
        return lsvc_usage_error("install", "--log-max-size needs a size above 0: bytes, or a "
                                           "number with k, M or G (512k, 10M)");
    if (o->log_keep && (strtol(o->log_keep, &end, 10) < 0 || *end || !*o->log_keep ||
                        strtol(o->log_keep, NULL, 10) > 1000))
        return lsvc_usage_error("install", "--log-keep needs a number of files in 0..1000");
    if (!o->log_file)
        return 0;
    char dir[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", o->log_file);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    if (slash == dir)
        dir[1] = '\0'; /* "/x.log" */
    else if (slash)
        *slash = '\0';
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        fprintf(stderr, "luasvc install: --log-file '%s' names no file\n", o->log_file);
        return 2;
    }
    if (!realpath(slash ? dir : ".", real)) {
        fprintf(stderr, "luasvc install: --log-file '%s': its directory: %s\n", o->log_file,
                strerror(errno));
        return 2;
    }
    int n = snprintf(o->log_path, sizeof o->log_path, "%s%s%s", real,
                     strcmp(real, "/") == 0 ? "" : "/", slash ? slash + 1 : dir);
    if (n < 0 || (size_t)n >= sizeof o->log_path) {
        fprintf(stderr, "luasvc install: --log-file '%s': path too long\n", o->log_file);
        return 2;
    }
    return 0;
}

/* The arguments of `luasvc install`: 0, or 2 after the usage error. */
static int install_parse(int argc, char **argv, install_opts *o)
{
    *o = (install_opts){0};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool takes = strcmp(a, "--unit-dir") == 0 || strcmp(a, "--name") == 0 ||
                     strcmp(a, "--description") == 0 || strcmp(a, "--user-account") == 0 ||
                     strcmp(a, "--log-file") == 0 || strcmp(a, "--log-max-size") == 0 ||
                     strcmp(a, "--log-keep") == 0;
        if (takes && (i + 1 >= argc || !argv[i + 1][0]))
            return lsvc_usage_error("install", "%s needs a value", a);
        if (strcmp(a, "--systemd") == 0)
            o->systemd = true;
        else if (strcmp(a, "--user") == 0)
            o->user = true;
        else if (strcmp(a, "--restart-on-failure") == 0)
            o->restart = true;
        else if (strcmp(a, "--unit-dir") == 0)
            o->dir = argv[++i];
        else if (strcmp(a, "--name") == 0)
            o->name = argv[++i];
        else if (strcmp(a, "--description") == 0)
            o->description = argv[++i];
        else if (strcmp(a, "--user-account") == 0)
            o->account = argv[++i];
        else if (strcmp(a, "--log-file") == 0)
            o->log_file = argv[++i];
        else if (strcmp(a, "--log-max-size") == 0)
            o->log_max_size = argv[++i];
        else if (strcmp(a, "--log-keep") == 0)
            o->log_keep = argv[++i];
        else if (a[0] == '-')
            return lsvc_usage_error("install", "unknown option '%s'", a);
        else if (o->script)
            return lsvc_usage_error("install", "one SCRIPT only (got '%s' and '%s')", o->script, a);
        else
            o->script = a;
    }
    if (!o->script)
        return lsvc_usage_error("install", "no SCRIPT given");
    if (!o->systemd)
        return lsvc_usage_error("install", "this platform installs systemd units: add --systemd");
    if (o->name && !unit_name_valid(o->name)) {
        fprintf(stderr,
                "luasvc install: --name '%s' cannot name a systemd unit (1-200 of A-Z a-z "
                "0-9 : _ . -)\n",
                o->name);
        return 2;
    }
    if (o->description && strpbrk(o->description, "\n\r")) {
        fputs("luasvc install: --description must be one line\n", stderr);
        return 2;
    }
    if (o->account && o->user) {
        fputs("luasvc install: --user-account is for a system unit (User=): a user manager "
              "(--user) runs its units as its own user; drop one of them\n",
              stderr);
        return 2;
    }
    if (o->account && account_check(o->account) != 0)
        return 2;
    return log_check(o);
}

/* Make the unit directory, and its parents (the user's may not exist yet). */
static int make_unit_dir(const char *dir)
{
    if (mkdir(dir, 0755) == 0 || errno == EEXIST)
        return 0;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "luasvc install: --unit-dir %s: %s\n", dir, strerror(errno));
        return 1;
    }
    return 0;
}

/* Whether the unit file f carries luasvc's marker. */
static bool unit_is_ours(FILE *f)
{
    char line[1024];
    bool ours = false;
    while (!ours && fgets(line, sizeof line, f))
        ours = strncmp(line, MARKER, strlen(MARKER)) == 0;
    return ours;
}

/*
 * The sandbox of every unit luasvc writes. What systemd 252 does with each
 * was tried under scripts/systemd-harness (spec/systemd/): a system
 * manager, and a user manager with privileges (root's), apply them all,
 * and the examples run under them. An unprivileged user manager applies
 * NoNewPrivileges= and the system call filters (seccomp; the flag
 * user = true below), skips the file-system ones silently (no mount
 * namespace without privileges, nor without PrivateUsers=, which the
 * harness's kernel refuses, 226/NAMESPACE), and fails the unit with
 * 218/CAPABILITIES on those that drop capabilities from the bounding set
 * (user = false): a user unit leaves those out.
 *
 * Nothing here stops a script reading what its account may read:
 * ProtectHome=read-only (not yes or tmpfs) keeps a script under /home or
 * /root readable; writes go only to the runtime directory, which systemd
 * mounts writable inside the sandbox (RuntimeDirectory=). PrivateTmp= is
 * written unless it would hide the script or the endpoint (tmp_hides()).
 */
static const struct {
    const char *line;
    bool user; /* written into a user unit too */
} hardening[] = {
    {"NoNewPrivileges=yes", true},
    {"UMask=0077", true}, /* what the script creates is its account's alone */
    {"ProtectSystem=strict", true},
    {"ProtectHome=read-only", true},
    {"PrivateDevices=yes", false},
    {"ProtectKernelTunables=yes", true},
    {"ProtectKernelModules=yes", false},
    {"ProtectKernelLogs=yes", false},
    {"ProtectControlGroups=yes", true},
    {"ProtectClock=yes", false},
    {"ProtectHostname=yes", true},
    {"RestrictSUIDSGID=yes", true},
    {"RestrictRealtime=yes", true},
    {"RestrictNamespaces=yes", true},
    {"LockPersonality=yes", true},
    {"MemoryDenyWriteExecute=yes", true},
    {"SystemCallArchitectures=native", true},
    /* a call outside the set fails with EPERM (a Lua error), not SIGSYS */
    {"SystemCallFilter=@system-service", true},
    {"SystemCallErrorNumber=EPERM", true},
    {"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK", true},
};

/* Whether path is /tmp or /var/tmp or under them, which PrivateTmp=
 * replaces with an empty directory. */
static bool under_tmp(const char *path)
{
    static const char *const tmps[] = {"/tmp", "/var/tmp"};
    for (size_t i = 0; path && i < 2; i++) {
        size_t n = strlen(tmps[i]);
        if (strncmp(path, tmps[i], n) == 0 && (path[n] == '/' || path[n] == '\0'))
            return true;
    }
    return false;
}

/* What PrivateTmp= would hide from the service ("the script", ...), or
 * NULL when nothing: the script, the binary ExecStart= runs (a build
 * directory under /tmp), the log file, or (a user unit) the runtime
 * directory with the endpoint and systemd's notify socket. */
static const char *tmp_hides(const install_opts *o, const char *script)
{
    if (under_tmp(script))
        return "the script";
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        if (under_tmp(self))
            return "the luasvc binary";
    }
    if (o->log_file && under_tmp(o->log_path))
        return "the log file";
    if (o->user && under_tmp(getenv("XDG_RUNTIME_DIR")))
        return "$XDG_RUNTIME_DIR";
    return NULL;
}

static void unit_hardening(FILE *f, const install_opts *o, const char *script)
{
    fputs("# The sandbox (luasvc's README, Under systemd); loosen it in a drop-in "
          "(systemctl edit),\n# e.g. ReadWritePaths=DIR for a script that writes files.\n",
          f);
    for (size_t i = 0; i < sizeof hardening / sizeof hardening[0]; i++)
        if (!o->user || hardening[i].user)
            fprintf(f, "%s\n", hardening[i].line);
    const char *hidden = tmp_hides(o, script);
    if (hidden)
        fprintf(f, "# no PrivateTmp=: %s is under /tmp or /var/tmp, which it would hide\n", hidden);
    else
        fputs("PrivateTmp=yes\n", f);
}

/* The unit's runtime directory, relative to %t: "luasvc", shared, or
 * "luasvc-NAME" for a unit with User= (':' would make it a symlink). */
static void unit_rundir(const install_opts *o, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, o->account ? "luasvc-%s" : "luasvc", name);
    for (char *p = buf; *p; p++)
        if (*p == ':')
            *p = '_';
}

/* The unit's text into f. -1: a path a unit file cannot carry. */
static int unit_text(FILE *f, const install_opts *o, const char *name, const char *self,
                     const char *script, const lsvc_service_info *info)
{
    const char *desc = o->description          ? o->description
                       : info->description[0]  ? info->description
                       : info->display_name[0] ? info->display_name
                                               : info->name;
    fprintf(f,
            "# %s.service - written by luasvc install; remove with\n"
            "#   luasvc uninstall %s --systemd%s\n%s%s\n",
            name, name, o->user ? " --user" : "", MARKER, info->name);
    char rundir[300];
    unit_rundir(o, name, rundir, sizeof rundir);
    if (o->account)
        fprintf(f, "%s%s\n", RUNDIR_MARKER, rundir);
    fputs("[Unit]\nDescription=", f);
    for (const char *p = desc; *p; p++) {
        if (*p == '\n' || *p == '\r')
            continue;
        if (*p == '%')
            fputc('%', f);
        fputc(*p, f);
    }
    /* RuntimeDirectory=luasvc is %t/luasvc: $XDG_RUNTIME_DIR/luasvc for a
     * user unit, /run/luasvc for a system one - where the client looks by
     * default. Preserved: other luasvc units keep their endpoints there.
     * A unit with User= has luasvc-NAME instead: systemd gives the
     * directory to that user at each start, and the shared one must stay
     * the property of the units that run as root. */
    fprintf(f, "\n\n[Service]\nType=notify\nNotifyAccess=main\nExecStart=");
    if (put_word(f, self) != 0 || (fputc(' ', f), put_word(f, "run")) != 0)
        return -1;
    const char *logopts[][2] = {{"--log-file", o->log_file ? o->log_path : NULL},
                                {"--log-max-size", o->log_max_size},
                                {"--log-keep", o->log_keep}};
    for (size_t i = 0; i < 3; i++)
        if (logopts[i][1] && ((fputc(' ', f), put_word(f, logopts[i][0])) != 0 ||
                              (fputc(' ', f), put_word(f, logopts[i][1])) != 0))
            return -1;
    if ((fputc(' ', f), put_word(f, script)) != 0)
        return -1;
    fprintf(f,
            "\nExecReload=/bin/kill -HUP $MAINPID\n"
            "TimeoutStopSec=%ums\n",
            info->stop_timeout_ms + STOP_MARGIN_MS);
    if (info->watchdog_ms)
        fprintf(f, "WatchdogSec=%ums\n", info->watchdog_ms);
    if (o->restart)
        fputs("Restart=on-failure\n", f);
    if (o->account)
        fprintf(f, "User=%s\n", o->account);
    fprintf(f,
            "RuntimeDirectory=%s\nRuntimeDirectoryMode=0700\nRuntimeDirectoryPreserve=yes\n"
            "Environment=LUASVC_RUNTIME_DIR=%%t/%s\n",
            rundir, rundir);
    unit_hardening(f, o, script);
    if (o->log_file) {
        /* the log's directory, where rotation renames: writable in the
         * sandbox ("-": a directory removed later fails no start) */
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", o->log_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[slash == dir ? 1 : 0] = '\0';
        fputs("ReadWritePaths=-", f);
        if (put_quoted(f, dir, false) != 0)
            return -1;
        fputc('\n', f);
    }
    fprintf(f, "\n[Install]\nWantedBy=%s\n", o->user ? "default.target" : "multi-user.target");
    return 0;
}

/*
 * Write the unit to path through a temporary file beside it, renamed into
 * place, so that a reader never sees half a unit. The temporary name is
 * fixed (PATH.luasvc-tmp, so that a crashed install leaves one file at
 * most), and whatever is there (a leftover, or a symlink someone planted
 * to have us write elsewhere) is removed, not opened: the file is created
 * with O_EXCL | O_NOFOLLOW, which never follows a symlink, and fails if one
 * appears again. rename() replaces path itself, never what it points to.
 */
static int unit_write(const char *path, const install_opts *o, const char *name, const char *self,
                      const char *script, const lsvc_service_info *info)
{
    char tmp[PATH_MAX + 300];
    snprintf(tmp, sizeof tmp, "%s.luasvc-tmp", path);
    if (unlink(tmp) != 0 && errno != ENOENT) {
        fprintf(stderr, "luasvc install: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "luasvc install: %s: %s\n", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    if (unit_text(f, o, name, self, script, info) != 0) {
        fclose(f);
        unlink(tmp);
        return fail2("install", "the binary's or the script's path has control characters");
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "luasvc install: %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return 1;
    }
    printf("wrote %s\n", path);
    const char *hidden = tmp_hides(o, script);
    if (hidden)
        printf("note: no PrivateTmp= in the unit: %s is under /tmp or /var/tmp\n", hidden);
    return 0;
}

/* The script's absolute path and this binary's, and what the script
 * declares (it must load). 0, or the exit status after saying why. */
static int install_resolve(const install_opts *o, char *script, char *self, lsvc_service_info *info)
{
    if (!realpath(o->script, script)) {
        fprintf(stderr, "luasvc install: SCRIPT '%s': %s\n", o->script, strerror(errno));
        return 2;
    }
    ssize_t n = readlink("/proc/self/exe", self, PATH_MAX - 1);
    if (n <= 0)
        return fprintf(stderr, "luasvc install: cannot find this binary: %s\n", strerror(errno)), 1;
    self[n] = '\0';
    if (lsvc_console_inspect(1, &script, info) != 0) {
        fprintf(stderr, "luasvc install: %s does not load (see above); nothing installed\n",
                script);
        return 2;
    }
    const char *name = o->name ? o->name : info->name;
    if (!unit_name_valid(name)) {
        fprintf(stderr,
                "luasvc install: the script's service name '%s' cannot name a systemd unit; "
                "give one with --name\n",
                name);
        return 2;
    }
    return 0;
}

/* systemd learns of the unit, unless it was written elsewhere. */
static int install_reload(const install_opts *o, const char *name)
{
    const char *u = o->user ? " --user" : "";
    if (o->dir) {
        printf("not reloading systemd: --unit-dir given; run systemctl%s daemon-reload when the "
               "directory is one of its unit paths\n",
               u);
        return 0;
    }
    int rc = systemctl(o->user, "daemon-reload", NULL, false);
    if (rc != 0) {
        fprintf(stderr, "luasvc install: systemctl%s daemon-reload failed (status %d)\n", u, rc);
        return 1;
    }
    printf("start it with: luasvc start %s (or systemctl%s start %s)\n", name, u, name);
    return 0;
}

int lsvc_install_main(int argc, char **argv)
{
    install_opts o;
    if (install_parse(argc, argv, &o) != 0)
        return 2;
    char script[PATH_MAX], self[PATH_MAX], dir[PATH_MAX], path[PATH_MAX + 256];
    lsvc_service_info info;
    int rc = install_resolve(&o, script, self, &info);
    if (rc != 0)
        return rc;
    const char *name = o.name ? o.name : info.name;
    if (unit_dir(o.user, o.dir, dir, sizeof dir) != 0)
        return fail2("install", "cannot tell the unit directory: set --unit-dir or HOME");
    if (make_unit_dir(dir) != 0)
        return 1;
    snprintf(path, sizeof path, "%s/%s.service", dir, name);
    FILE *old = fopen(path, "r");
    if (old) {
        bool ours = unit_is_ours(old);
        fclose(old);
        if (!ours) {
            fprintf(stderr,
                    "luasvc install: %s exists and was not written by luasvc; "
                    "not replacing it\n",
                    path);
            return 1;
        }
    }
    if (unit_write(path, &o, name, self, script, &info) != 0)
        return 1;
    return install_reload(&o, name);
}

int lsvc_uninstall_main(int argc, char **argv)
{
    const char *name = NULL, *dir_opt = NULL;
    bool sd = false, user = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--systemd") == 0)
            sd = true;
        else if (strcmp(argv[i], "--user") == 0)
            user = true;
        else if (strcmp(argv[i], "--unit-dir") == 0) {
            if (i + 1 >= argc || !argv[i + 1][0])
                return lsvc_usage_error("uninstall", "--unit-dir needs a value");
            dir_opt = argv[++i];
        } else if (argv[i][0] == '-' || name)
            return lsvc_usage_error("uninstall", "unexpected argument '%s'", argv[i]);
        else
            name = argv[i];
    }
    if (!name || !sd)
        return lsvc_usage_error("uninstall", "%s",
                                name ? "this platform uninstalls systemd units: add --systemd"
                                     : "no NAME given");
    if (!unit_name_valid(name)) {
        fprintf(stderr, "luasvc uninstall: NAME '%s' is not a systemd unit name\n", name);
        return 2;
    }
    char dir[PATH_MAX], path[PATH_MAX + 64], unit[256];
    if (unit_dir(user, dir_opt, dir, sizeof dir) != 0)
        return fail2("uninstall", "cannot tell the unit directory: set --unit-dir or HOME");
    snprintf(path, sizeof path, "%s/%s.service", dir, name);
    snprintf(unit, sizeof unit, "%s.service", name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "luasvc uninstall: no unit %s (%s)%s\n", path, strerror(errno),
                user ? "" : "; a user unit needs --user");
        return 1;
    }
    bool ours = unit_is_ours(f);
    fclose(f);
    if (!ours) {
        fprintf(stderr, "luasvc uninstall: %s was not written by luasvc; not removing it\n", path);
        return 1;
    }
    int rc = 0;
    if (!dir_opt) {
        if (systemctl(user, "stop", unit, false) != 0)
            rc = 1;
        systemctl(user, "disable", unit, true); /* not enabled: nothing to do */
    }
    if (unlink(path) != 0) {
        fprintf(stderr, "luasvc uninstall: %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("removed %s\n", path);
    if (!dir_opt) {
        if (systemctl(user, "daemon-reload", NULL, false) != 0)
            rc = 1;
        systemctl(user, "reset-failed", unit, true); /* forget a failed run */
    }
    return rc;
}
