/*
 * win32_svcapi.c - what every client verb family uses to speak to the
 * Windows service control manager: opening it and a service, querying a
 * status (QueryServiceStatusEx), waiting for a state with the SCM's
 * checkpoint rule (and the caller's --timeout), and printing errors as the
 * Win32 code and its FormatMessage text. The bottom of the client: the
 * families (win32_install.c, win32_control.c, win32_status.c) and the
 * service process (win32_scm.c, the error text) call it; it calls none of
 * them. Runs in the luasvc client process, on its main thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "../frontend.h"
#include "win32.h"

#define POLL_MS 20

void lsvc_win32_error_text(uint32_t code, char *buf, size_t len)
{
    wchar_t w[512];
    DWORD n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code,
                             0, w, sizeof w / sizeof w[0], NULL);
    char *s = n ? lsvc_utf8(w) : NULL;
    snprintf(buf, len, "%s", s ? s : lsvc_win32_message(code));
    free(s);
    size_t k = strlen(buf);
    while (k &&
           (buf[k - 1] == '\n' || buf[k - 1] == '\r' || buf[k - 1] == ' ' || buf[k - 1] == '.'))
        buf[--k] = '\0';
}

/* Print "luasvc: WHAT: error N: text" for err (fail: the last error);
 * returns 1. */
int lsvc_win32_fail_code(const char *what, DWORD err)
{
    char text[512];
    lsvc_win32_error_text(err, text, sizeof text);
    fprintf(stderr, "luasvc: %s: error %lu: %s\n", what, (unsigned long)err, text);
    return 1;
}

int lsvc_win32_fail(const char *what) { return lsvc_win32_fail_code(what, GetLastError()); }

SC_HANDLE lsvc_win32_open_scm(DWORD access)
{
    SC_HANDLE scm = OpenSCManagerW(NULL, NULL, access);
    if (!scm)
        lsvc_win32_fail("OpenSCManager");
    return scm;
}

/* Open NAME with access; prints the error. */
SC_HANDLE lsvc_win32_open_service(SC_HANDLE scm, const char *name, DWORD access)
{
    wchar_t *w = lsvc_wide(name);
    SC_HANDLE h = w ? OpenServiceW(scm, w, access) : NULL;
    DWORD err = w ? GetLastError() : ERROR_INVALID_NAME;
    free(w);
    if (!h) {
        char what[300];
        snprintf(what, sizeof what, "service '%s'", name);
        lsvc_win32_fail_code(what, err);
    }
    return h;
}

bool lsvc_win32_query(SC_HANDLE h, SERVICE_STATUS_PROCESS *ss)
{
    DWORD need;
    return QueryServiceStatusEx(h, SC_STATUS_PROCESS_INFO, (BYTE *)ss, sizeof *ss, &need);
}

const char *lsvc_win32_state_name(DWORD s)
{
    const char *n = lsvc_state_name((lsvc_state)s);
    return n ? n : "UNKNOWN";
}

void lsvc_win32_print_exit(const char *name, const SERVICE_STATUS_PROCESS *ss)
{
    lsvc_exit e = {ss->dwWin32ExitCode, ss->dwServiceSpecificExitCode};
    char text[512], line[LSVC_EXIT_TEXT_MAX];
    lsvc_win32_error_text(ss->dwWin32ExitCode, text, sizeof text);
    printf("%s: %s\n", name, lsvc_exit_text(e, text, line, sizeof line));
}

/*
 * Wait until the service leaves the pending state it is in (or has not yet
 * entered), printing each checkpoint. Gives up when a checkpoint does not
 * move within its wait hint (plus slack), as the SCM's own rule says, or
 * when timeout_ms (0: none) has passed, saying the state it is in.
 * Returns 0 when it reached target, 1 otherwise (the status printed).
 */
int lsvc_win32_wait_state(SC_HANDLE h, const char *name, DWORD target, uint64_t timeout_ms,
                          SERVICE_STATUS_PROCESS *ss)
{
    DWORD last_state = 0, last_cp = 0;
    ULONGLONG since = GetTickCount64(), t0 = since;
    for (;;) {
        if (!lsvc_win32_query(h, ss))
            return lsvc_win32_fail("QueryServiceStatusEx");
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
                       lsvc_win32_state_name(ss->dwCurrentState), (unsigned long)ss->dwCheckPoint,
                       (unsigned long)ss->dwWaitHint);
            fflush(stdout);
            last_state = ss->dwCurrentState;
            last_cp = ss->dwCheckPoint;
            since = GetTickCount64();
        }
        ULONGLONG now = GetTickCount64(), patience = (ULONGLONG)ss->dwWaitHint + 5000;
        if (timeout_ms && now - t0 >= timeout_ms) {
            fprintf(stderr,
                    "luasvc: %s: still %s after %.1f s (checkpoint %lu, wait hint %lu ms)\n", name,
                    lsvc_win32_state_name(ss->dwCurrentState), (double)timeout_ms / 1000.0,
                    (unsigned long)ss->dwCheckPoint, (unsigned long)ss->dwWaitHint);
            return 1;
        }
        if (now - since > patience) {
            fprintf(stderr, "luasvc: %s: no progress within the wait hint (%lu ms) in %s\n", name,
                    (unsigned long)ss->dwWaitHint, lsvc_win32_state_name(ss->dwCurrentState));
            return 1;
        }
        Sleep(POLL_MS);
    }
    if (ss->dwCurrentState == SERVICE_STOPPED)
        lsvc_win32_print_exit(name, ss);
    else
        fprintf(stderr, "luasvc: %s: %s instead of %s\n", name,
                lsvc_win32_state_name(ss->dwCurrentState), lsvc_win32_state_name(target));
    return 1;
}
