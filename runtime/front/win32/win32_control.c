/*
 * win32_control.c - `luasvc start NAME [ARGS...]` (StartServiceW with the
 * start arguments, UTF-16) and the controls `stop`, `pause`, `continue`,
 * `reload`, `interrogate` and `control NAME CODE` (ControlService), each
 * waiting for the state it leads to (at most --timeout) and printing the
 * checkpoints on the way. Runs in the luasvc client process, on its main thread.
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

int lsvc_win32_start(const char *name, int argc, char **argv, uint64_t timeout_ms)
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
        else if ((rc = lsvc_win32_wait_state(h, name, SERVICE_RUNNING, timeout_ms, &ss)) == 0)
            printf("%s: RUNNING (pid %lu)\n", name, (unsigned long)ss.dwProcessId);
        for (int i = 0; wargs && i < argc; i++)
            free((void *)wargs[i]);
        free(wargs);
        CloseServiceHandle(h);
    }
    CloseServiceHandle(scm);
    return rc;
}

/* The state a control leads to, and the pending state on the way (0, 0
 * for a control that leads to none). */
static void control_target(DWORD code, DWORD *target, DWORD *pending)
{
    *target = code == SERVICE_CONTROL_STOP       ? SERVICE_STOPPED
              : code == SERVICE_CONTROL_PAUSE    ? SERVICE_PAUSED
              : code == SERVICE_CONTROL_CONTINUE ? SERVICE_RUNNING
                                                 : 0;
    *pending = code == SERVICE_CONTROL_STOP       ? SERVICE_STOP_PENDING
               : code == SERVICE_CONTROL_PAUSE    ? SERVICE_PAUSE_PENDING
               : code == SERVICE_CONTROL_CONTINUE ? SERVICE_CONTINUE_PENDING
                                                  : 0;
}

/* Send code to h and wait for the state it leads to. A service already on
 * its way there (an earlier control whose wait timed out) is only waited
 * for: the SCM would refuse the control with 1061. */
static int control_and_wait(SC_HANDLE h, const char *name, DWORD code, uint64_t timeout_ms)
{
    SERVICE_STATUS s;
    SERVICE_STATUS_PROCESS ss;
    DWORD target, pending;
    control_target(code, &target, &pending);
    bool on_the_way = pending && lsvc_win32_query(h, &ss) && ss.dwCurrentState == pending;
    if (!on_the_way && !ControlService(h, code, &s)) {
        const char *cname = lsvc_control_name(code);
        char what[300];
        snprintf(what, sizeof what, "%s %lu to '%s' refused", cname ? cname : "control",
                 (unsigned long)code, name);
        return lsvc_win32_fail(what);
    }
    if (!target)
        return 0;
    int rc = lsvc_win32_wait_state(h, name, target, timeout_ms, &ss);
    if (rc == 0 && target == SERVICE_STOPPED)
        lsvc_win32_print_exit(name, &ss);
    else if (rc == 0)
        printf("%s: %s\n", name, lsvc_win32_state_name(target));
    return rc;
}

int lsvc_win32_control(const char *name, DWORD code, uint64_t timeout_ms)
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
        rc = control_and_wait(h, name, code, timeout_ms);
        CloseServiceHandle(h);
    }
    CloseServiceHandle(scm);
    return rc;
}
