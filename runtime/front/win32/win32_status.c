/*
 * win32_status.c - `luasvc status [NAME] [--json]`: a line per service, or
 * the JSON object the POSIX host gives (fields only a host knows are null)
 * with the service's configuration as the SCM has it (QueryServiceConfigW,
 * QueryServiceConfig2W). Without NAME, every service whose command line is
 * `luasvc service ...`. Runs in the luasvc client process, on its main
 * thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "win32.h"

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
    argv_fn to_argv =
        shell32 ? (argv_fn)(void (*)(void))GetProcAddress(shell32, "CommandLineToArgvW") : NULL;
    wchar_t **av = to_argv ? to_argv(cfg->lpBinaryPathName, &n) : NULL;
    int i = 2; /* past the options win32_scm.c takes */
    while (av && i < n && wcsncmp(av[i], L"--", 2) == 0)
        i += wcscmp(av[i], L"--no-watch") == 0 ? 1 : 2; /* the others take a value */
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

/* Append ,"key":"UTF-16 string" (or null) to buf. */
static void json_wstr(lsvc_buf *b, const char *key, const wchar_t *w)
{
    lsvc_buf_printf(b, ",\"%s\":", key);
    char *s = w ? lsvc_utf8(w) : NULL;
    if (s)
        lsvc_buf_json(b, s);
    else
        lsvc_buf_add(b, "null");
    free(s);
}

/*
 * The service's configuration as the SCM has it, as a JSON object in buf:
 * start type, account, dependencies (QueryServiceConfigW), description,
 * delayed auto-start, preshutdown timeout, failure actions and their
 * non-crash flag (QueryServiceConfig2W). A field the service manager does
 * not answer is null.
 */
static void config_json(SC_HANDLE h, char *buf, size_t len)
{
    static const char *const starts[] = {"boot", "system", "auto", "demand", "disabled"};
    lsvc_buf bb = lsvc_buf_init(buf, len), *b = &bb;
    lsvc_buf_add(b, "{");
    DWORD need = 0;
    QueryServiceConfigW(h, NULL, 0, &need);
    QUERY_SERVICE_CONFIGW *cfg = need ? calloc(1, need) : NULL;
    if (cfg && QueryServiceConfigW(h, cfg, need, &need)) {
        lsvc_buf_printf(b, "\"start\":\"%s\"",
                        cfg->dwStartType < 5 ? starts[cfg->dwStartType] : "unknown");
        lsvc_buf_printf(b, ",\"type\":\"%s\"",
                        (cfg->dwServiceType & SERVICE_WIN32_SHARE_PROCESS) ? "share_process"
                                                                           : "own_process");
        json_wstr(b, "account", cfg->lpServiceStartName);
        lsvc_buf_add(b, ",\"dependencies\":[");
        int k = 0;
        for (const wchar_t *d = cfg->lpDependencies; d && *d; d += wcslen(d) + 1) {
            char *s = lsvc_utf8(d);
            if (k++)
                lsvc_buf_add(b, ",");
            lsvc_buf_json(b, s ? s : "");
            free(s);
        }
        lsvc_buf_add(b, "]");
    } else {
        lsvc_buf_printf(b, "\"start\":null,\"type\":null,\"account\":null,"
                           "\"dependencies\":null");
    }
    free(cfg);

    SERVICE_DESCRIPTIONW *desc = config2_query(h, SERVICE_CONFIG_DESCRIPTION);
    json_wstr(b, "description", desc ? desc->lpDescription : NULL);
    free(desc);

    SERVICE_DELAYED_AUTO_START_INFO *delayed =
        config2_query(h, SERVICE_CONFIG_DELAYED_AUTO_START_INFO);
    lsvc_buf_printf(b, ",\"delayed_auto_start\":%s",
                    !delayed                     ? "null"
                    : delayed->fDelayedAutostart ? "true"
                                                 : "false");
    free(delayed);

    SERVICE_PRESHUTDOWN_INFO *pre = config2_query(h, SERVICE_CONFIG_PRESHUTDOWN_INFO);
    if (pre)
        lsvc_buf_printf(b, ",\"preshutdown_timeout\":%lu",
                        (unsigned long)pre->dwPreshutdownTimeout);
    else
        lsvc_buf_add(b, ",\"preshutdown_timeout\":null");
    free(pre);

    SERVICE_FAILURE_ACTIONSW *fa = config2_query(h, SERVICE_CONFIG_FAILURE_ACTIONS);
    if (fa) {
        static const char *const types[] = {"none", "restart", "reboot", "run_command"};
        lsvc_buf_printf(b, ",\"failure_actions\":{\"reset_period\":%lu,\"actions\":[",
                        (unsigned long)fa->dwResetPeriod);
        for (DWORD i = 0; fa->lpsaActions && i < fa->cActions; i++)
            lsvc_buf_printf(b, "%s{\"type\":\"%s\",\"delay\":%lu}", i ? "," : "",
                            fa->lpsaActions[i].Type < 4 ? types[fa->lpsaActions[i].Type]
                                                        : "unknown",
                            (unsigned long)fa->lpsaActions[i].Delay);
        lsvc_buf_add(b, "]}");
    } else {
        lsvc_buf_add(b, ",\"failure_actions\":null");
    }
    free(fa);

    SERVICE_FAILURE_ACTIONS_FLAG *flag = config2_query(h, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG);
    lsvc_buf_printf(b, ",\"failure_actions_on_non_crash\":%s}",
                    !flag                                     ? "null"
                    : flag->fFailureActionsOnNonCrashFailures ? "true"
                                                              : "false");
    free(flag);
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
    SC_HANDLE h = lsvc_win32_open_service(scm, name, SERVICE_QUERY_STATUS | SERVICE_QUERY_CONFIG);
    if (!h)
        return 1;
    SERVICE_STATUS_PROCESS ss;
    if (!lsvc_win32_query(h, &ss)) {
        CloseServiceHandle(h);
        return lsvc_win32_fail("QueryServiceStatusEx");
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
        char buf[16384], children[16] = "null";
        int nchildren = ss.dwProcessId ? lsvc_job_count_of(ss.dwProcessId) : -1;
        if (nchildren >= 0)
            snprintf(children, sizeof children, "%d", nchildren);
        lsvc_buf b = lsvc_buf_init(buf, sizeof buf);
        lsvc_buf_add(&b, "{\"name\":");
        lsvc_buf_json(&b, name);
        lsvc_buf_add(&b, ",\"display_name\":");
        lsvc_buf_json(&b, display[0] ? display : name);
        lsvc_buf_add(&b, ",\"script\":");
        lsvc_buf_json(&b, script);
        lsvc_buf_printf(&b,
                        ",\"state\":\"%s\",\"state_code\":%lu,\"controls_accepted\":[%s],"
                        "\"accepts\":null,\"win32_exit_code\":%lu,\"service_exit_code\":%lu,"
                        "\"checkpoint\":%lu,\"wait_hint\":%lu,\"stop_timeout\":null,\"pid\":%lu,"
                        "\"controls_delivered\":null,\"control_latency_us\":null,\"children\":%s,"
                        "\"config\":%s}",
                        lsvc_win32_state_name(ss.dwCurrentState), (unsigned long)ss.dwCurrentState,
                        acc, (unsigned long)ss.dwWin32ExitCode,
                        (unsigned long)ss.dwServiceSpecificExitCode, (unsigned long)ss.dwCheckPoint,
                        (unsigned long)ss.dwWaitHint, (unsigned long)ss.dwProcessId, children,
                        config);
        printf("%s\n", buf);
        return 0;
    }
    printf("%-20s %-16s pid %-7lu accepts %-28s exit %lu/%lu", name,
           lsvc_win32_state_name(ss.dwCurrentState), (unsigned long)ss.dwProcessId,
           acc[0] ? acc : "-", (unsigned long)ss.dwWin32ExitCode,
           (unsigned long)ss.dwServiceSpecificExitCode);
    if (lsvc_state_is_pending((lsvc_state)ss.dwCurrentState))
        printf("  checkpoint %lu wait %lu ms", (unsigned long)ss.dwCheckPoint,
               (unsigned long)ss.dwWaitHint);
    printf("\n");
    return 0;
}

int lsvc_win32_status(const char *name, bool json)
{
    SC_HANDLE scm = lsvc_win32_open_scm(SC_MANAGER_CONNECT | SC_MANAGER_ENUMERATE_SERVICE);
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
        if (!buf ||
            !EnumServicesStatusExW(scm, SC_ENUM_PROCESS_INFO, SERVICE_WIN32, SERVICE_STATE_ALL, buf,
                                   need, &need, &count, &resume, NULL)) {
            rc = lsvc_win32_fail("EnumServicesStatusEx");
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
