/*
 * posix_install.c - `luasvc install SCRIPT --systemd` writes NAME.service
 * (Type=notify, run by `luasvc run`; its text: posix_unit_text.c) and
 * `luasvc uninstall NAME --systemd` stops and removes it. A unit is
 * luasvc's when its file carries the marker comment "# luasvc-service:
 * NAME" (NAME: the script's service name, which is also the name of its
 * control endpoint); the client commands find such units through
 * posix_unit.c. Install checks its options here, says (a warning) when
 * the binary or the script lives where it will not stay, and writes the
 * file so that no reader sees half of it. Main thread of a client only.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../frontend.h"
#include "posix.h"

static int fail2(const char *cmd, const char *msg)
{
    fprintf(stderr, "luasvc %s: %s\n", cmd, msg);
    return 2;
}

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
static int log_check(lsvc_install_opts *o)
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

/* The capabilities --capability may name (linux/capability.h, 6.x). */
static const char *const cap_names[] = {"CHOWN",
                                        "DAC_OVERRIDE",
                                        "DAC_READ_SEARCH",
                                        "FOWNER",
                                        "FSETID",
                                        "KILL",
                                        "SETGID",
                                        "SETUID",
                                        "SETPCAP",
                                        "LINUX_IMMUTABLE",
                                        "NET_BIND_SERVICE",
                                        "NET_BROADCAST",
                                        "NET_ADMIN",
                                        "NET_RAW",
                                        "IPC_LOCK",
                                        "IPC_OWNER",
                                        "SYS_MODULE",
                                        "SYS_RAWIO",
                                        "SYS_CHROOT",
                                        "SYS_PTRACE",
                                        "SYS_PACCT",
                                        "SYS_ADMIN",
                                        "SYS_BOOT",
                                        "SYS_NICE",
                                        "SYS_RESOURCE",
                                        "SYS_TIME",
                                        "SYS_TTY_CONFIG",
                                        "MKNOD",
                                        "LEASE",
                                        "AUDIT_WRITE",
                                        "AUDIT_CONTROL",
                                        "SETFCAP",
                                        "MAC_OVERRIDE",
                                        "MAC_ADMIN",
                                        "SYSLOG",
                                        "WAKE_ALARM",
                                        "BLOCK_SUSPEND",
                                        "AUDIT_READ",
                                        "PERFMON",
                                        "BPF",
                                        "CHECKPOINT_RESTORE"};

/* --capability CAP: a capability's name (any case, CAP_ optional), kept
 * once as "CAP_NAME". 0, or 2. */
static int cap_add(lsvc_install_opts *o, const char *a)
{
    char up[32];
    size_t n = strlen(a);
    const char *bare = strncasecmp(a, "cap_", 4) == 0 ? a + 4 : a;
    for (size_t i = 0; i < sizeof cap_names / sizeof cap_names[0] && n < sizeof up; i++) {
        if (strcasecmp(bare, cap_names[i]) != 0)
            continue;
        snprintf(up, sizeof up, "CAP_%s", cap_names[i]);
        for (size_t k = 0; k < o->n_caps; k++)
            if (strcmp(o->caps[k], up) == 0)
                return 0;
        if (o->n_caps == LSVC_INSTALL_MAX_CAPS)
            return lsvc_usage_error("install", "too many --capability");
        memcpy(o->caps[o->n_caps++], up, sizeof up);
        return 0;
    }
    fprintf(stderr,
            "luasvc install: --capability '%s' is not a capability (CAP_NET_BIND_SERVICE, "
            "CAP_NET_RAW, ...: capabilities(7))\n",
            a);
    return 2;
}

/* --read-write PATH: an existing file or directory, made absolute. 0, or 2. */
static int read_write_add(lsvc_install_opts *o, const char *a)
{
    if (o->n_read_write == LSVC_INSTALL_MAX_PATHS)
        return lsvc_usage_error("install", "at most %d --read-write paths", LSVC_INSTALL_MAX_PATHS);
    char *out = o->read_write[o->n_read_write];
    if (!realpath(a, out)) {
        fprintf(stderr,
                "luasvc install: --read-write '%s': %s (the path must exist: systemd fails "
                "the start otherwise)\n",
                a, strerror(errno));
        return 2;
    }
    o->n_read_write++;
    return 0;
}

/* --metrics ADDR:PORT, passed on to `luasvc run --metrics`: checked by
 * the rule run applies (metrics.c), so a unit never fails at its start
 * for it. 0, or 2. */
static int metrics_check(const char *a)
{
    char err[256];
    if (lsvc_metrics_check_addr(a, err, sizeof err) != 0) {
        fprintf(stderr, "luasvc install: --metrics '%s' is not HOST:PORT as run takes it: %s\n", a, err);
        return 2;
    }
    return 0;
}

/* The options that take a value: where each goes (NULL: handled apart). */
static const char **value_slot(lsvc_install_opts *o, const char *a)
{
    static const struct {
        const char *name;
        size_t off;
    } slots[] = {
        {"--unit-dir", offsetof(lsvc_install_opts, dir)},
        {"--name", offsetof(lsvc_install_opts, name)},
        {"--description", offsetof(lsvc_install_opts, description)},
        {"--user-account", offsetof(lsvc_install_opts, account)},
        {"--log-file", offsetof(lsvc_install_opts, log_file)},
        {"--log-max-size", offsetof(lsvc_install_opts, log_max_size)},
        {"--log-keep", offsetof(lsvc_install_opts, log_keep)},
        {"--metrics", offsetof(lsvc_install_opts, metrics)},
    };
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        if (strcmp(a, slots[i].name) == 0)
            return (const char **)((char *)o + slots[i].off);
    return NULL;
}

/* One flag, or one option with its value v: 0, 1 when a is no option of
 * install's, or 2 after saying what is wrong. */
static int install_option(lsvc_install_opts *o, const char *a, const char *v)
{
    static const struct {
        const char *name;
        size_t off;
    } flags[] = {
        {"--systemd", offsetof(lsvc_install_opts, systemd)},
        {"--user", offsetof(lsvc_install_opts, user)},
        {"--restart-on-failure", offsetof(lsvc_install_opts, restart)},
        {"--network", offsetof(lsvc_install_opts, network)},
        {"--dynamic-user", offsetof(lsvc_install_opts, dynamic_user)},
        {"--allow-jit", offsetof(lsvc_install_opts, allow_jit)},
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (strcmp(a, flags[i].name) == 0) {
            *(bool *)((char *)o + flags[i].off) = true;
            return 0;
        }
    const char **slot = value_slot(o, a);
    if (slot)
        *slot = v;
    else if (strcmp(a, "--read-write") == 0)
        return read_write_add(o, v);
    else if (strcmp(a, "--capability") == 0)
        return cap_add(o, v);
    else
        return 1;
    return 0;
}

/* Options that do not go together, and the values checked alone. 0, or 2. */
static int install_conflicts(lsvc_install_opts *o)
{
    static const char *const user_manager =
        "a user manager (--user) runs its units as its own user; drop one of them";
    if (!o->script)
        return lsvc_usage_error("install", "no SCRIPT given");
    if (!o->systemd)
        return lsvc_usage_error("install", "this platform installs systemd units: add --systemd");
    if (o->name && !lsvc_unit_name_valid(o->name)) {
        fprintf(stderr,
                "luasvc install: --name '%s' cannot name a systemd unit (1-200 of A-Z a-z "
                "0-9 : _ . -)\n",
                o->name);
        return 2;
    }
    if (o->description && strpbrk(o->description, "\n\r"))
        return fputs("luasvc install: --description must be one line\n", stderr), 2;
    if (o->account && o->user)
        return fprintf(stderr, "luasvc install: --user-account is for a system unit (User=): %s\n",
                       user_manager),
               2;
    if (o->dynamic_user && (o->user || o->account))
        return fprintf(stderr,
                       "luasvc install: --dynamic-user is for a system unit without "
                       "--user-account: %s\n",
                       o->user ? user_manager : "User= names the user already; drop one of them"),
               2;
    if (o->n_caps && o->user)
        return fputs("luasvc install: --capability is for a system unit: a user manager "
                     "cannot change a service's capabilities (it fails the unit with "
                     "218/CAPABILITIES)\n",
                     stderr),
               2;
    if (o->account && account_check(o->account) != 0)
        return 2;
    if (o->metrics && metrics_check(o->metrics) != 0)
        return 2;
    return log_check(o);
}

/* The arguments of `luasvc install`: 0, or 2 after the usage error. */
static int install_parse(int argc, char **argv, lsvc_install_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool takes = false;
        if (a[0] == '-' && lsvc_usage_has_option("install", a, &takes) && takes &&
            (i + 1 >= argc || !argv[i + 1][0]))
            return lsvc_usage_error("install", "%s needs a value", a);
        int rc = a[0] == '-' ? install_option(o, a, takes ? argv[i + 1] : NULL) : 1;
        if (rc == 2)
            return 2;
        if (rc == 0) {
            i += takes;
            continue;
        }
        if (a[0] == '-')
            return lsvc_usage_error("install", "unknown option '%s'", a);
        if (o->script)
            return lsvc_usage_error("install", "one SCRIPT only (got '%s' and '%s')", o->script, a);
        o->script = a;
    }
    return install_conflicts(o);
}

/* The directory holding CMakeCache.txt at or above dir (a CMake build
 * tree) into out; false when none. */
static bool build_tree(const char *dir, char *out, size_t len)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (;;) {
        char probe[PATH_MAX + 16];
        snprintf(probe, sizeof probe, "%s/CMakeCache.txt", p);
        if (access(probe, F_OK) == 0) {
            snprintf(out, len, "%s", p[0] ? p : "/");
            return true;
        }
        char *slash = strrchr(p, '/');
        if (!slash || slash == p)
            return false;
        *slash = '\0';
    }
}

/* A warning when what the unit runs (what: "the luasvc binary", "the
 * script") lives where it will not stay: a temporary directory, which a
 * reboot or a cleaner empties, or a build tree, which a rebuild changes. */
static void warn_transient(const char *what, const char *path)
{
    char dir[PATH_MAX], tree[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (lsvc_path_under_tmp(path))
        fprintf(stderr,
                "luasvc install: warning: %s %s is in a temporary directory, which a reboot "
                "or a cleaner empties: the unit fails then; install it somewhere lasting\n",
                what, path);
    else if (build_tree(dir, tree, sizeof tree))
        fprintf(stderr,
                "luasvc install: warning: %s %s is in a build directory (%s has "
                "CMakeCache.txt): the unit runs what a rebuild changes or a clean removes; "
                "install luasvc (cmake --install, or the .deb) and install with that\n",
                what, path, tree);
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
        ours = strncmp(line, LSVC_UNIT_MARKER, strlen(LSVC_UNIT_MARKER)) == 0;
    return ours;
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
static int unit_write(const char *path, const lsvc_install_opts *o, const char *name,
                      const char *self, const char *script, const lsvc_service_info *info)
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
    if (lsvc_unit_text(f, o, name, self, script, info) != 0) {
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
    const char *hidden = lsvc_unit_tmp_hides(o, script, self);
    if (hidden)
        printf("note: no PrivateTmp= in the unit: %s is under /tmp or /var/tmp\n", hidden);
    return 0;
}

/* The script's absolute path and this binary's, and what the script
 * declares (it must load). 0, or the exit status after saying why. */
static int install_resolve(const lsvc_install_opts *o, char *script, char *self,
                           lsvc_service_info *info)
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
    if (!lsvc_unit_name_valid(name)) {
        fprintf(stderr,
                "luasvc install: the script's service name '%s' cannot name a systemd unit; "
                "give one with --name\n",
                name);
        return 2;
    }
    const char *hidden = lsvc_unit_tmp_hides(o, script, self);
    if (o->dynamic_user && hidden) {
        fprintf(stderr,
                "luasvc install: --dynamic-user implies PrivateTmp=, which would hide %s "
                "(under /tmp or /var/tmp)\n",
                hidden);
        return 2;
    }
    warn_transient("the luasvc binary", self);
    warn_transient("the script", script);
    return 0;
}

/* systemd learns of the unit, unless it was written elsewhere. */
static int install_reload(const lsvc_install_opts *o, const char *name)
{
    const char *u = o->user ? " --user" : "";
    if (o->dir) {
        printf("not reloading systemd: --unit-dir given; run systemctl%s daemon-reload when the "
               "directory is one of its unit paths\n",
               u);
        return 0;
    }
    int rc = lsvc_systemctl(o->user, "daemon-reload", NULL, false);
    if (rc != 0) {
        fprintf(stderr, "luasvc install: systemctl%s daemon-reload failed (status %d)\n", u, rc);
        return 1;
    }
    printf("start it with: luasvc start %s (or systemctl%s start %s)\n", name, u, name);
    return 0;
}

int lsvc_install_main(int argc, char **argv)
{
    lsvc_install_opts o;
    if (install_parse(argc, argv, &o) != 0)
        return 2;
    char script[PATH_MAX], self[PATH_MAX], dir[PATH_MAX], path[PATH_MAX + 256];
    lsvc_service_info info;
    int rc = install_resolve(&o, script, self, &info);
    if (rc != 0)
        return rc;
    const char *name = o.name ? o.name : info.name;
    if (lsvc_unit_dir(o.user, o.dir, dir, sizeof dir) != 0)
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
    if (!lsvc_unit_name_valid(name)) {
        fprintf(stderr, "luasvc uninstall: NAME '%s' is not a systemd unit name\n", name);
        return 2;
    }
    char dir[PATH_MAX], path[PATH_MAX + 64], unit[256];
    if (lsvc_unit_dir(user, dir_opt, dir, sizeof dir) != 0)
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
        if (lsvc_systemctl(user, "stop", unit, false) != 0)
            rc = 1;
        lsvc_systemctl(user, "disable", unit, true); /* not enabled: nothing to do */
    }
    if (unlink(path) != 0) {
        fprintf(stderr, "luasvc uninstall: %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("removed %s\n", path);
    if (!dir_opt) {
        if (lsvc_systemctl(user, "daemon-reload", NULL, false) != 0)
            rc = 1;
        lsvc_systemctl(user, "reset-failed", unit, true); /* forget a failed run */
    }
    return rc;
}
