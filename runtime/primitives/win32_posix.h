/*
 * win32_posix.h - the few POSIX file calls the core makes, for the Windows
 * build. Force-included (-include) into the core's sources there, so the
 * core compiles unchanged until it grows Windows branches of its own:
 *   - stat() takes a UTF-8 path (via _wstat64) and fills st_mtim/st_ctim;
 *     the mode keeps the owner's bits only, because msvcrt copies them to
 *     group and others, which would read as "writable by others";
 *   - geteuid() is 0 and files are owned by 0: ownership on Windows is an
 *     ACL question, which lsvc_win32_file_problem (win32_acl.c) answers
 *     for reload.c.
 * Any thread.
 */
#ifndef LUASVC_WIN32_POSIX_H
#define LUASVC_WIN32_POSIX_H

#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef S_IWGRP
#define S_IWGRP 0020
#endif
#ifndef S_IWOTH
#define S_IWOTH 0002
#endif
#ifndef S_ISVTX
#define S_ISVTX 01000
#endif

typedef unsigned lsvc_uid_t;
#define uid_t lsvc_uid_t
static inline uid_t lsvc_geteuid(void) { return 0; }
#define geteuid lsvc_geteuid

struct lsvc_stat {
    unsigned st_mode;
    uid_t st_uid;
    int64_t st_size;
    uint64_t st_ino;
    struct timespec st_mtim, st_ctim;
};
int lsvc_win32_stat(const char *path, struct lsvc_stat *st); /* win32_utf8.c */
#define stat lsvc_stat
#define lsvc_stat(path, st) lsvc_win32_stat(path, st)
/* The security check of a script or its directory: "" when safe. */
void lsvc_win32_file_problem(const char *what, const char *path, char *buf, size_t len);

#endif
