/*
 * win32_eventlog.c - the Windows event log. `luasvc install` registers an
 * event source per service (HKLM\SYSTEM\CurrentControlSet\Services\
 * EventLog\Application\NAME: EventMessageFile = luasvc.exe, whose message
 * table win32_messages.mc makes each event's text its log line;
 * TypesSupported = error|warning|information) and `luasvc uninstall`
 * removes it. In the service process, log lines at NOTICE or more severe
 * (errors, and the lifecycle lines win32_scm.c logs) go to ReportEventW
 * as well as to the log file.
 *
 * Registration: client process, main thread. The sink: any thread (set up
 * on the main thread before any service thread starts).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "win32.h"

#define EVENTLOG_KEY L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\"

/* Message IDs of win32_messages.mc. */
enum { MSG_ERROR = 1, MSG_WARNING = 2, MSG_INFO = 3 };

static wchar_t *key_path(const char *name)
{
    wchar_t *wn = lsvc_wide(name);
    if (!wn)
        return NULL;
    size_t n = wcslen(EVENTLOG_KEY) + wcslen(wn) + 1;
    wchar_t *k = malloc(n * sizeof *k);
    if (k) {
        wcscpy(k, EVENTLOG_KEY);
        wcscat(k, wn);
    }
    free(wn);
    return k;
}

uint32_t lsvc_win32_eventlog_register(const char *name, const wchar_t *exe)
{
    wchar_t *k = key_path(name);
    if (!k)
        return ERROR_INVALID_NAME;
    HKEY key;
    LSTATUS rc =
        RegCreateKeyExW(HKEY_LOCAL_MACHINE, k, 0, NULL, 0, KEY_SET_VALUE, NULL, &key, NULL);
    free(k);
    if (rc != ERROR_SUCCESS)
        return (uint32_t)rc;
    DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
    rc = RegSetValueExW(key, L"EventMessageFile", 0, REG_EXPAND_SZ, (const BYTE *)exe,
                        (DWORD)((wcslen(exe) + 1) * sizeof *exe));
    if (rc == ERROR_SUCCESS)
        rc = RegSetValueExW(key, L"TypesSupported", 0, REG_DWORD, (const BYTE *)&types,
                            sizeof types);
    RegCloseKey(key);
    return (uint32_t)rc;
}

uint32_t lsvc_win32_eventlog_unregister(const char *name)
{
    wchar_t *k = key_path(name);
    if (!k)
        return ERROR_INVALID_NAME;
    LSTATUS rc = RegDeleteKeyW(HKEY_LOCAL_MACHINE, k);
    free(k);
    return rc == ERROR_FILE_NOT_FOUND ? ERROR_SUCCESS : (uint32_t)rc;
}

/* The service process's event sources, one per hosted service. */
static struct source {
    char *name; /* the service's name, UTF-8 */
    HANDLE h;
} * g_sources;
static int g_nsources;

/* Any thread. Lines of a service the process does not host (or of none)
 * go to the first service's source. */
static void sink(lsvc_level lv, const char *service, const char *text)
{
    struct source *src = NULL;
    for (int i = 0; i < g_nsources && !src; i++)
        if (service && strcmp(g_sources[i].name, service) == 0)
            src = &g_sources[i];
    if (!src)
        src = &g_sources[0];
    if (!src->h)
        return;
    char line[4096];
    snprintf(line, sizeof line, "%s: %s", service ? service : "luasvc", text);
    wchar_t *w = lsvc_wide(line);
    if (!w)
        return;
    WORD type = lv <= LSVC_LOG_ERROR     ? EVENTLOG_ERROR_TYPE
                : lv <= LSVC_LOG_WARNING ? EVENTLOG_WARNING_TYPE
                                         : EVENTLOG_INFORMATION_TYPE;
    DWORD id = lv <= LSVC_LOG_ERROR ? MSG_ERROR : lv <= LSVC_LOG_WARNING ? MSG_WARNING : MSG_INFO;
    const wchar_t *strings[1] = {w};
    ReportEventW(src->h, type, 0, id, NULL, 1, 0, strings, NULL);
    free(w);
}

void lsvc_win32_eventlog_open(int n, char **names)
{
    g_sources = calloc((size_t)n, sizeof *g_sources);
    if (!g_sources || n < 1)
        return;
    for (int i = 0; i < n; i++) {
        wchar_t *w = lsvc_wide(names[i]);
        g_sources[i].name = strdup(names[i]);
        g_sources[i].h = w ? RegisterEventSourceW(NULL, w) : NULL;
        free(w);
    }
    g_nsources = n;
    lsvc_log_add_sink(sink, LSVC_LOG_NOTICE, true);
}
