/*
 * win32_install.c - `luasvc install SCRIPT... [options]` (CreateServiceW
 * with the command line `luasvc.exe service ...` that win32_scm.c reads,
 * ChangeServiceConfig2W, the event source) and `luasvc uninstall NAME`
 * (stop, waiting; DeleteService; the event source removed). Runs in the
 * luasvc client process, on its main thread.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "../frontend.h"
#include "win32.h"

/* Append s to the wide command line, quoted as CommandLineToArgvW reads it. */
static void append_quoted(wchar_t *out, size_t cap, const wchar_t *s)
{
    size_t n = wcslen(out);
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (n + 1 < cap)                                                                           \
            out[n++] = (c);                                                                        \
    } while (0)
    if (n)
        PUT(L' ');
    PUT(L'"');
    for (const wchar_t *p = s;; p++) {
        size_t bs = 0;
        while (*p == L'\\') {
            bs++;
            p++;
        }
        if (!*p) {
            for (size_t i = 0; i < bs * 2; i++)
                PUT(L'\\');
            break;
        }
        if (*p == L'"') {
            for (size_t i = 0; i < bs * 2 + 1; i++)
                PUT(L'\\');
        } else {
            for (size_t i = 0; i < bs; i++)
                PUT(L'\\');
        }
        PUT(*p);
    }
    PUT(L'"');
    out[n] = 0;
#undef PUT
}

static bool parse_ms(const char *s, DWORD *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || !isdigit((unsigned char)s[0]) || v > 0x7fffffffUL)
        return false;
    *out = (DWORD)v;
    return true;
}

/* Set one optional configuration; Wine stubs some (124): warn, go on. */
static bool config2(SC_HANDLE h, DWORD level, void *info, const char *what)
{
    if (ChangeServiceConfig2W(h, level, info))
        return true;
    DWORD err = GetLastError();
    if (err == ERROR_INVALID_LEVEL) {
        fprintf(stderr, "luasvc install: warning: this service manager does not support %s\n",
                what);
        return true;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "setting %s", what);
    lsvc_win32_fail_code(msg, err);
    return false;
}

/* What `luasvc install` was asked. */
typedef struct install_opts {
    char **scripts;
    int nscripts;
    const char *name, *display, *description, *account, *password, *log_file;
    const char *log_max_size, *log_keep; /* passed on to the service's command line */
    DWORD start, preshutdown, restart_ms;
    bool delayed, has_preshutdown, has_restart, no_watch;
    wchar_t deps[4096]; /* --depend names, each ended by a 0, then a 0 */
    size_t depn;
} install_opts;

/* One option that takes a value v: 0, or 2 after the usage error. */
static int install_option(install_opts *o, const char *a, const char *v)
{
    if (strcmp(a, "--name") == 0)
        o->name = v;
    else if (strcmp(a, "--display-name") == 0)
        o->display = v;
    else if (strcmp(a, "--description") == 0)
        o->description = v;
    else if (strcmp(a, "--log-file") == 0)
        o->log_file = v;
    else if (strcmp(a, "--log-max-size") == 0) {
        uint64_t size;
        if (lsvc_parse_size(v, &size) != 0 || size == 0)
            return lsvc_usage_error("install", "--log-max-size needs a size above 0: bytes, or a "
                                               "number with k, M or G (512k, 10M)");
        o->log_max_size = v;
    } else if (strcmp(a, "--log-keep") == 0) {
        char *end;
        long n = strtol(v, &end, 10);
        if (!*v || *end || n < 0 || n > 1000)
            return lsvc_usage_error("install", "--log-keep needs a number of files in 0..1000");
        o->log_keep = v;
    } else if (strcmp(a, "--account") == 0)
        o->account = v;
    else if (strcmp(a, "--password") == 0)
        o->password = v;
    else if (strcmp(a, "--start") == 0) {
        if (strcmp(v, "auto") == 0)
            o->start = SERVICE_AUTO_START;
        else if (strcmp(v, "delayed-auto") == 0)
            o->start = SERVICE_AUTO_START, o->delayed = true;
        else if (strcmp(v, "demand") == 0)
            o->start = SERVICE_DEMAND_START;
        else if (strcmp(v, "disabled") == 0)
            o->start = SERVICE_DISABLED;
        else
            return lsvc_usage_error("install", "--start: auto, delayed-auto, demand or disabled");
    } else if (strcmp(a, "--depend") == 0) {
        wchar_t *w = lsvc_wide(v);
        size_t k = w ? wcslen(w) : 0;
        if (!w || !k || o->depn + k + 2 > sizeof o->deps / sizeof o->deps[0])
            return lsvc_usage_error("install", "--depend: bad or too many names");
        memcpy(o->deps + o->depn, w, (k + 1) * sizeof *w);
        o->depn += k + 1;
        free(w);
    } else if (strcmp(a, "--preshutdown-timeout") == 0) {
        if (!parse_ms(v, &o->preshutdown) || !o->preshutdown)
            return lsvc_usage_error("install", "--preshutdown-timeout: a number of ms above 0");
        o->has_preshutdown = true;
    } else if (strcmp(a, "--restart-on-failure") == 0) {
        if (!parse_ms(v, &o->restart_ms))
            return lsvc_usage_error("install", "--restart-on-failure: a number of ms");
        o->has_restart = true;
    } else {
        return lsvc_usage_error("install", "unknown option '%s'", a);
    }
    return 0;
}

/* The arguments of `luasvc install`: 0, 1 (no memory), or 2 after the
 * usage error. */
static int install_parse(int argc, char **argv, install_opts *o)
{
    o->start = SERVICE_DEMAND_START;
    o->scripts = calloc((size_t)argc + 1, sizeof *o->scripts);
    if (!o->scripts)
        return 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1])
            o->scripts[o->nscripts++] = argv[i];
        else if (strcmp(a, "--no-watch") == 0) /* the only option without a value */
            o->no_watch = true;
        else if (i + 1 >= argc)
            return lsvc_usage_error("install", "%s needs a value", a);
        else if (install_option(o, a, argv[++i]) != 0)
            return 2;
    }
    if (o->nscripts == 0)
        return lsvc_usage_error("install", "no script given");
    if (o->nscripts > 1 && (o->name || o->display || o->description))
        return lsvc_usage_error("install",
                                "--name, --display-name and --description need a single script");
    if (o->password && !o->account)
        return lsvc_usage_error("install", "--password needs --account");
    if ((o->log_max_size || o->log_keep) && !o->log_file)
        return lsvc_usage_error("install", "--log-max-size and --log-keep go with --log-file");
    if (o->name && !lsvc_name_valid(o->name))
        return lsvc_usage_error("install",
                                "--name: 1-80 characters, no '/', '\\' or control characters");
    return 0;
}

/* Load every script (without starting it): a broken script is refused
 * here, not at its first start, and its name comes from the script.
 * info[0] gets --name and --display-name. 0, or the exit status. */
static int install_load(const install_opts *o, lsvc_service_info *info)
{
    if (lsvc_console_inspect(o->nscripts, o->scripts, info)) {
        fprintf(stderr,
                "luasvc install: the script does not load (see above); nothing installed\n");
        return 1;
    }
    if (o->name) {
        snprintf(info[0].name, sizeof info[0].name, "%s", o->name);
        if (!o->display)
            snprintf(info[0].display_name, sizeof info[0].display_name, "%s", o->name);
    }
    if (o->display)
        snprintf(info[0].display_name, sizeof info[0].display_name, "%s", o->display);
    return 0;
}

/* "EXE" service [--log-file "LOG" [--log-max-size S] [--log-keep N]]
 * [--no-watch] "NAME" "SCRIPT" ...:
 * quoted absolute paths only. exe gets this binary's path. 0, or the exit
 * status. */
static int install_cmdline(const install_opts *o, const lsvc_service_info *info, wchar_t *cmdline,
                           size_t cap, wchar_t *exe, size_t exe_cap)
{
    DWORD n = GetModuleFileNameW(NULL, exe, (DWORD)exe_cap);
    if (!n || n >= exe_cap)
        return lsvc_win32_fail("GetModuleFileName");
    cmdline[0] = 0;
    append_quoted(cmdline, cap, exe);
    wcscat(cmdline, L" service");
    if (o->log_file) {
        wchar_t *wl = lsvc_wide(o->log_file), full[MAX_PATH * 4];
        DWORD fn = wl ? GetFullPathNameW(wl, sizeof full / sizeof full[0], full, NULL) : 0;
        free(wl);
        if (!fn || fn >= sizeof full / sizeof full[0])
            return lsvc_usage_error("install", "--log-file: not a usable path");
        wcscat(cmdline, L" --log-file");
        append_quoted(cmdline, cap, full);
        const char *rot[][2] = {{"--log-max-size", o->log_max_size}, {"--log-keep", o->log_keep}};
        for (int k = 0; k < 2; k++) {
            if (!rot[k][1])
                continue;
            wchar_t *wo = lsvc_wide(rot[k][0]), *wv = lsvc_wide(rot[k][1]);
            if (wo && wv) {
                wcscat(cmdline, L" ");
                wcscat(cmdline, wo);
                append_quoted(cmdline, cap, wv);
            }
            free(wo);
            free(wv);
        }
    }
    if (o->no_watch)
        wcscat(cmdline, L" --no-watch");
    for (int k = 0; k < o->nscripts; k++) {
        wchar_t *wn = lsvc_wide(info[k].name), *ws = lsvc_wide(o->scripts[k]);
        wchar_t full[MAX_PATH * 4];
        if (!wn || !ws)
            return lsvc_usage_error("install", "a name or path is not valid UTF-8");
        DWORD fn = GetFullPathNameW(ws, sizeof full / sizeof full[0], full, NULL);
        if (!fn || fn >= sizeof full / sizeof full[0])
            return lsvc_win32_fail(o->scripts[k]);
        append_quoted(cmdline, cap, wn);
        append_quoted(cmdline, cap, full);
        free(wn);
        free(ws);
    }
    return 0;
}

/* The optional configuration of a created service. 0, or 1 (printed). */
static int install_configure(SC_HANDLE h, const install_opts *o)
{
    int rc = 0;
    if (o->description) {
        wchar_t *wdesc = lsvc_wide(o->description);
        SERVICE_DESCRIPTIONW d = {wdesc};
        if (!config2(h, SERVICE_CONFIG_DESCRIPTION, &d, "a description"))
            rc = 1;
        free(wdesc);
    }
    if (rc == 0 && o->delayed) {
        SERVICE_DELAYED_AUTO_START_INFO d = {TRUE};
        if (!config2(h, SERVICE_CONFIG_DELAYED_AUTO_START_INFO, &d, "delayed auto-start"))
            rc = 1;
    }
    if (rc == 0 && o->has_preshutdown) {
        SERVICE_PRESHUTDOWN_INFO p = {o->preshutdown};
        if (!config2(h, SERVICE_CONFIG_PRESHUTDOWN_INFO, &p, "a preshutdown timeout"))
            rc = 1;
    }
    if (rc == 0 && o->has_restart) {
        /* Restart after each of the first three failures; the count
         * resets after a day. The flag makes a non-zero exit code a
         * failure too, not only a crash. */
        SC_ACTION actions[3] = {{SC_ACTION_RESTART, o->restart_ms},
                                {SC_ACTION_RESTART, o->restart_ms},
                                {SC_ACTION_RESTART, o->restart_ms}};
        SERVICE_FAILURE_ACTIONSW fa = {86400, NULL, NULL, 3, actions};
        SERVICE_FAILURE_ACTIONS_FLAG flag = {TRUE};
        if (!config2(h, SERVICE_CONFIG_FAILURE_ACTIONS, &fa, "failure actions") ||
            !config2(h, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, &flag, "the failure actions flag"))
            rc = 1;
    }
    return rc;
}

/* Create service k with its event source and configuration; *hk gets its
 * handle (NULL when it was not created). 0, or 1 (printed). */
static int install_one(SC_HANDLE scm, const install_opts *o, const lsvc_service_info *info,
                       const wchar_t *cmdline, const wchar_t *exe, SC_HANDLE *hk)
{
    DWORD type = o->nscripts > 1 ? SERVICE_WIN32_SHARE_PROCESS : SERVICE_WIN32_OWN_PROCESS;
    wchar_t *wacct = lsvc_wide(o->account), *wpass = lsvc_wide(o->password);
    wchar_t *wn = lsvc_wide(info->name);
    wchar_t *wd = lsvc_wide(info->display_name[0] ? info->display_name : info->name);
    *hk = CreateServiceW(scm, wn, wd, SERVICE_ALL_ACCESS, type, o->start, SERVICE_ERROR_NORMAL,
                         cmdline, NULL, NULL, o->depn ? o->deps : NULL, wacct, wpass);
    free(wn);
    free(wd);
    free(wacct);
    free(wpass);
    char what[300];
    if (!*hk) {
        snprintf(what, sizeof what, "creating service '%s'", info->name);
        return lsvc_win32_fail(what);
    }
    DWORD err = lsvc_win32_eventlog_register(info->name, exe);
    if (err != ERROR_SUCCESS) {
        snprintf(what, sizeof what, "registering the event source of '%s'", info->name);
        return lsvc_win32_fail_code(what, err);
    }
    return install_configure(*hk, o);
}

int lsvc_win32_install(int argc, char **argv)
{
    static install_opts o;
    static wchar_t cmdline[32768];
    wchar_t exe[MAX_PATH * 4];
    int rc = install_parse(argc, argv, &o);
    lsvc_service_info *info = rc ? NULL : calloc((size_t)o.nscripts, sizeof *info);
    SC_HANDLE *hs = info ? calloc((size_t)o.nscripts, sizeof *hs) : NULL;
    if (rc || !hs)
        return rc ? rc : 1;
    if ((rc = install_load(&o, info)) != 0 ||
        (rc = install_cmdline(&o, info, cmdline, sizeof cmdline / sizeof cmdline[0], exe,
                              sizeof exe / sizeof exe[0])) != 0)
        return rc;
    SC_HANDLE scm = lsvc_win32_open_scm(SC_MANAGER_CREATE_SERVICE | SC_MANAGER_CONNECT);
    if (!scm)
        return 1;
    int created = 0;
    for (int k = 0; k < o.nscripts && rc == 0; k++) {
        rc = install_one(scm, &o, &info[k], cmdline, exe, &hs[k]);
        created += hs[k] != NULL;
    }
    for (int k = 0; k < created; k++) {
        if (rc != 0) { /* nothing half-installed stays behind */
            DeleteService(hs[k]);
            lsvc_win32_eventlog_unregister(info[k].name);
        } else {
            printf("installed '%s' (%s)%s\n", info[k].name, o.scripts[k],
                   o.nscripts > 1 ? ", sharing one process" : "");
        }
        CloseServiceHandle(hs[k]);
    }
    CloseServiceHandle(scm);
    return rc;
}

int lsvc_win32_uninstall(const char *name)
{
    SC_HANDLE scm = lsvc_win32_open_scm(SC_MANAGER_CONNECT);
    if (!scm)
        return 1;
    SC_HANDLE h = lsvc_win32_open_service(scm, name, SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE);
    int rc = 1;
    if (h) {
        SERVICE_STATUS_PROCESS ss;
        rc = 0;
        if (!lsvc_win32_query(h, &ss)) {
            rc = lsvc_win32_fail("QueryServiceStatusEx");
        } else if (ss.dwCurrentState != SERVICE_STOPPED) {
            SERVICE_STATUS s;
            if (ss.dwCurrentState != SERVICE_STOP_PENDING &&
                !ControlService(h, SERVICE_CONTROL_STOP, &s))
                rc = lsvc_win32_fail("stopping it");
            else if (lsvc_win32_wait_state(h, name, SERVICE_STOPPED, 0, &ss) == 0)
                lsvc_win32_print_exit(name, &ss);
            else
                rc = 1;
        }
        if (rc == 0 && !DeleteService(h))
            rc = lsvc_win32_fail("DeleteService");
        DWORD err = rc == 0 ? lsvc_win32_eventlog_unregister(name) : ERROR_SUCCESS;
        if (err != ERROR_SUCCESS)
            rc = lsvc_win32_fail_code("removing its event source", err);
        if (rc == 0)
            printf("uninstalled '%s'\n", name);
        CloseServiceHandle(h);
    }
    CloseServiceHandle(scm);
    return rc;
}
