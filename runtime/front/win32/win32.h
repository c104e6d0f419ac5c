/*
 * win32.h - declarations shared by the Windows front ends: the console host,
 * the SCM service host, the SCM client commands, and the UTF-8/UTF-16
 * conversions at the Win32 boundary.
 */
#ifndef LUASVC_WIN32_H
#define LUASVC_WIN32_H

#include <stdbool.h>
#include <stdint.h>
#include <wchar.h>
#include <windows.h>

#include "../frontend.h"
#include "../../primitives/win32_prim.h" /* lsvc_wide, lsvc_utf8 */

/* ---- win32_scm.c: the process the SCM starts (main thread) ---- */
/* argv: NAME SCRIPT [NAME SCRIPT]... as written by `luasvc install`. */
int lsvc_win32_service_main(int argc, char **argv);

/* ---- win32_eventlog.c: event sources and the event-log sink ---- */
/* Register / remove the event source of service NAME (client, main
 * thread). Return a Win32 code; removing a missing source is success. */
uint32_t lsvc_win32_eventlog_register(const char *name, const wchar_t *exe);
uint32_t lsvc_win32_eventlog_unregister(const char *name);
/* Service process, main thread, before the service threads start: open the
 * sources of the hosted services and send log lines at NOTICE or more
 * severe to them. */
void lsvc_win32_eventlog_open(int n, char **names);

/* ---- win32_pipe.c: the console's pipes of a host (its own threads) ---- */
typedef struct lsvc_pipe lsvc_pipe;
/* Once the scripts have loaded (their names known): a pipe per service.
 * NULL: none (logged). */
lsvc_pipe *lsvc_win32_pipe_start(lsvc_host *h);
void lsvc_win32_pipe_stop(lsvc_pipe *p); /* NULL: nothing */

/* ---- the client commands (the luasvc client process, main thread) ---- */
/* win32_eval.c: luasvc eval NAME CHUNK over the service's console pipe */
int lsvc_win32_eval(const char *name, const char *chunk);
int lsvc_win32_attach(const char *name); /* the same, a chunk at a time */
/* win32_client.c: which verb goes where; -1 for a verb it does not know. */
int lsvc_win32_client(const char *cmd, int argc, char **argv);
/* win32_svcapi.c, the families' common kit (see the file), calling none of
 * them. The Win32 error's text, UTF-8, without the trailing newline. */
void lsvc_win32_error_text(uint32_t code, char *buf, size_t len);
/* Errors printed as "luasvc: WHAT: error N: text", each returning 1 */
int lsvc_win32_fail_code(const char *what, DWORD err);
int lsvc_win32_fail(const char *what);       /* GetLastError() */
SC_HANDLE lsvc_win32_open_scm(DWORD access); /* NULL: printed */
SC_HANDLE lsvc_win32_open_service(SC_HANDLE scm, const char *name, DWORD access); /* same */
bool lsvc_win32_query(SC_HANDLE h, SERVICE_STATUS_PROCESS *ss);
const char *lsvc_win32_state_name(DWORD s); /* "UNKNOWN" for none */
void lsvc_win32_print_exit(const char *name, const SERVICE_STATUS_PROCESS *ss);
/* timeout_ms: 0 for none (the SCM's checkpoint rule only) */
int lsvc_win32_wait_state(SC_HANDLE h, const char *name, DWORD target, uint64_t timeout_ms,
                          SERVICE_STATUS_PROCESS *ss);
/* win32_install.c */
int lsvc_win32_install(int argc, char **argv);
int lsvc_win32_uninstall(const char *name);
/* win32_control.c */
/* start and the controls; timeout_ms: --timeout, 0 for none */
int lsvc_win32_start(const char *name, int argc, char **argv, uint64_t timeout_ms);
int lsvc_win32_control(const char *name, DWORD code, uint64_t timeout_ms);
/* win32_status.c */
int lsvc_win32_status(const char *name, bool json);

#endif
