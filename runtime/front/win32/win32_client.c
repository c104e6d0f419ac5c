/*
 * win32_client.c - the client commands' common part: which verb goes where
 * (lsvc_win32_client), and what every verb family uses to speak to the
 * Windows service control manager: opening it and a service, querying a
 * status (QueryServiceStatusEx), waiting for a state with the SCM's
 * checkpoint rule, and printing errors as the Win32 code and its
 * FormatMessage text. The families: win32_install.c (install,
 * uninstall), win32_control.c (start and the controls), win32_status.c
 * (status). Runs in the luasvc client process, on its main thread.
 *
 * Exit status: 0 done, 1 refused or failed (the service manager's or the
 * service's error printed), 2 bad usage.
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
 * move within its wait hint (plus slack), as the SCM's own rule says.
 * Returns 0 when it reached target, 1 otherwise (the status printed).
 */
int lsvc_win32_wait_state(SC_HANDLE h, const char *name, DWORD target, SERVICE_STATUS_PROCESS *ss)
{
    DWORD last_state = 0, last_cp = 0;
    ULONGLONG since = GetTickCount64();
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
        ULONGLONG patience = (ULONGLONG)ss->dwWaitHint + 5000;
        if (GetTickCount64() - since > patience) {
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

int lsvc_win32_client(const char *cmd, int argc, char **argv)
{
    if (strcmp(cmd, "install") == 0)
        return lsvc_win32_install(argc, argv);
    if (strcmp(cmd, "status") == 0) {
        const char *name;
        bool json;
        if (lsvc_parse_name_json("status", argc, argv, &name, &json) != 0)
            return 2;
        return lsvc_win32_status(name, json);
    }
    if (strcmp(cmd, "uninstall") == 0 || strcmp(cmd, "start") == 0) {
        if (argc < 1 || (cmd[0] == 'u' && argc != 1))
            return lsvc_usage_error(cmd, "%s", argc < 1 ? "no NAME given" : "one NAME");
        return cmd[0] == 'u' ? lsvc_win32_uninstall(argv[0])
                             : lsvc_win32_start(argv[0], argc - 1, argv + 1);
    }
    if (strcmp(cmd, "control") == 0) {
        if (argc != 2)
            return lsvc_usage_error("control", "NAME and CODE");
        int code = lsvc_usage_control(argv[1]);
        return code < 0 ? 2 : lsvc_win32_control(argv[0], (DWORD)code);
    }
    if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "pause") == 0 || strcmp(cmd, "continue") == 0 ||
        strcmp(cmd, "reload") == 0 || strcmp(cmd, "interrogate") == 0) {
        if (argc != 1)
            return lsvc_usage_error(cmd, "one NAME");
        return lsvc_win32_control(argv[0], (DWORD)lsvc_control_from_name(cmd));
    }
    return -1;
}
