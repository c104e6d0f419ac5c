/*
 * win32_mailslot.c - mailslots on Windows: the real thing,
 * \\.\mailslot\NAME (CreateMailslotW, CreateFileW, WriteFile, ReadFile).
 *
 * Names are UTF-8 here and UTF-16 at the API. The slot's largest message is
 * LSVC_SLOT_MAX, as on POSIX; its queue is the system's (unbounded by
 * count), so a write is never "full". A write with no reader fails at once:
 * CreateFileW gives ERROR_FILE_NOT_FOUND. The writer opens the slot for
 * each message, so a reader that went away is noticed and one that came
 * back is found.
 * Reads wait with the slot's read timeout (SetMailslotInfo).
 * Any thread; one reader or writer is used by one thread at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "primitives.h"
#include "win32_utf8.h"

struct lsvc_slot {
    HANDLE h;
};

struct lsvc_slot_writer {
    wchar_t *path;
    char name[96];
};

/* The Win32 error's text, UTF-8, without the trailing newline. */
static void error_text(DWORD code, char *buf, size_t len)
{
    wchar_t w[512];
    DWORD n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code,
                             0, w, sizeof w / sizeof w[0], NULL);
    while (n && (w[n - 1] == L'\n' || w[n - 1] == L'\r' || w[n - 1] == L' '))
        w[--n] = 0;
    char *u = n ? lsvc_utf8(w) : NULL;
    if (u)
        snprintf(buf, len, "%s (error %lu)", u, (unsigned long)code);
    else
        snprintf(buf, len, "error %lu", (unsigned long)code);
    free(u);
}

/* \\.\mailslot\NAME, malloc'd UTF-16; NULL with err set. */
static wchar_t *slot_path(const char *name, char *err, size_t errlen)
{
    if (!lsvc_name_valid(name)) {
        snprintf(err, errlen,
                 "invalid slot name '%s' (1-80 characters, no '/', '\\' or "
                 "control characters)",
                 name);
        return NULL;
    }
    char path[128];
    snprintf(path, sizeof path, "\\\\.\\mailslot\\%s", name);
    wchar_t *w = lsvc_wide(path);
    if (!w)
        snprintf(err, errlen, "slot name '%s' is not valid UTF-8", name);
    return w;
}

lsvc_slot *lsvc_slot_create(const char *name, const char *group, lsvc_slot_rc *rc, char *err,
                            size_t errlen)
{
    *rc = LSVC_SLOT_ERROR;
    (void)group; /* POSIX only: a mailslot's writers are whoever can open it */
    wchar_t *path = slot_path(name, err, errlen);
    if (!path)
        return NULL;
    HANDLE h = CreateMailslotW(path, LSVC_SLOT_MAX, 0, NULL);
    DWORD e = GetLastError();
    free(path);
    if (h == INVALID_HANDLE_VALUE) {
        char text[300];
        error_text(e, text, sizeof text);
        if (e == ERROR_ALREADY_EXISTS) {
            *rc = LSVC_SLOT_EXISTS;
            snprintf(err, errlen, "slot %s already has a reader", name);
        } else {
            *rc = e == ERROR_ACCESS_DENIED ? LSVC_SLOT_DENIED : LSVC_SLOT_ERROR;
            snprintf(err, errlen, "cannot create slot %s: %s", name, text);
        }
        return NULL;
    }
    lsvc_slot *s = calloc(1, sizeof *s);
    if (!s) {
        CloseHandle(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->h = h;
    *rc = LSVC_SLOT_OK;
    return s;
}

lsvc_slot_rc lsvc_slot_read(lsvc_slot *s, char *buf, size_t cap, size_t *len, uint32_t timeout_ms,
                            char *err, size_t errlen)
{
    if (!SetMailslotInfo(s->h, timeout_ms)) {
        char text[300];
        error_text(GetLastError(), text, sizeof text);
        snprintf(err, errlen, "SetMailslotInfo: %s", text);
        return LSVC_SLOT_ERROR;
    }
    DWORD n = 0;
    if (ReadFile(s->h, buf, (DWORD)cap, &n, NULL)) {
        *len = n;
        return LSVC_SLOT_OK;
    }
    DWORD e = GetLastError();
    if (e == ERROR_SEM_TIMEOUT)
        return LSVC_SLOT_TIMEOUT;
    if (e == ERROR_BROKEN_PIPE) { /* Wine 8's answer for a zero-length message */
        *len = 0;
        return LSVC_SLOT_OK;
    }
    char text[300];
    error_text(e, text, sizeof text);
    snprintf(err, errlen, "ReadFile: %s", text);
    return LSVC_SLOT_ERROR;
}

int lsvc_slot_wait_fd(lsvc_slot *s)
{
    (void)s;
    return -1; /* a mailslot is no socket a loop can wait on: read in slices */
}

void lsvc_slot_close(lsvc_slot *s)
{
    if (!s)
        return;
    CloseHandle(s->h);
    free(s);
}

lsvc_slot_writer *lsvc_slot_open(const char *name, char *err, size_t errlen)
{
    wchar_t *path = slot_path(name, err, errlen);
    if (!path)
        return NULL;
    lsvc_slot_writer *w = calloc(1, sizeof *w);
    if (!w) {
        free(path);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->path = path;
    snprintf(w->name, sizeof w->name, "%s", name);
    return w;
}

static lsvc_slot_rc writer_error(lsvc_slot_writer *w, DWORD e, char *err, size_t errlen)
{
    if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND) {
        snprintf(err, errlen, "no reader for slot %s", w->name);
        return LSVC_SLOT_NOREADER;
    }
    char text[300];
    error_text(e, text, sizeof text);
    snprintf(err, errlen, "slot %s: %s", w->name, text);
    return e == ERROR_ACCESS_DENIED ? LSVC_SLOT_DENIED : LSVC_SLOT_ERROR;
}

lsvc_slot_rc lsvc_slot_write(lsvc_slot_writer *w, const void *msg, size_t len, char *err,
                             size_t errlen)
{
    if (len > LSVC_SLOT_MAX) {
        snprintf(err, errlen, "message of %zu bytes exceeds the %d-byte slot limit", len,
                 LSVC_SLOT_MAX);
        return LSVC_SLOT_TOOLARGE;
    }
    /* Opened for each message, not kept: a kept handle keeps a mailslot
     * alive after its reader closed it (Wine 8: writes to it still succeed,
     * into nothing, and a new reader cannot take the name). */
    HANDLE h = CreateFileW(w->path, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                           OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return writer_error(w, GetLastError(), err, errlen);
    DWORD n = 0;
    BOOL ok = WriteFile(h, msg, (DWORD)len, &n, NULL) && n == len;
    DWORD e = GetLastError();
    CloseHandle(h);
    return ok ? LSVC_SLOT_OK : writer_error(w, e, err, errlen);
}

void lsvc_slot_writer_close(lsvc_slot_writer *w)
{
    if (!w)
        return;
    free(w->path);
    free(w);
}
