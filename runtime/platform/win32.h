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

#include "../luasvc.h"

/* ---- win32_utf8.c (any thread) ---- */
wchar_t *lsvc_wide(const char *s);   /* malloc'd UTF-16 copy; NULL if invalid */
char *lsvc_utf8(const wchar_t *w);   /* malloc'd UTF-8 copy; NULL if invalid */

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

/* ---- win32_client.c: install and drive services through the SCM ---- */
int lsvc_win32_client(const char *cmd, int argc, char **argv); /* -1: unknown cmd */
/* The Win32 error's text, UTF-8, without the trailing newline. */
void lsvc_win32_error_text(uint32_t code, char *buf, size_t len);

#endif
