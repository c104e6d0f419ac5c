/*
 * win32_eval.c - luasvc eval NAME CHUNK and luasvc attach NAME on
 * Windows: each chunk a request on the service's console pipe
 * (win32_pipe.c, \\.\pipe\luasvc-NAME), its frames printed as they
 * come: what the chunk printed and returned to stdout, its error to
 * stderr. attach reads its chunks as attach.c does; the service's log
 * lines are not streamed here (POSIX's LOG). The luasvc client process,
 * main thread.
 */
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "win32.h"

/* The pipe of service name, or INVALID_HANDLE_VALUE (said why). */
static HANDLE open_pipe(const char *name)
{
    char path[200];
    snprintf(path, sizeof path, "\\\\.\\pipe\\luasvc-%s", name);
    wchar_t *w = lsvc_wide(path);
    HANDLE h = INVALID_HANDLE_VALUE;
    for (int attempt = 0; w && attempt < 50; attempt++) {
        h = CreateFileW(w, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (h != INVALID_HANDLE_VALUE || GetLastError() != ERROR_PIPE_BUSY)
            break;
        WaitNamedPipeW(w, 100); /* every instance busy: the listener makes another */
    }
    DWORD err = GetLastError();
    free(w);
    if (h != INVALID_HANDLE_VALUE)
        return h;
    if (err == ERROR_FILE_NOT_FOUND)
        fprintf(stderr, "luasvc: service '%s' is not running (no console pipe %s): error %d: %s\n",
                name, path, LSVC_ERROR_SERVICE_NOT_ACTIVE,
                lsvc_win32_message(LSVC_ERROR_SERVICE_NOT_ACTIVE));
    else
        lsvc_win32_fail_code(path, err);
    return INVALID_HANDLE_VALUE;
}

/* Print the whole frames at the front of b; returns how many bytes they
 * took. *done: the end frame's status (or 1 for a refusal). */
static size_t take(const char *b, size_t len, int *done)
{
    size_t off = 0;
    while (*done < 0 && off < len) {
        const char *p = b + off, *nl = memchr(p, '\n', len - off);
        if (!nl)
            break;
        if (len - off >= 4 && memcmp(p, "ERR ", 4) == 0) {
            fprintf(stderr, "luasvc: refused: %.*s\n", (int)(nl - p - 4), p + 4);
            *done = 1;
            return len;
        }
        char *end;
        unsigned long long n = strtoull(p + 2, &end, 10);
        if (p[1] != ' ' || end != nl) {
            fprintf(stderr, "luasvc: malformed answer\n");
            *done = 1;
            return len;
        }
        size_t head = (size_t)(nl - p) + 1;
        if (len - off - head < n)
            break;
        const char *data = p + head;
        if (p[0] == LSVC_CON_DONE)
            *done = n == 1 && data[0] == '0' ? 0 : 1;
        else
            fwrite(data, 1, (size_t)n, p[0] == LSVC_CON_ERROR ? stderr : stdout);
        fflush(stdout);
        off += head + (size_t)n;
    }
    return off;
}

static int eval_chunk(const char *name, const char *chunk, size_t clen)
{
    HANDLE h = open_pipe(name);
    if (h == INVALID_HANDLE_VALUE)
        return 1;
    char head[200];
    int hl = snprintf(head, sizeof head, "EVAL %zu %s\n", clen, name);
    DWORD w;
    bool sent = WriteFile(h, head, (DWORD)hl, &w, NULL) &&
                (!clen || WriteFile(h, chunk, (DWORD)clen, &w, NULL));
    (void)sent; /* refused before it read all: its reply tells */
    size_t cap = 65536, len = 0;
    char *b = malloc(cap);
    int done = -1;
    while (b && done < 0) {
        if (cap - len < 16384) {
            char *nb = realloc(b, cap * 2);
            if (!nb)
                break;
            b = nb;
            cap *= 2;
        }
        DWORD r = 0;
        if (!ReadFile(h, b + len, (DWORD)(cap - len), &r, NULL) || !r)
            break;
        len += r;
        size_t used = take(b, len, &done);
        memmove(b, b + used, len - used);
        len -= used;
    }
    free(b);
    CloseHandle(h);
    if (done < 0) {
        fprintf(stderr, "luasvc: service '%s' closed the console without an answer\n", name);
        return 1;
    }
    return done;
}

int lsvc_win32_eval(const char *name, const char *chunk)
{
    if (!lsvc_name_valid(name)) {
        fprintf(stderr, "luasvc: invalid service name '%s'\n", name);
        return 2;
    }
    return eval_chunk(name, chunk, strlen(chunk));
}

static bool read_line(void *ud, char **line, size_t *cap, const char *prompt)
{
    (void)ud;
    (void)prompt;
    return lsvc_read_line(stdin, line, cap);
}

static int eval_ud(void *ud, const char *chunk, size_t len)
{
    return eval_chunk(ud, chunk, len);
}

int lsvc_win32_attach(const char *name)
{
    if (!lsvc_name_valid(name)) {
        fprintf(stderr, "luasvc: invalid service name '%s'\n", name);
        return 2;
    }
    lsvc_attach_io io = {.read_line = read_line, .eval = eval_ud, .ud = (void *)name,
                         .tty = _isatty(0) && _isatty(1)};
    return lsvc_attach_run(name, &io);
}
