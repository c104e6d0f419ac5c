/*
 * win32_client.c - install, uninstall and drive services through the
 * Windows service control manager: OpenSCManagerW, CreateServiceW,
 * ChangeServiceConfig2W, StartServiceW, ControlService and
 * QueryServiceStatusEx. Errors print the Win32 code and its FormatMessage
 * text. Runs in the luasvc client process (main thread).
 *
 * Exit status: 0 done, 1 refused or failed (the service manager's or the
 * service's error printed), 2 bad usage.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "win32.h"

#define POLL_MS 20

void lsvc_win32_error_text(uint32_t code, char *buf, size_t len)
{
    wchar_t w[512];
    DWORD n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
                             code, 0, w, sizeof w / sizeof w[0], NULL);
    char *s = n ? lsvc_utf8(w) : NULL;
    snprintf(buf, len, "%s", s ? s : lsvc_win32_message(code));
    free(s);
    size_t k = strlen(buf);
    while (k && (buf[k - 1] == '\n' || buf[k - 1] == '\r' || buf[k - 1] == ' ' ||
                 buf[k - 1] == '.'))
        buf[--k] = '\0';
}

/* Print "luasvc: WHAT: error N: text" for the last error; returns 1. */
static int fail_code(const char *what, DWORD err)
{
    char text[512];
    lsvc_win32_error_text(err, text, sizeof text);
    fprintf(stderr, "luasvc: %s: error %lu: %s\n", what, (unsigned long)err, text);
    return 1;
}

static int fail(const char *what) { return fail_code(what, GetLastError()); }

static SC_HANDLE open_scm(DWORD access)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, access);
    if (!scm)
        fail("OpenSCManager");
    return scm;
}

/* Open NAME with access; prints the error. */
static SC_HANDLE open_service(SC_HANDLE scm, const char *name, DWORD access)
{
    wchar_t *w = lsvc_wide(name);
    SC_HANDLE h = w ? OpenServiceW(scm, w, access) : NULL;
    DWORD err = w ? GetLastError() : ERROR_INVALID_NAME;
    free(w);
    if (!h) {
        char what[300];
        snprintf(what, sizeof what, "service '%s'", name);
        fail_code(what, err);
    }
    return h;
}

static bool query(SC_HANDLE h, SERVICE_STATUS_PROCESS *ss)
{
    DWORD need;
    return QueryServiceStatusEx(h, SC_STATUS_PROCESS_INFO, (BYTE *)ss, sizeof *ss, &need);
}

static const char *state_name(DWORD s)
{
    const char *n = lsvc_state_name((lsvc_state)s);
    return n ? n : "UNKNOWN";
}

static void print_exit(const char *name, const SERVICE_STATUS_PROCESS *ss)
{
    if (ss->dwWin32ExitCode == NO_ERROR) {
        printf("%s: STOPPED\n", name);
        return;
    }
    char text[512];
    lsvc_win32_error_text(ss->dwWin32ExitCode, text, sizeof text);
    if (ss->dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR)
        printf("%s: STOPPED with error %lu (%s), service-specific exit code %lu\n", name,
               (unsigned long)ss->dwWin32ExitCode, text,
               (unsigned long)ss->dwServiceSpecificExitCode);
    else
        printf("%s: STOPPED with error %lu: %s\n", name, (unsigned long)ss->dwWin32ExitCode,
               text);
}

/*
 * Wait until the service leaves the pending state it is in (or has not yet
 * entered), printing each checkpoint. Gives up when a checkpoint does not
 * move within its wait hint (plus slack), as the SCM's own rule says.
 * Returns 0 when it reached target, 1 otherwise (the status printed).
 */
static int wait_state(SC_HANDLE h, const char *name, DWORD target, SERVICE_STATUS_PROCESS *ss)
{
    DWORD last_state = 0, last_cp = 0;
    ULONGLONG since = GetTickCount64();
    for (;;) {
        if (!query(h, ss))
            return fail("QueryServiceStatusEx");
        if (ss->dwCurrentState == target)
            return 0;
        bool pending = lsvc_state_is_pending((lsvc_state)ss->dwCurrentState);
        if (!pending && ss->dwCurrentState != last_state && last_state != 0)
            break; /* settled somewhere else */
        if (ss->dwCurrentState == SERVICE_STOPPED && last_state != 0)
            break;
        if (ss->dwCurrentState != last_state || ss->dwCheckPoint != last_cp) {
            if (pending && (ss->dwCheckPoint || ss->dwCurrentState != last_state))
                printf("%s: %s checkpoint %lu, wait hint %lu ms\n", name,
                       state_name(ss->dwCurrentState), (unsigned long)ss->dwCheckPoint,
                       (unsigned long)ss->dwWaitHint);
            fflush(stdout);
            last_state = ss->dwCurrentState;
            last_cp = ss->dwCheckPoint;
            since = GetTickCount64();
        }
        ULONGLONG patience = (ULONGLONG)ss->dwWaitHint + 5000;
        if (GetTickCount64() - since > patience) {
            fprintf(stderr, "luasvc: %s: no progress within the wait hint (%lu ms) in %s\n",
                    name, (unsigned long)ss->dwWaitHint, state_name(ss->dwCurrentState));
            return 1;
        }
        Sleep(POLL_MS);
    }
    if (ss->dwCurrentState == SERVICE_STOPPED)
        print_exit(name, ss);
    else
        fprintf(stderr, "luasvc: %s: %s instead of %s\n", name, state_name(ss->dwCurrentState),
                state_name(target));
    return 1;
}

/* ---- install ------------------------------------------------------------ */

/* Append s to the wide command line, quoted as CommandLineToArgvW reads it. */
static void append_quoted(wchar_t *out, size_t cap, const wchar_t *s)
{
    size_t n = wcslen(out);
#define PUT(c)                \
    do {                      \
        if (n + 1 < cap)      \
            out[n++] = (c);   \
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

static int install_usage(const char *msg)
{
    fprintf(stderr,
            "luasvc install: %s\n"
            "usage: luasvc install SCRIPT... [--name N] [--display-name S] [--description S]\n"
            "         [--start auto|delayed-auto|demand|disabled] [--depend NAME]...\n"
            "         [--account NAME [--password P]] [--preshutdown-timeout MS]\n"
            "         [--restart-on-failure MS] [--log-file PATH] [--no-watch]\n"
            "  several scripts are installed as services sharing one process\n",
            msg);
    return 2;
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
    fail_code(msg, err);
    return false;
}

static int cmd_install(int argc, char **argv)
{
    const char *name = NULL, *display = NULL, *description = NULL, *account = NULL,
               *password = NULL, *log_file = NULL;
    DWORD start = SERVICE_DEMAND_START, preshutdown = 0, restart_ms = 0;
    bool delayed = false, has_preshutdown = false, has_restart = false, no_watch = false;
    char **scripts = calloc((size_t)argc + 1, sizeof *scripts);
    wchar_t deps[4096] = {0};
    size_t depn = 0;
    int nscripts = 0;
    if (!scripts)
        return 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1]) {
            scripts[nscripts++] = argv[i];
            continue;
        }
        if (strcmp(a, "--no-watch") == 0) { /* the only option without a value */
            no_watch = true;
            continue;
        }
        if (i + 1 >= argc) {
            char msg[128];
            snprintf(msg, sizeof msg, "%s needs a value", a);
            return install_usage(msg);
        }
        const char *v = argv[++i];
        if (strcmp(a, "--name") == 0)
            name = v;
        else if (strcmp(a, "--display-name") == 0)
            display = v;
        else if (strcmp(a, "--description") == 0)
            description = v;
        else if (strcmp(a, "--log-file") == 0)
            log_file = v;
        else if (strcmp(a, "--account") == 0)
            account = v;
        else if (strcmp(a, "--password") == 0)
            password = v;
        else if (strcmp(a, "--start") == 0) {
            if (strcmp(v, "auto") == 0)
                start = SERVICE_AUTO_START;
            else if (strcmp(v, "delayed-auto") == 0)
                start = SERVICE_AUTO_START, delayed = true;
            else if (strcmp(v, "demand") == 0)
                start = SERVICE_DEMAND_START;
            else if (strcmp(v, "disabled") == 0)
                start = SERVICE_DISABLED;
            else
                return install_usage("--start: auto, delayed-auto, demand or disabled");
        } else if (strcmp(a, "--depend") == 0) {
            wchar_t *w = lsvc_wide(v);
            size_t k = w ? wcslen(w) : 0;
            if (!w || !k || depn + k + 2 > sizeof deps / sizeof deps[0])
                return install_usage("--depend: bad or too many names");
            memcpy(deps + depn, w, (k + 1) * sizeof *w);
            depn += k + 1;
            free(w);
        } else if (strcmp(a, "--preshutdown-timeout") == 0) {
            if (!parse_ms(v, &preshutdown) || !preshutdown)
                return install_usage("--preshutdown-timeout: a number of ms above 0");
            has_preshutdown = true;
        } else if (strcmp(a, "--restart-on-failure") == 0) {
            if (!parse_ms(v, &restart_ms))
                return install_usage("--restart-on-failure: a number of ms");
            has_restart = true;
        } else {
            char msg[128];
            snprintf(msg, sizeof msg, "unknown option '%s'", a);
            return install_usage(msg);
        }
    }
    if (nscripts == 0)
        return install_usage("no script given");
    if (nscripts > 1 && (name || display || description))
        return install_usage("--name, --display-name and --description need a single script");
    if (password && !account)
        return install_usage("--password needs --account");
    if (name && !lsvc_name_valid(name))
        return install_usage("--name: 1-80 characters, no '/', '\\' or control characters");

    /* Load every script (without starting it): a broken script is refused
     * here, not at its first start, and its name comes from the script. */
    char (*names)[128] = calloc((size_t)nscripts, sizeof *names);
    char (*displays)[256] = calloc((size_t)nscripts, sizeof *displays);
    if (!names || !displays)
        return 1;
    if (lsvc_win32_check_scripts(nscripts, scripts, names, displays)) {
        fprintf(stderr, "luasvc install: the script does not load (see above); nothing installed\n");
        return 1;
    }
    if (name) {
        snprintf(names[0], sizeof names[0], "%s", name);
        if (!display)
            snprintf(displays[0], sizeof displays[0], "%s", name);
    }
    if (display)
        snprintf(displays[0], sizeof displays[0], "%s", display);

    /* "EXE" service "NAME" "SCRIPT" ...: quoted absolute paths only. */
    static wchar_t cmdline[32768];
    wchar_t exe[MAX_PATH * 4];
    DWORD n = GetModuleFileNameW(NULL, exe, sizeof exe / sizeof exe[0]);
    if (!n || n >= sizeof exe / sizeof exe[0])
        return fail("GetModuleFileName");
    cmdline[0] = 0;
    append_quoted(cmdline, sizeof cmdline / sizeof cmdline[0], exe);
    wcscat(cmdline, L" service");
    if (log_file) {
        wchar_t *wl = lsvc_wide(log_file), full[MAX_PATH * 4];
        DWORD fn = wl ? GetFullPathNameW(wl, sizeof full / sizeof full[0], full, NULL) : 0;
        free(wl);
        if (!fn || fn >= sizeof full / sizeof full[0])
            return install_usage("--log-file: not a usable path");
        wcscat(cmdline, L" --log-file");
        append_quoted(cmdline, sizeof cmdline / sizeof cmdline[0], full);
    }
    if (no_watch)
        wcscat(cmdline, L" --no-watch");
    for (int k = 0; k < nscripts; k++) {
        wchar_t *wn = lsvc_wide(names[k]), *ws = lsvc_wide(scripts[k]);
        wchar_t full[MAX_PATH * 4];
        if (!wn || !ws)
            return install_usage("a name or path is not valid UTF-8");
        DWORD fn = GetFullPathNameW(ws, sizeof full / sizeof full[0], full, NULL);
        if (!fn || fn >= sizeof full / sizeof full[0])
            return fail(scripts[k]);
        append_quoted(cmdline, sizeof cmdline / sizeof cmdline[0], wn);
        append_quoted(cmdline, sizeof cmdline / sizeof cmdline[0], full);
        free(wn);
        free(ws);
    }

    SC_HANDLE scm = open_scm(SC_MANAGER_CREATE_SERVICE | SC_MANAGER_CONNECT);
    if (!scm)
        return 1;
    DWORD type = nscripts > 1 ? SERVICE_WIN32_SHARE_PROCESS : SERVICE_WIN32_OWN_PROCESS;
    wchar_t *wacct = lsvc_wide(account), *wpass = lsvc_wide(password);
    int rc = 0, created = 0;
    SC_HANDLE *hs = calloc((size_t)nscripts, sizeof *hs);
    for (int k = 0; k < nscripts && rc == 0; k++) {
        wchar_t *wn = lsvc_wide(names[k]), *wd = lsvc_wide(displays[k][0] ? displays[k] : names[k]);
        hs[k] = CreateServiceW(scm, wn, wd, SERVICE_ALL_ACCESS, type, start, SERVICE_ERROR_NORMAL,
                               cmdline, NULL, NULL, depn ? deps : NULL, wacct, wpass);
        free(wn);
        free(wd);
        if (!hs[k]) {
            char what[300];
            snprintf(what, sizeof what, "creating service '%s'", names[k]);
            rc = fail(what);
            break;
        }
        created++;
        SC_HANDLE h = hs[k];
        DWORD err = lsvc_win32_eventlog_register(names[k], exe);
        if (err != ERROR_SUCCESS) {
            char what[300];
            snprintf(what, sizeof what, "registering the event source of '%s'", names[k]);
            rc = fail_code(what, err);
            break;
        }
        if (description) {
            wchar_t *wdesc = lsvc_wide(description);
            SERVICE_DESCRIPTIONW d = {wdesc};
            if (!config2(h, SERVICE_CONFIG_DESCRIPTION, &d, "a description"))
                rc = 1;
            free(wdesc);
        }
        if (rc == 0 && delayed) {
            SERVICE_DELAYED_AUTO_START_INFO d = {TRUE};
            if (!config2(h, SERVICE_CONFIG_DELAYED_AUTO_START_INFO, &d, "delayed auto-start"))
                rc = 1;
        }
        if (rc == 0 && has_preshutdown) {
            SERVICE_PRESHUTDOWN_INFO p = {preshutdown};
            if (!config2(h, SERVICE_CONFIG_PRESHUTDOWN_INFO, &p, "a preshutdown timeout"))
                rc = 1;
        }
        if (rc == 0 && has_restart) {
            /* Restart after each of the first three failures; the count
             * resets after a day. The flag makes a non-zero exit code a
             * failure too, not only a crash. */
            SC_ACTION actions[3] = {{SC_ACTION_RESTART, restart_ms},
                                    {SC_ACTION_RESTART, restart_ms},
                                    {SC_ACTION_RESTART, restart_ms}};
            SERVICE_FAILURE_ACTIONSW fa = {86400, NULL, NULL, 3, actions};
            SERVICE_FAILURE_ACTIONS_FLAG flag = {TRUE};
            if (!config2(h, SERVICE_CONFIG_FAILURE_ACTIONS, &fa, "failure actions") ||
                !config2(h, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, &flag, "the failure actions flag"))
                rc = 1;
        }
    }
    if (rc != 0) { /* nothing half-installed stays behind */
        for (int k = 0; k < created; k++) {
            DeleteService(hs[k]);
            lsvc_win32_eventlog_unregister(names[k]);
        }
    } else {
        for (int k = 0; k < nscripts; k++)
            printf("installed '%s' (%s)%s\n", names[k], scripts[k],
                   nscripts > 1 ? ", sharing one process" : "");
    }
    for (int k = 0; k < created; k++)
        CloseServiceHandle(hs[k]);
    CloseServiceHandle(scm);
    return rc;
}

/* ---- the other commands ----------------------------------------------- */

static int cmd_uninstall(const char *name)
{
    SC_HANDLE scm = open_scm(SC_MANAGER_CONNECT);
    if (!scm)
        return 1;
    SC_HANDLE h = open_service(scm, name, SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE);
    int rc = 1;
    if (h) {
        SERVICE_STATUS_PROCESS ss;
        rc = 0;
        if (!query(h, &ss)) {
            rc = fail("QueryServiceStatusEx");
        } else if (ss.dwCurrentState != SERVICE_STOPPED) {
            SERVICE_STATUS s;
            if (ss.dwCurrentState != SERVICE_STOP_PENDING && !ControlService(h, SERVICE_CONTROL_STOP, &s))
                rc = fail("stopping it");
            else if (wait_state(h, name, SERVICE_STOPPED, &ss) == 0)
                print_exit(name, &ss);
            else
                rc = 1;
        }
        if (rc == 0 && !DeleteService(h))
            rc = fail("DeleteService");
        DWORD err = rc == 0 ? lsvc_win32_eventlog_unregister(name) : ERROR_SUCCESS;
        if (err != ERROR_SUCCESS)
            rc = fail_code("removing its event source", err);
        if (rc == 0)
            printf("uninstalled '%s'\n", name);
        CloseServiceHandle(h);
    }
    CloseServiceHandle(scm);
    return rc;
}

/*
 * StartServiceW failed. A service that reports START_PENDING and then
 * STOPPED (a script that does not load) before the SCM looks at its first
 * report gets ERROR_SERVICE_REQUEST_TIMEOUT from Wine's SCM although it
 * did report: then the service's own exit code is the news.
 */
static void start_failed(SC_HANDLE h, const char *name)
{
    DWORD err = GetLastError();
    SERVICE_STATUS_PROCESS ss;
    if (err == ERROR_SERVICE_REQUEST_TIMEOUT && query(h, &ss) &&
        ss.dwCurrentState == SERVICE_STOPPED && ss.dwWin32ExitCode != NO_ERROR &&
        ss.dwWin32ExitCode != ERROR_SERVICE_REQUEST_TIMEOUT) {
        print_exit(name, &ss);
        return;
    }
    fail_code("StartService", err);
}

static int cmd_start(const char *name, int argc, char **argv)
{
    SC_HANDLE scm = open_scm(SC_MANAGER_CONNECT);
    if (!scm)
        return 1;
    SC_HANDLE h = open_service(scm, name, SERVICE_START | SERVICE_QUERY_STATUS);
    int rc = 1;
    if (h) {
        const wchar_t **wargs = calloc((size_t)argc + 1, sizeof *wargs);
        bool ok = wargs != NULL;
        for (int i = 0; ok && i < argc; i++)
            ok = (wargs[i] = lsvc_wide(argv[i])) != NULL;
        SERVICE_STATUS_PROCESS ss;
        if (!ok)
            fprintf(stderr, "luasvc start: an argument is not valid UTF-8\n");
        else if (!StartServiceW(h, (DWORD)argc, argc ? wargs : NULL))
            start_failed(h, name);
        else if ((rc = wait_state(h, name, SERVICE_RUNNING, &ss)) == 0)
            printf("%s: RUNNING (pid %lu)\n", name, (unsigned long)ss.dwProcessId);
        for (int i = 0; wargs && i < argc; i++)
            free((void *)wargs[i]);
        free(wargs);
        CloseServiceHandle(h);
    }
    CloseServiceHandle(scm);
    return rc;
}

static int cmd_control(const char *name, DWORD code)
{
    SC_HANDLE scm = open_scm(SC_MANAGER_CONNECT);
    if (!scm)
        return 1;
    DWORD access = SERVICE_QUERY_STATUS;
    if (code == SERVICE_CONTROL_STOP)
        access |= SERVICE_STOP;
    else if (code == SERVICE_CONTROL_INTERROGATE)
        access |= SERVICE_INTERROGATE;
    else if (code >= 128)
        access |= SERVICE_USER_DEFINED_CONTROL;
    else
        access |= SERVICE_PAUSE_CONTINUE;
    SC_HANDLE h = open_service(scm, name, access);
    int rc = 1;
    if (h) {
        SERVICE_STATUS s;
        SERVICE_STATUS_PROCESS ss;
        const char *cname = lsvc_control_name(code);
        char what[300];
        snprintf(what, sizeof what, "%s %lu to '%s' refused", cname ? cname : "control",
                 (unsigned long)code, name);
        if (!ControlService(h, code, &s)) {
            fail(what);
        } else if (code == SERVICE_CONTROL_STOP) {
            if ((rc = wait_state(h, name, SERVICE_STOPPED, &ss)) == 0)
                print_exit(name, &ss);
        } else if (code == SERVICE_CONTROL_PAUSE) {
            if ((rc = wait_state(h, name, SERVICE_PAUSED, &ss)) == 0)
                printf("%s: PAUSED\n", name);
        } else if (code == SERVICE_CONTROL_CONTINUE) {
            if ((rc = wait_state(h, name, SERVICE_RUNNING, &ss)) == 0)
                printf("%s: RUNNING\n", name);
        } else {
            rc = 0;
        }
        CloseServiceHandle(h);
    }
    CloseServiceHandle(scm);
    return rc;
}

/* The script a luasvc service runs, from its command line; "" if not ours. */
static void script_of(SC_HANDLE h, const wchar_t *wname, char *buf, size_t len)
{
    buf[0] = '\0';
    DWORD need = 0;
    QueryServiceConfigW(h, NULL, 0, &need);
    QUERY_SERVICE_CONFIGW *cfg = need ? malloc(need) : NULL;
    if (!cfg || !QueryServiceConfigW(h, cfg, need, &need) || !cfg->lpBinaryPathName) {
        free(cfg);
        return;
    }
    int n = 0;
    /* shell32 is loaded here only: linked in, it would be loaded (with
     * user32 and gdi32 behind it) into every service process at start. */
    typedef LPWSTR *(WINAPI * argv_fn)(LPCWSTR, int *);
    HMODULE shell32 = LoadLibraryW(L"shell32.dll");
    argv_fn to_argv = shell32 ? (argv_fn)(void (*)(void))GetProcAddress(shell32, "CommandLineToArgvW")
                              : NULL;
    wchar_t **av = to_argv ? to_argv(cfg->lpBinaryPathName, &n) : NULL;
    int i = 2; /* past the options win32_scm.c takes */
    while (av && i < n && wcsncmp(av[i], L"--", 2) == 0)
        i += wcscmp(av[i], L"--log-file") == 0 ? 2 : 1;
    for (; av && n >= 2 && wcscmp(av[1], L"service") == 0 && i + 1 < n; i += 2)
        if (_wcsicmp(av[i], wname) == 0) {
            char *s = lsvc_utf8(av[i + 1]);
            snprintf(buf, len, "%s", s ? s : "");
            free(s);
        }
    LocalFree(av);
    if (shell32)
        FreeLibrary(shell32);
    free(cfg);
}
static void display_of(SC_HANDLE h, char *buf, size_t len)
{
    buf[0] = '\0';
    DWORD need = 0;
    QueryServiceConfigW(h, NULL, 0, &need);
    QUERY_SERVICE_CONFIGW *cfg = need ? malloc(need) : NULL;
    if (cfg && QueryServiceConfigW(h, cfg, need, &need) && cfg->lpDisplayName) {
        char *s = lsvc_utf8(cfg->lpDisplayName);
        snprintf(buf, len, "%s", s ? s : "");
        free(s);
    }
    free(cfg);
}

/* QueryServiceConfig2W at level into a malloc'd buffer; NULL when this
 * service manager does not answer it (Wine stores some levels only). */
static void *config2_query(SC_HANDLE h, DWORD level)
{
    DWORD need = 0;
    if (!QueryServiceConfig2W(h, level, NULL, 0, &need) &&
        GetLastError() != ERROR_INSUFFICIENT_BUFFER)
        return NULL;
    if (need == 0)
        return NULL;
    void *buf = calloc(1, need);
    if (buf && !QueryServiceConfig2W(h, level, buf, need, &need)) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

/* snprintf at buf + pos, bounded: the text is cut at len - 1. */
static size_t put(char *buf, size_t len, size_t pos, const char *fmt, ...) LSVC_PRINTF(4, 5);
static size_t put(char *buf, size_t len, size_t pos, const char *fmt, ...)
{
    if (pos >= len)
        return pos;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + pos, len - pos, fmt, ap);
    va_end(ap);
    if (k < 0)
        return pos;
    return pos + (size_t)k < len ? pos + (size_t)k : len - 1;
}

/* Append ,"key":"UTF-16 string" (or null) to buf. */
static size_t json_wstr(char *buf, size_t len, size_t pos, const char *key, const wchar_t *w)
{
    pos = put(buf, len, pos, ",\"%s\":", key);
    char *s = w ? lsvc_utf8(w) : NULL;
    if (s)
        pos = lsvc_json_str(buf, len, pos, s);
    else
        pos = put(buf, len, pos, "null");
    free(s);
    return pos;
}

/*
 * The service's configuration as the SCM has it, as a JSON object in buf:
 * start type, account, dependencies (QueryServiceConfigW), description,
 * delayed auto-start, preshutdown timeout, failure actions and their
 * non-crash flag (QueryServiceConfig2W). A field the service manager does
 * not answer is null. Returns the length.
 */
static size_t config_json(SC_HANDLE h, char *buf, size_t len)
{
    static const char *const starts[] = {"boot", "system", "auto", "demand", "disabled"};
    size_t pos = put(buf, len, 0, "{");
    DWORD need = 0;
    QueryServiceConfigW(h, NULL, 0, &need);
    QUERY_SERVICE_CONFIGW *cfg = need ? calloc(1, need) : NULL;
    if (cfg && QueryServiceConfigW(h, cfg, need, &need)) {
        pos = put(buf, len, pos, "\"start\":\"%s\"",
                                cfg->dwStartType < 5 ? starts[cfg->dwStartType] : "unknown");
        pos = put(buf, len, pos, ",\"type\":\"%s\"",
                                (cfg->dwServiceType & SERVICE_WIN32_SHARE_PROCESS)
                                    ? "share_process"
                                    : "own_process");
        pos = json_wstr(buf, len, pos, "account", cfg->lpServiceStartName);
        pos = put(buf, len, pos, ",\"dependencies\":[");
        int k = 0;
        for (const wchar_t *d = cfg->lpDependencies; d && *d; d += wcslen(d) + 1) {
            char *s = lsvc_utf8(d);
            if (k++)
                pos = put(buf, len, pos, ",");
            pos = lsvc_json_str(buf, len, pos, s ? s : "");
            free(s);
        }
        pos = put(buf, len, pos, "]");
    } else {
        pos = put(buf, len, pos,
                                "\"start\":null,\"type\":null,\"account\":null,"
                                "\"dependencies\":null");
    }
    free(cfg);

    SERVICE_DESCRIPTIONW *desc = config2_query(h, SERVICE_CONFIG_DESCRIPTION);
    pos = json_wstr(buf, len, pos, "description", desc ? desc->lpDescription : NULL);
    free(desc);

    SERVICE_DELAYED_AUTO_START_INFO *delayed =
        config2_query(h, SERVICE_CONFIG_DELAYED_AUTO_START_INFO);
    pos = put(buf, len, pos, ",\"delayed_auto_start\":%s",
                            !delayed ? "null" : delayed->fDelayedAutostart ? "true" : "false");
    free(delayed);

    SERVICE_PRESHUTDOWN_INFO *pre = config2_query(h, SERVICE_CONFIG_PRESHUTDOWN_INFO);
    if (pre)
        pos = put(buf, len, pos, ",\"preshutdown_timeout\":%lu",
                                (unsigned long)pre->dwPreshutdownTimeout);
    else
        pos = put(buf, len, pos, ",\"preshutdown_timeout\":null");
    free(pre);

    SERVICE_FAILURE_ACTIONSW *fa = config2_query(h, SERVICE_CONFIG_FAILURE_ACTIONS);
    if (fa) {
        static const char *const types[] = {"none", "restart", "reboot", "run_command"};
        pos = put(buf, len, pos,
                                ",\"failure_actions\":{\"reset_period\":%lu,\"actions\":[",
                                (unsigned long)fa->dwResetPeriod);
        for (DWORD i = 0; fa->lpsaActions && i < fa->cActions; i++)
            pos += (size_t)snprintf(
                buf + pos, len - pos, "%s{\"type\":\"%s\",\"delay\":%lu}", i ? "," : "",
                fa->lpsaActions[i].Type < 4 ? types[fa->lpsaActions[i].Type] : "unknown",
                (unsigned long)fa->lpsaActions[i].Delay);
        pos = put(buf, len, pos, "]}");
    } else {
        pos = put(buf, len, pos, ",\"failure_actions\":null");
    }
    free(fa);

    SERVICE_FAILURE_ACTIONS_FLAG *flag = config2_query(h, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG);
    pos = put(buf, len, pos, ",\"failure_actions_on_non_crash\":%s}",
                            !flag ? "null" : flag->fFailureActionsOnNonCrashFailures ? "true"
                                                                                   : "false");
    free(flag);
    return pos;
}

static void accepted_list(DWORD mask, char *buf, size_t len, bool json)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (uint32_t bit = 1; bit <= LSVC_ACCEPT_PRESHUTDOWN; bit <<= 1) {
        const char *n = (mask & bit) ? lsvc_accept_name(bit) : NULL;
        if (!n)
            continue;
        int k = snprintf(buf + pos, len - pos, json ? "%s\"%s\"" : "%s%s", pos ? "," : "", n);
        if (k < 0 || (size_t)k >= len - pos)
            break;
        pos += (size_t)k;
    }
}

/* One service's status: a line, or the JSON object the POSIX host gives
 * (fields only the host knows are null). quiet: skip non-luasvc services. */
static int show(SC_HANDLE scm, const char *name, bool json, bool quiet)
{
    SC_HANDLE h = open_service(scm, name, SERVICE_QUERY_STATUS | SERVICE_QUERY_CONFIG);
    if (!h)
        return 1;
    SERVICE_STATUS_PROCESS ss;
    if (!query(h, &ss)) {
        CloseServiceHandle(h);
        return fail("QueryServiceStatusEx");
    }
    char script[1024], display[512], acc[256], config[8192];
    wchar_t *wname = lsvc_wide(name);
    script_of(h, wname, script, sizeof script);
    display_of(h, display, sizeof display);
    free(wname);
    if (json)
        config_json(h, config, sizeof config);
    CloseServiceHandle(h);
    if (quiet && !script[0])
        return 0;
    accepted_list(ss.dwControlsAccepted, acc, sizeof acc, json);
    if (json) {
        char buf[16384];
        size_t pos = 0;
        pos = (size_t)snprintf(buf, sizeof buf, "{\"name\":");
        pos = lsvc_json_str(buf, sizeof buf, pos, name);
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, ",\"display_name\":");
        pos = lsvc_json_str(buf, sizeof buf, pos, display[0] ? display : name);
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, ",\"script\":");
        pos = lsvc_json_str(buf, sizeof buf, pos, script);
        snprintf(buf + pos, sizeof buf - pos,
                 ",\"state\":\"%s\",\"state_code\":%lu,\"controls_accepted\":[%s],"
                 "\"accepts\":null,\"win32_exit_code\":%lu,\"service_exit_code\":%lu,"
                 "\"checkpoint\":%lu,\"wait_hint\":%lu,\"stop_timeout\":null,\"pid\":%lu,"
                 "\"controls_delivered\":null,\"control_latency_us\":null,\"config\":%s}",
                 state_name(ss.dwCurrentState), (unsigned long)ss.dwCurrentState, acc,
                 (unsigned long)ss.dwWin32ExitCode, (unsigned long)ss.dwServiceSpecificExitCode,
                 (unsigned long)ss.dwCheckPoint, (unsigned long)ss.dwWaitHint,
                 (unsigned long)ss.dwProcessId, config);
        printf("%s\n", buf);
        return 0;
    }
    printf("%-20s %-16s pid %-7lu accepts %-28s exit %lu/%lu", name,
           state_name(ss.dwCurrentState), (unsigned long)ss.dwProcessId, acc[0] ? acc : "-",
           (unsigned long)ss.dwWin32ExitCode, (unsigned long)ss.dwServiceSpecificExitCode);
    if (lsvc_state_is_pending((lsvc_state)ss.dwCurrentState))
        printf("  checkpoint %lu wait %lu ms", (unsigned long)ss.dwCheckPoint,
               (unsigned long)ss.dwWaitHint);
    printf("\n");
    return 0;
}

static int cmd_status(const char *name, bool json)
{
    SC_HANDLE scm = open_scm(SC_MANAGER_CONNECT | SC_MANAGER_ENUMERATE_SERVICE);
    if (!scm)
        return 1;
    int rc = 0;
    if (name) {
        rc = show(scm, name, json, false);
    } else {
        /* Every service whose command line is `luasvc service ...`. */
        DWORD need = 0, count = 0, resume = 0;
        EnumServicesStatusExW(scm, SC_ENUM_PROCESS_INFO, SERVICE_WIN32, SERVICE_STATE_ALL, NULL, 0,
                              &need, &count, &resume, NULL);
        BYTE *buf = malloc(need + 1);
        resume = 0;
        if (!buf || !EnumServicesStatusExW(scm, SC_ENUM_PROCESS_INFO, SERVICE_WIN32,
                                           SERVICE_STATE_ALL, buf, need, &need, &count, &resume,
                                           NULL)) {
            rc = fail("EnumServicesStatusEx");
        } else {
            ENUM_SERVICE_STATUS_PROCESSW *e = (ENUM_SERVICE_STATUS_PROCESSW *)buf;
            for (DWORD i = 0; i < count; i++) {
                char *n = lsvc_utf8(e[i].lpServiceName);
                if (n)
                    rc |= show(scm, n, json, true);
                free(n);
            }
        }
        free(buf);
    }
    CloseServiceHandle(scm);
    return rc;
}

int lsvc_win32_client(const char *cmd, int argc, char **argv)
{
    if (strcmp(cmd, "install") == 0)
        return cmd_install(argc, argv);
    if (strcmp(cmd, "status") == 0) {
        const char *name;
        bool json;
        if (lsvc_parse_name_json("status", argc, argv, &name, &json) != 0)
            return 2;
        return cmd_status(name, json);
    }
    if (strcmp(cmd, "uninstall") == 0 || strcmp(cmd, "start") == 0) {
        if (argc < 1 || (cmd[0] == 'u' && argc != 1)) {
            fprintf(stderr, "usage: luasvc %s NAME%s\n", cmd, cmd[0] == 's' ? " [ARGS...]" : "");
            return 2;
        }
        return cmd[0] == 'u' ? cmd_uninstall(argv[0]) : cmd_start(argv[0], argc - 1, argv + 1);
    }
    if (strcmp(cmd, "control") == 0) {
        int code = argc == 2 ? lsvc_parse_control(argv[1]) : -2;
        if (code == -2) {
            fputs("usage: luasvc control NAME CODE\n", stderr);
            return 2;
        }
        if (code < 0) {
            fprintf(stderr,
                    "luasvc control: bad control '%s': 128-255, or stop, pause, continue, "
                    "interrogate, paramchange, reload, shutdown, preshutdown\n",
                    argv[1]);
            return 2;
        }
        return cmd_control(argv[0], (DWORD)code);
    }
    if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "pause") == 0 || strcmp(cmd, "continue") == 0 ||
        strcmp(cmd, "reload") == 0 || strcmp(cmd, "interrogate") == 0) {
        if (argc != 1) {
            fprintf(stderr, "usage: luasvc %s NAME\n", cmd);
            return 2;
        }
        return cmd_control(argv[0], (DWORD)lsvc_control_from_name(cmd));
    }
    return -1;
}
