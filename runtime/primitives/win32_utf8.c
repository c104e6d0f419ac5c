/*
 * win32_utf8.c - UTF-8 <-> UTF-16 at the Win32 boundary: the conversions
 * every Windows front end uses, and the UTF-8 file functions that
 * win32_utf8.h substitutes into the Lua sources. Any thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>

#include "win32_prim.h"

wchar_t *lsvc_wide(const char *s)
{
    if (!s)
        return NULL;
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    if (n <= 0)
        return NULL;
    wchar_t *w = malloc((size_t)n * sizeof *w);
    if (w && MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) != n) {
        free(w);
        w = NULL;
    }
    return w;
}

char *lsvc_utf8(const wchar_t *w)
{
    if (!w)
        return NULL;
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    if (n <= 0)
        return NULL;
    char *s = malloc((size_t)n);
    if (s && WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL) != n) {
        free(s);
        s = NULL;
    }
    return s;
}

/* Converts both arguments, or sets errno and returns false. */
static int wide2(const char *a, const char *b, wchar_t **wa, wchar_t **wb)
{
    *wa = lsvc_wide(a);
    *wb = lsvc_wide(b);
    if (*wa && *wb)
        return 1;
    free(*wa);
    free(*wb);
    errno = EINVAL;
    return 0;
}

FILE *lsvc_u8_fopen(const char *path, const char *mode)
{
    wchar_t *wp, *wm;
    if (!wide2(path, mode, &wp, &wm))
        return NULL;
    FILE *f = _wfopen(wp, wm);
    free(wp);
    free(wm);
    return f;
}

FILE *lsvc_u8_freopen(const char *path, const char *mode, FILE *stream)
{
    wchar_t *wp, *wm;
    if (!wide2(path, mode, &wp, &wm))
        return NULL;
    FILE *f = _wfreopen(wp, wm, stream);
    free(wp);
    free(wm);
    return f;
}

int lsvc_u8_remove(const char *path)
{
    wchar_t *wp = lsvc_wide(path);
    if (!wp) {
        errno = EINVAL;
        return -1;
    }
    /* remove() deletes empty directories too, as on POSIX. */
    int rc = _wremove(wp);
    if (rc != 0 && errno == EACCES && RemoveDirectoryW(wp))
        rc = 0;
    free(wp);
    return rc;
}

int lsvc_u8_rename(const char *from, const char *to)
{
    wchar_t *wf, *wt;
    if (!wide2(from, to, &wf, &wt))
        return -1;
    int rc = _wrename(wf, wt);
    free(wf);
    free(wt);
    return rc;
}

/* stat() for the core (win32_posix.h): UTF-8 path, owner bits only (a
 * read-only file has no write bit), times to the 100 ns (st_ctim is the
 * change time), the file index as the inode. */
int lsvc_win32_stat(const char *path, struct lsvc_stat *st)
{
    wchar_t *wp = lsvc_wide(path);
    if (!wp) {
        errno = EINVAL;
        return -1;
    }
    HANDLE h = CreateFileW(wp, FILE_READ_ATTRIBUTES,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    free(wp);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD err = GetLastError();
        errno = err == ERROR_ACCESS_DENIED ? EACCES : ENOENT;
        return -1;
    }
    BY_HANDLE_FILE_INFORMATION fi;
    FILE_BASIC_INFO bi;
    BOOL ok = GetFileInformationByHandle(h, &fi);
    BOOL basic = ok && GetFileInformationByHandleEx(h, FileBasicInfo, &bi, sizeof bi);
    CloseHandle(h);
    if (!ok) {
        errno = EIO;
        return -1;
    }
    memset(st, 0, sizeof *st);
    bool dir = fi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY;
    st->st_mode = (dir ? S_IFDIR | 0500 : S_IFREG | 0400) |
                  ((fi.dwFileAttributes & FILE_ATTRIBUTE_READONLY) ? 0 : 0200);
    st->st_size = (int64_t)(((uint64_t)fi.nFileSizeHigh << 32) | fi.nFileSizeLow);
    st->st_ino = ((uint64_t)fi.nFileIndexHigh << 32) | fi.nFileIndexLow;
    uint64_t mt =
        ((uint64_t)fi.ftLastWriteTime.dwHighDateTime << 32) | fi.ftLastWriteTime.dwLowDateTime;
    uint64_t ct = basic ? (uint64_t)bi.ChangeTime.QuadPart : mt;
    st->st_mtim.tv_sec = (time_t)(mt / 10000000u);
    st->st_mtim.tv_nsec = (long)(mt % 10000000u) * 100;
    st->st_ctim.tv_sec = (time_t)(ct / 10000000u);
    st->st_ctim.tv_nsec = (long)(ct % 10000000u) * 100;
    return 0;
}
