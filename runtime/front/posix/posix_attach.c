/*
 * posix_attach.c - the console's client: luasvc eval (one chunk, its
 * answer) and luasvc attach (a chunk at a time, as lua.c reads them: a
 * line, and more lines while the chunk is incomplete; =expr or a bare
 * expression shows its value), over the endpoint's EVAL and LOG requests
 * (proto.c). On a terminal, attach prompts and prints the service's log
 * lines as they come (a LOG stream); from a pipe it reads chunks without
 * prompts and prints only their answers. A client's main thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "posix.h"

/* A connected socket to service name's endpoint, or -1 (said why). */
static int connect_to(const char *name)
{
    char dir[256], err[512];
    struct sockaddr_un sa;
    if (!lsvc_name_valid(name)) {
        fprintf(stderr, "luasvc: invalid service name '%s'\n", name);
        return -1;
    }
    if (lsvc_runtime_dir(dir, sizeof dir, err, sizeof err) != 0 ||
        lsvc_endpoint_sock_path(dir, name, &sa, err, sizeof err) != 0) {
        fprintf(stderr, "luasvc: %s\n", err);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
        return fd;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (e == ENOENT || e == ECONNREFUSED)
        fprintf(stderr, "luasvc: service '%s' is not running (no endpoint at %s): error %d: %s\n",
                name, sa.sun_path, LSVC_ERROR_SERVICE_NOT_ACTIVE,
                lsvc_win32_message(LSVC_ERROR_SERVICE_NOT_ACTIVE));
    else
        fprintf(stderr, "luasvc: cannot reach service '%s' at %s: %s\n", name, sa.sun_path,
                strerror(e));
    return -1;
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* ---- frames --------------------------------------------------------------- */

/* What a connection has received, not yet taken as frames. */
typedef struct inbox {
    int fd;
    char *p;
    size_t len, cap;
    bool eof;
} inbox;

/* Read what is there (one recv). false: end of the stream (or an error). */
static bool inbox_fill(inbox *b)
{
    if (b->cap - b->len < 65536) {
        size_t cap = b->cap ? b->cap * 2 : 131072;
        char *p = realloc(b->p, cap);
        if (!p)
            return false;
        b->p = p;
        b->cap = cap;
    }
    ssize_t r;
    do
        r = recv(b->fd, b->p + b->len, b->cap - b->len - 1, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0) {
        b->eof = true;
        return false;
    }
    b->len += (size_t)r;
    b->p[b->len] = '\0';
    return true;
}

/* The next whole frame: 1 (tag, data, n set), 0 none yet, -1 not a frame
 * (an "ERR ..." refusal: its line in data). */
static int inbox_frame(inbox *b, char *tag, const char **data, size_t *n, size_t *used)
{
    char *nl = b->len ? memchr(b->p, '\n', b->len) : NULL;
    if (!nl)
        return 0;
    if (b->len >= 4 && memcmp(b->p, "ERR ", 4) == 0) {
        *nl = '\0';
        *data = b->p + 4;
        *used = b->len;
        return -1;
    }
    char *end;
    unsigned long long len = strtoull(b->p + 2, &end, 10);
    if (b->p[1] != ' ' || end != nl) {
        *data = "malformed answer";
        *used = b->len;
        return -1;
    }
    size_t head = (size_t)(nl - b->p) + 1;
    if (b->len - head < len)
        return 0;
    *tag = b->p[0];
    *data = b->p + head;
    *n = (size_t)len;
    *used = head + (size_t)len;
    return 1;
}

static void inbox_drop(inbox *b, size_t used)
{
    memmove(b->p, b->p + used, b->len - used);
    b->len -= used;
}

/* Take the frames there: printed; *done set by the last (its status). */
static void take_frames(inbox *b, int *done, bool tty)
{
    char tag;
    const char *data;
    size_t n, used;
    int k;
    while (*done < 0 && (k = inbox_frame(b, &tag, &data, &n, &used)) != 0) {
        if (k < 0) {
            fprintf(stderr, "luasvc: refused: %s\n", data);
            *done = 1;
        } else if (tag == LSVC_CON_ERROR) {
            fwrite(data, 1, n, stderr);
        } else if (tag == LSVC_CON_DONE) {
            *done = n == 1 && data[0] == '0' ? 0 : 1;
        } else if (tag == LSVC_CON_LOG && tty) {
            fputs("\r\033[K", stdout);
            fwrite(data, 1, n, stdout);
        } else {
            fwrite(data, 1, n, stdout);
        }
        fflush(stdout);
        inbox_drop(b, used);
    }
}

/* Send chunk to name as an EVAL; print its answer; log (a LOG stream, or
 * NULL) is printed meanwhile. 0, or 1. */
static int eval_once(const char *name, const char *chunk, size_t len, inbox *log)
{
    int fd = connect_to(name);
    if (fd < 0)
        return 1;
    char head[200];
    int h = snprintf(head, sizeof head, "EVAL %zu %s\n", len, name);
    inbox in = {.fd = fd};
    int done = -1;
    if (!send_all(fd, head, (size_t)h) || !send_all(fd, chunk, len))
        done = -2; /* refused before it read all: its reply tells */
    while (done < 0 || done == -2) {
        if (done == -2)
            done = -1;
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = log && !log->eof ? log->fd : -1, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents && inbox_fill(log)) {
            int never = -1;
            take_frames(log, &never, true);
        }
        if (p[0].revents) {
            bool more = inbox_fill(&in);
            take_frames(&in, &done, log != NULL);
            if (!more && done < 0) {
                fprintf(stderr, "luasvc: service '%s' closed the console without an answer\n",
                        name);
                done = 1;
            }
        }
    }
    free(in.p);
    close(fd);
    return done;
}

int lsvc_client_eval(const char *name, const char *chunk)
{
    return eval_once(name, chunk, strlen(chunk), NULL);
}

/* ---- attach ---------------------------------------------------------------- */

/* The log stream of name's lines (fd in log), "OK" read. false: said why. */
static bool open_log(const char *name, inbox *log)
{
    log->fd = connect_to(name);
    if (log->fd < 0)
        return false;
    char req[200];
    int n = snprintf(req, sizeof req, "LOG %s\n", name);
    if (send_all(log->fd, req, (size_t)n))
        while (!memchr(log->p ? log->p : "", '\n', log->len) && inbox_fill(log))
            ;
    if (log->len >= 3 && memcmp(log->p, "OK\n", 3) == 0) {
        inbox_drop(log, 3);
        return true;
    }
    fprintf(stderr, "luasvc: service '%s' refused the console: %.*s\n", name,
            (int)(log->len ? log->len - 1 : 0), log->p ? log->p : "");
    close(log->fd);
    return false;
}

/* The attach loop's platform half: the service's name and its log stream
 * (fd -1: none, from a pipe). */
typedef struct attach_ud {
    const char *name;
    inbox log;
    bool tty;
} attach_ud;

/* One line of stdin; on a terminal, log lines printed meanwhile (and the
 * prompt again under them). false: at its end. */
static bool read_line(void *ud, char **line, size_t *cap, const char *prompt)
{
    attach_ud *a = ud;
    while (a->tty) {
        struct pollfd p[2] = {{.fd = 0, .events = POLLIN},
                              {.fd = !a->log.eof ? a->log.fd : -1, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            return false;
        if (p[1].revents && inbox_fill(&a->log)) {
            int never = -1;
            take_frames(&a->log, &never, true);
            fputs(prompt, stdout); /* the prompt again, under the lines */
            fflush(stdout);
        }
        if (p[0].revents)
            break;
    }
    return lsvc_read_line(stdin, line, cap);
}

static int eval_chunk(void *ud, const char *chunk, size_t len)
{
    attach_ud *a = ud;
    return eval_once(a->name, chunk, len, a->tty ? &a->log : NULL);
}

int lsvc_client_attach(const char *name)
{
    attach_ud a = {.name = name, .log = {.fd = -1}, .tty = isatty(0) && isatty(1)};
    if (a.tty && !open_log(name, &a.log))
        return 1;
    /* a terminal: unbuffered, so that lines pasted at once stay the
     * terminal's until read (poll sees them); a pipe: by lines */
    setvbuf(stdin, NULL, a.tty ? _IONBF : _IOLBF, 0);
    lsvc_attach_io io = {.read_line = read_line, .eval = eval_chunk, .ud = &a, .tty = a.tty};
    int status = lsvc_attach_run(name, &io);
    free(a.log.p);
    if (a.log.fd >= 0)
        close(a.log.fd);
    return status;
}
