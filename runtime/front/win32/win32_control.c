/*
 * win32_control.c - `luasvc start NAME [ARGS...]` (StartServiceW with the
 * start arguments, UTF-16) and the controls `stop`, `pause`, `continue`,
 * `reload`, `interrogate` and `control NAME CODE` (ControlService), each
 * waiting for the state it leads to and printing the checkpoints on the
 * way. Runs in the luasvc client process, on its main thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <windows.h>

#include "win32.h"

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
    if (err == ERROR_SERVICE_REQUEST_TIMEOUT && lsvc_win32_query(h, &ss) &&
        ss.dwCurrentState == SERVICE_STOPPED && ss.dwWin32ExitCode != NO_ERROR &&
        ss.dwWin32ExitCode != ERROR_SERVICE_REQUEST_TIMEOUT) {
        lsvc_win32_print_exit(name, &ss);
        return;
    }
    lsvc_win32_fail_code("StartService", err);
}

int lsvc_win32_start(const char *name, int argc, char **argv)
{
    SC_HANDLE scm = lsvc_win32_open_scm(SC_MANAGER_CONNECT);
    if (!scm)
        return 1;
    SC_HANDLE h = lsvc_win32_open_service(scm, name, SERVICE_START | SERVICE_QUERY_STATUS);
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
        else if ((rc = lsvc_win32_wait_state(h, name, SERVICE_RUNNING, &ss)) == 0)
            printf("%s: RUNNING (pid %lu)\n", name, (unsigned long)ss.dwProcessId);
        for (int i = 0; wargs && i < argc; i++)
            free((void *)wargs[i]);
        free(wargs);
        CloseServiceHandle(h);
    }
    CloseServiceHandle(scm);
    return rc;
}

int lsvc_win32_control(const char *name, DWORD code)
{
    SC_HANDLE scm = lsvc_win32_open_scm(SC_MANAGER_CONNECT);
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
    SC_HANDLE h = lsvc_win32_open_service(scm, name, access);
    int rc = 1;
    if (h) {
        SERVICE_STATUS s;
        SERVICE_STATUS_PROCESS ss;
        const char *cname = lsvc_control_name(code);
        char what[300];
        snprintf(what, sizeof what, "%s %lu to '%s' refused", cname ? cname : "control",
                 (unsigned long)code, name);
        if (!ControlService(h, code, &s)) {
            lsvc_win32_fail(what);
        } else if (code == SERVICE_CONTROL_STOP) {
            if ((rc = lsvc_win32_wait_state(h, name, SERVICE_STOPPED, &ss)) == 0)
                lsvc_win32_print_exit(name, &ss);
        } else if (code == SERVICE_CONTROL_PAUSE) {
            if ((rc = lsvc_win32_wait_state(h, name, SERVICE_PAUSED, &ss)) == 0)
                printf("%s: PAUSED\n", name);
        } else if (code == SERVICE_CONTROL_CONTINUE) {
            if ((rc = lsvc_win32_wait_state(h, name, SERVICE_RUNNING, &ss)) == 0)
                printf("%s: RUNNING\n", name);
        } else {
            rc = 0;
        }
        CloseServiceHandle(h);
    }
    CloseServiceHandle(scm);
    return rc;
}
