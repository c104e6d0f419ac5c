/*
 * win32_console.c - the Windows half of `luasvc run` and `luasvc check`
 * (console.c): Ctrl+C, Ctrl+Break and closing the console are STOP. There
 * is no endpoint: `luasvc stop` and the other clients speak to the SCM.
 *
 * Threads: main (start, wait, exit), the console control thread the system
 * creates for each Ctrl event (it only calls the control handler).
 */
#include <windows.h>

#include "../frontend.h"
#include "win32.h"

static lsvc_host *g_host;          /* set before the Ctrl handler is installed */
static lsvc_console_stop_fn g_stop; /* console.c's, set by os_begin */

/* On the thread the system creates for a console event: never touches Lua. */
static BOOL WINAPI ctrl_handler(DWORD ev)
{
    const char *why = ev == CTRL_C_EVENT       ? "Ctrl+C"
                      : ev == CTRL_BREAK_EVENT ? "Ctrl+Break"
                      : ev == CTRL_CLOSE_EVENT ? "console closed"
                                               : "logoff or shutdown";
    g_stop(g_host, why);
    /* After a close the process ends when this returns (the system allows
     * a few seconds): let the services stop first. */
    if (ev == CTRL_CLOSE_EVENT || ev == CTRL_LOGOFF_EVENT || ev == CTRL_SHUTDOWN_EVENT)
        lsvc_host_wait_stopped(g_host);
    return TRUE;
}

void lsvc_console_os_report(lsvc_service *svc, const lsvc_status *st)
{
    (void)svc;
    (void)st;
}

void lsvc_console_os_reloading(lsvc_service *svc, bool begin)
{
    (void)svc;
    (void)begin;
}

int lsvc_console_os_begin(lsvc_host *h, bool check_only, lsvc_console_stop_fn stop)
{
    (void)h;
    (void)check_only;
    g_stop = stop;
    return 0;
}

void lsvc_console_os_loading(lsvc_host *h, bool check_only)
{
    (void)h;
    (void)check_only;
}

static lsvc_pipe *g_pipe; /* the console's pipes (luasvc eval) */

size_t lsvc_console_os_open(lsvc_host *h, bool check_only, size_t failed)
{
    if (!check_only && !failed)
        g_pipe = lsvc_win32_pipe_start(h);
    return failed;
}

int lsvc_console_os_serve(lsvc_host *h)
{
    g_host = h;
    SetConsoleCtrlHandler(ctrl_handler, TRUE);
    return 0;
}

void lsvc_console_os_end(lsvc_host *h)
{
    (void)h;
    lsvc_win32_pipe_stop(g_pipe);
    g_pipe = NULL;
}
