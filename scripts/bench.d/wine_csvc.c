/*
 * wine_csvc.c - the floor of the bench's Wine section: a minimal
 * hand-written Windows service in C, doing what luasvc's service path does
 * for the measured controls and nothing else. StartServiceCtrlDispatcherW;
 * ServiceMain registers HandlerEx and reports START_PENDING, then RUNNING;
 * HandlerEx accepts STOP (STOP_PENDING at once, then STOPPED from
 * ServiceMain), re-reports the status on INTERROGATE (as luasvc does) and
 * accepts the user codes 128-255. Cross-compiled with mingw-w64 by
 * scripts/bench:  wine_csvc.exe NAME
 */
#include <windows.h>

static SERVICE_STATUS_HANDLE g_handle;
static SERVICE_STATUS g_status;
static CRITICAL_SECTION g_mu;
static HANDLE g_stop;

static void report(DWORD state)
{
    EnterCriticalSection(&g_mu);
    if (state)
        g_status.dwCurrentState = state;
    g_status.dwControlsAccepted = g_status.dwCurrentState == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP : 0;
    SetServiceStatus(g_handle, &g_status);
    LeaveCriticalSection(&g_mu);
}

static DWORD WINAPI handler(DWORD control, DWORD type, LPVOID data, LPVOID ctx)
{
    (void)type, (void)data, (void)ctx;
    if (control == SERVICE_CONTROL_STOP) {
        report(SERVICE_STOP_PENDING);
        SetEvent(g_stop);
        return NO_ERROR;
    }
    if (control == SERVICE_CONTROL_INTERROGATE) {
        report(0);
        return NO_ERROR;
    }
    if (control >= 128 && control <= 255)
        return NO_ERROR;
    return ERROR_CALL_NOT_IMPLEMENTED;
}

static void WINAPI service_main(DWORD argc, LPWSTR *argv)
{
    (void)argc;
    g_handle = RegisterServiceCtrlHandlerExW(argv[0], handler, NULL);
    if (!g_handle)
        return;
    g_status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    g_status.dwWaitHint = 30000;
    report(SERVICE_START_PENDING);
    g_status.dwWaitHint = 0;
    report(SERVICE_RUNNING);
    WaitForSingleObject(g_stop, INFINITE);
    report(SERVICE_STOPPED);
}

int wmain(int argc, wchar_t **argv)
{
    static SERVICE_TABLE_ENTRYW table[2];
    if (argc < 2)
        return 2;
    InitializeCriticalSection(&g_mu);
    g_stop = CreateEventW(NULL, TRUE, FALSE, NULL);
    table[0].lpServiceName = argv[1];
    table[0].lpServiceProc = service_main;
    return StartServiceCtrlDispatcherW(table) ? 0 : 1;
}
