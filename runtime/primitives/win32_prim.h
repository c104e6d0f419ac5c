/*
 * win32_prim.h - the primitives' own Windows header: what the Windows
 * build's lowest layer provides to every layer above (UTF-8 paths at the
 * Win32 boundary, win32_utf8.c; the file-security check, win32_acl.c; the
 * POSIX file calls the core makes, win32_posix.h). The front ends' Windows
 * header (front/win32/win32.h) includes it; nothing here includes upward.
 */
#ifndef LUASVC_WIN32_PRIM_H
#define LUASVC_WIN32_PRIM_H

#include <stdbool.h>
#include <stdint.h>
#include <windows.h>

#include "win32_posix.h"
#include "win32_utf8.h" /* lsvc_wide, lsvc_utf8, the UTF-8 fopen/rename/remove */

#endif
