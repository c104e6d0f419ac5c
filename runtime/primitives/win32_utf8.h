/*
 * win32_utf8.h - UTF-8 file names for the C library calls Lua makes.
 * Force-included (-include) into the Lua sources of the Windows build: Lua
 * strings are UTF-8, and msvcrt's narrow calls would read them in the ANSI
 * code page, so fopen, freopen, remove and rename are redirected to
 * win32_utf8.c, which converts to UTF-16 and calls the wide functions.
 * Any thread.
 */
#ifndef LUASVC_WIN32_UTF8_H
#define LUASVC_WIN32_UTF8_H

#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

/* Any thread: a malloc'd copy; NULL if s (w) is not valid UTF-8 (UTF-16). */
wchar_t *lsvc_wide(const char *s);
char *lsvc_utf8(const wchar_t *w);

FILE *lsvc_u8_fopen(const char *path, const char *mode);
FILE *lsvc_u8_freopen(const char *path, const char *mode, FILE *f);
int lsvc_u8_remove(const char *path);
int lsvc_u8_rename(const char *from, const char *to);

#define fopen lsvc_u8_fopen
#define freopen lsvc_u8_freopen
#define remove lsvc_u8_remove
#define rename lsvc_u8_rename

#endif
