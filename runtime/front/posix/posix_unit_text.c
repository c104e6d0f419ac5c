/*
 * posix_unit_text.c - the text of the unit `luasvc install --systemd`
 * writes: the marker comments, [Unit], ExecStart= (`luasvc run` with the
 * options install passes on), the sandbox every unit carries (hardening[])
 * and what install's options add to it (--read-write, --network,
 * --capability, --dynamic-user, --allow-jit), each with a comment saying
 * which option put it there. Pure text: posix_install.c checks the
 * options and writes the file. Main thread of a client only.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "posix.h"

/* TimeoutStopSec beyond stop_timeout: the forced stop's last budget (see
 * worker.c) and the exit itself. */
#define STOP_MARGIN_MS 3000u

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

/* One ExecStart= word, after a space. */
static int put_word(FILE *f, const char *s) { return fputc(' ', f), put_quoted(f, s, true); }

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
 * mounts writable inside the sandbox (RuntimeDirectory=), and to what
 * --read-write names. PrivateTmp= is written unless it would hide the
 * script or the endpoint (lsvc_unit_tmp_hides()). --allow-jit replaces
 * MemoryDenyWriteExecute=yes (jit = true below).
 */
static const struct {
    const char *line;
    bool user; /* written into a user unit too */
    bool jit;  /* left out (and said why) with --allow-jit */
} hardening[] = {
    {"NoNewPrivileges=yes", true, false},
    {"UMask=0077", true, false}, /* what the script creates is its account's alone */
    {"ProtectSystem=strict", true, false},
    {"ProtectHome=read-only", true, false},
    {"PrivateDevices=yes", false, false},
    {"ProtectKernelTunables=yes", true, false},
    {"ProtectKernelModules=yes", false, false},
    {"ProtectKernelLogs=yes", false, false},
    {"ProtectControlGroups=yes", true, false},
    {"ProtectClock=yes", false, false},
    {"ProtectHostname=yes", true, false},
    {"RestrictSUIDSGID=yes", true, false},
    {"RestrictRealtime=yes", true, false},
    {"RestrictNamespaces=yes", true, false},
    {"LockPersonality=yes", true, false},
    {"MemoryDenyWriteExecute=yes", true, true},
    {"SystemCallArchitectures=native", true, false},
    /* a call outside the set fails with EPERM (a Lua error), not SIGSYS */
    {"SystemCallFilter=@system-service", true, false},
    {"SystemCallErrorNumber=EPERM", true, false},
    {"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK", true, false},
};

bool lsvc_path_under_tmp(const char *path)
{
    static const char *const tmps[] = {"/tmp", "/var/tmp", "/dev/shm"};
    for (size_t i = 0; path && i < sizeof tmps / sizeof tmps[0]; i++) {
        size_t n = strlen(tmps[i]);
        if (strncmp(path, tmps[i], n) == 0 && (path[n] == '/' || path[n] == '\0'))
            return true;
    }
    return false;
}

/* PrivateTmp= replaces /tmp and /var/tmp (not /dev/shm) with empty ones. */
static bool hidden_by_private_tmp(const char *path)
{
    return lsvc_path_under_tmp(path) && strncmp(path, "/dev/shm", 8) != 0;
}

const char *lsvc_unit_tmp_hides(const lsvc_install_opts *o, const char *script, const char *self)
{
    if (hidden_by_private_tmp(script))
        return "the script";
    if (hidden_by_private_tmp(self))
        return "the luasvc binary";
    if (o->log_file && hidden_by_private_tmp(o->log_path))
        return "the log file";
    for (size_t i = 0; i < o->n_read_write; i++)
        if (hidden_by_private_tmp(o->read_write[i]))
            return "a --read-write path";
    if (o->user && hidden_by_private_tmp(getenv("XDG_RUNTIME_DIR")))
        return "$XDG_RUNTIME_DIR";
    return NULL;
}

/* The lines --capability writes: only the capabilities named stay in the
 * bounding set, and they are granted (ambient) to the service's process,
 * also when it does not run as root. Without --capability nothing is
 * written: a root service keeps root's. */
static void unit_capabilities(FILE *f, const lsvc_install_opts *o)
{
    if (!o->n_caps)
        return;
    fputs("# --capability: these granted (AmbientCapabilities=), every other dropped\n"
          "# (CapabilityBoundingSet=)\nCapabilityBoundingSet=",
          f);
    for (size_t i = 0; i < o->n_caps; i++)
        fprintf(f, "%s%s", i ? " " : "", o->caps[i]);
    fputs("\nAmbientCapabilities=", f);
    for (size_t i = 0; i < o->n_caps; i++)
        fprintf(f, "%s%s", i ? " " : "", o->caps[i]);
    fputc('\n', f);
}

/* ReadWritePaths= for --read-write and the log's directory. -1: a path a
 * unit file cannot carry. */
static int unit_writable(FILE *f, const lsvc_install_opts *o)
{
    if (o->n_read_write)
        fputs("# --read-write: writable inside the sandbox (ReadWritePaths=)\n", f);
    for (size_t i = 0; i < o->n_read_write; i++) {
        fputs("ReadWritePaths=", f);
        if (put_quoted(f, o->read_write[i], false) != 0)
            return -1;
        fputc('\n', f);
    }
    if (o->log_file) {
        /* the log's directory, where rotation renames: writable in the
         * sandbox ("-": a directory removed later fails no start) */
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", o->log_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[slash == dir ? 1 : 0] = '\0';
        fputs("# --log-file: its directory, where rotation renames\nReadWritePaths=-", f);
        if (put_quoted(f, dir, false) != 0)
            return -1;
        fputc('\n', f);
    }
    return 0;
}

static int unit_hardening(FILE *f, const lsvc_install_opts *o, const char *script, const char *self)
{
    fputs("# The sandbox (luasvc's README, Under systemd); loosen it in a drop-in "
          "(systemctl edit),\n# or with install's --read-write, --capability, --allow-jit.\n",
          f);
    for (size_t i = 0; i < sizeof hardening / sizeof hardening[0]; i++) {
        if (o->user && !hardening[i].user)
            continue;
        if (o->allow_jit && hardening[i].jit)
            fputs("# --allow-jit: writable executable memory allowed (a JIT)\n"
                  "MemoryDenyWriteExecute=no\n",
                  f);
        else
            fprintf(f, "%s\n", hardening[i].line);
    }
    const char *hidden = lsvc_unit_tmp_hides(o, script, self);
    if (hidden)
        fprintf(f, "# no PrivateTmp=: %s is under /tmp or /var/tmp, which it would hide\n", hidden);
    else
        fputs("PrivateTmp=yes\n", f);
    unit_capabilities(f, o);
    return unit_writable(f, o);
}

void lsvc_unit_rundir(const lsvc_install_opts *o, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, o->account || o->dynamic_user ? "luasvc-%s" : "luasvc", name);
    for (char *p = buf; *p; p++)
        if (*p == ':')
            *p = '_';
}

/* The comment block that opens the unit (the markers), and [Unit]. */
static void unit_head(FILE *f, const lsvc_install_opts *o, const char *name,
                      const lsvc_service_info *info, const char *rundir)
{
    const char *desc = o->description          ? o->description
                       : info->description[0]  ? info->description
                       : info->display_name[0] ? info->display_name
                                               : info->name;
    fprintf(f,
            "# %s.service - written by luasvc install; remove with\n"
            "#   luasvc uninstall %s --systemd%s\n%s%s\n",
            name, name, o->user ? " --user" : "", LSVC_UNIT_MARKER, info->name);
    if (o->account || o->dynamic_user)
        fprintf(f, "%s%s\n", LSVC_UNIT_RUNDIR_MARKER, rundir);
    fputs("[Unit]\nDescription=", f);
    for (const char *p = desc; *p; p++) {
        if (*p == '\n' || *p == '\r')
            continue;
        if (*p == '%')
            fputc('%', f);
        fputc(*p, f);
    }
    fputc('\n', f);
    if (o->network)
        fputs("# --network: started once the network is up\n"
              "Wants=network-online.target\nAfter=network-online.target\n",
              f);
}

/* ExecStart=: `luasvc run` with the options install passes on, then the
 * script. -1: a word a unit file cannot carry. */
static int unit_exec(FILE *f, const lsvc_install_opts *o, const char *self, const char *script)
{
    fputs("ExecStart=", f);
    if (put_quoted(f, self, true) != 0 || put_word(f, "run") != 0)
        return -1;
    const char *passed[][2] = {{"--metrics", o->metrics},
                               {"--log-file", o->log_file ? o->log_path : NULL},
                               {"--log-max-size", o->log_max_size},
                               {"--log-keep", o->log_keep}};
    for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++)
        if (passed[i][1] && (put_word(f, passed[i][0]) != 0 || put_word(f, passed[i][1]) != 0))
            return -1;
    if (put_word(f, script) != 0)
        return -1;
    fputc('\n', f);
    return 0;
}

int lsvc_unit_text(FILE *f, const lsvc_install_opts *o, const char *name, const char *self,
                   const char *script, const lsvc_service_info *info)
{
    char rundir[300];
    lsvc_unit_rundir(o, name, rundir, sizeof rundir);
    unit_head(f, o, name, info, rundir);
    /* RuntimeDirectory=luasvc is %t/luasvc: $XDG_RUNTIME_DIR/luasvc for a
     * user unit, /run/luasvc for a system one - where the client looks by
     * default. Preserved: other luasvc units keep their endpoints there.
     * A unit with User= or DynamicUser= has luasvc-NAME instead: systemd
     * gives the directory to that user at each start, and the shared one
     * must stay the property of the units that run as root. */
    fputs("\n[Service]\nType=notify\nNotifyAccess=main\n", f);
    if (unit_exec(f, o, self, script) != 0)
        return -1;
    fprintf(f,
            "ExecReload=/bin/kill -HUP $MAINPID\n"
            "TimeoutStopSec=%ums\n",
            info->stop_timeout_ms + STOP_MARGIN_MS);
    if (info->watchdog_ms)
        fprintf(f, "WatchdogSec=%ums\n", info->watchdog_ms);
    if (o->restart)
        fputs("Restart=on-failure\n", f);
    if (o->account)
        fprintf(f, "User=%s\n", o->account);
    if (o->dynamic_user)
        fputs("# --dynamic-user: a user of its own, made at each start\nDynamicUser=yes\n", f);
    /* Preserved (the shared directory: other units' endpoints are there),
     * but not a DynamicUser='s own: systemd would make it a symlink into
     * %t/private, which the host refuses as its runtime directory. */
    fprintf(f, "RuntimeDirectory=%s\nRuntimeDirectoryMode=0700\n%s", rundir,
            o->dynamic_user ? "" : "RuntimeDirectoryPreserve=yes\n");
    fprintf(f, "Environment=LUASVC_RUNTIME_DIR=%%t/%s\n", rundir);
    if (unit_hardening(f, o, script, self) != 0)
        return -1;
    fprintf(f, "\n[Install]\nWantedBy=%s\n", o->user ? "default.target" : "multi-user.target");
    return 0;
}
