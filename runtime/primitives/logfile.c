/*
 * logfile.c - a log file with rotation: `--log-file PATH`, rotated by
 * rename when a line would take it past `--log-max-size` (PATH -> PATH.1
 * -> PATH.2 ... keeping `--log-keep` old files), and reopened on request
 * (SIGHUP, for an external logrotate that moved the file away).
 *
 * Each line is one write() on a descriptor opened with O_APPEND, under
 * the file's mutex, so lines from several threads never interleave and a
 * line is never split across two files. A line that cannot be written
 * (disk full, the file cannot be reopened) is counted; the count is
 * written, as a line of its own, before the next line that can be.
 *
 * Any thread. lsvc_logfile_reopen only sets a flag: a signal handler may
 * call it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "primitives.h"

#ifdef _WIN32
#include <io.h>
#include <windows.h>
#include "win32_utf8.h"
#endif

struct lsvc_logfile {
    pthread_mutex_t mu;
    char *path;
    uint64_t max_size; /* 0: never rotate */
    unsigned keep;     /* old files kept: PATH.1 .. PATH.keep */
    int fd;            /* -1 while it cannot be opened */
    uint64_t size;     /* bytes in the current file */
    uint64_t dropped;  /* lines not written since the last one that was */
    atomic_bool reopen;
};

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif
#ifndef O_BINARY
#define O_BINARY 0
#endif

static int open_append(const char *path)
{
#ifdef _WIN32
    wchar_t *w = lsvc_wide(path);
    int fd = w ? _wopen(w, _O_WRONLY | _O_CREAT | _O_APPEND | _O_BINARY, _S_IREAD | _S_IWRITE) : -1;
    free(w);
    return fd;
#else
    /* O_NOFOLLOW: a symlink planted at the log's name is never followed;
     * O_NONBLOCK, then fstat: a FIFO (or a device) planted there between a
     * rotation and its reopen is refused at once instead of blocking the
     * open with the log's mutex held */
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_BINARY,
                  0640);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL; /* "not a regular file" */
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
#endif
}

static int remove_file(const char *path)
{
#ifdef _WIN32
    return lsvc_u8_remove(path);
#else
    return remove(path);
#endif
}

static int rename_over(const char *from, const char *to)
{
#ifdef _WIN32
    lsvc_u8_remove(to); /* _wrename does not replace */
    return lsvc_u8_rename(from, to);
#else
    return rename(from, to);
#endif
}

/* Under mu: (re)open the file and learn its size. */
static void open_file(lsvc_logfile *lf)
{
    if (lf->fd >= 0)
        close(lf->fd);
    lf->fd = open_append(lf->path);
    lf->size = 0;
    if (lf->fd >= 0) {
        off_t end = lseek(lf->fd, 0, SEEK_END); /* appending: the file's size */
        if (end > 0)
            lf->size = (uint64_t)end;
    }
}

/* Under mu: PATH.(keep-1) -> PATH.keep, ..., PATH -> PATH.1, a new PATH. */
static void rotate(lsvc_logfile *lf)
{
    size_t n = strlen(lf->path) + 24;
    char *from = malloc(n), *to = malloc(n);
    if (from && to) {
        if (lf->fd >= 0)
            close(lf->fd); /* Windows renames no open file */
        lf->fd = -1;
        if (lf->keep == 0) {
            remove_file(lf->path);
        } else {
            for (unsigned i = lf->keep; i > 1; i--) {
                snprintf(from, n, "%s.%u", lf->path, i - 1);
                snprintf(to, n, "%s.%u", lf->path, i);
                rename_over(from, to); /* a missing one is no error */
            }
            snprintf(to, n, "%s.1", lf->path);
            rename_over(lf->path, to);
        }
    }
    free(from);
    free(to);
    open_file(lf);
}

lsvc_logfile *lsvc_logfile_open(const char *path, uint64_t max_size, unsigned keep, char *err,
                                size_t errlen)
{
    lsvc_logfile *lf = calloc(1, sizeof *lf);
    if (!lf || !(lf->path = strdup(path))) {
        free(lf);
        snprintf(err, errlen, "--log-file %s: out of memory", path);
        return NULL;
    }
    pthread_mutex_init(&lf->mu, NULL);
    lf->max_size = max_size;
    lf->keep = keep;
    lf->fd = -1;
    atomic_init(&lf->reopen, false);
    open_file(lf);
    if (lf->fd < 0) {
        snprintf(err, errlen, "--log-file %s: %s", path,
                 errno == EINVAL ? "not a regular file (a FIFO, a device or a directory)"
                                 : strerror(errno));
        lsvc_logfile_close(lf);
        return NULL;
    }
    return lf;
}

/* Under mu: one whole line, or a count of the lost ones. */
static bool put(lsvc_logfile *lf, const char *line, size_t len)
{
    if (lf->max_size && lf->size > 0 && lf->size + len > lf->max_size)
        rotate(lf);
    if (lf->fd < 0)
        open_file(lf);
    if (lf->fd < 0)
        return false;
    ssize_t w = write(lf->fd, line, len);
    if (w > 0)
        lf->size += (uint64_t)w;
    return w == (ssize_t)len;
}

int lsvc_logfile_write(lsvc_logfile *lf, const char *line, size_t len)
{
    pthread_mutex_lock(&lf->mu);
    if (atomic_exchange(&lf->reopen, false))
        open_file(lf);
    if (lf->dropped) {
        char note[96];
        int k = snprintf(note, sizeof note, "luasvc: %llu log line(s) could not be written\n",
                         (unsigned long long)lf->dropped);
        if (k > 0 && put(lf, note, (size_t)k))
            lf->dropped = 0;
    }
    bool ok = put(lf, line, len);
    if (!ok)
        lf->dropped++;
    pthread_mutex_unlock(&lf->mu);
    return ok ? 0 : -1;
}

void lsvc_logfile_reopen(lsvc_logfile *lf)
{
    if (lf)
        atomic_store(&lf->reopen, true);
}

void lsvc_logfile_close(lsvc_logfile *lf)
{
    if (!lf)
        return;
    if (lf->fd >= 0)
        close(lf->fd);
    pthread_mutex_destroy(&lf->mu);
    free(lf->path);
    free(lf);
}

int lsvc_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    uint64_t mul = 1;
    switch (*end) {
    case '\0': break;
    case 'k':
    case 'K':
        mul = 1024;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1024 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1024ull * 1024 * 1024;
        end++;
        break;
    default: return -1;
    }
    if (*end || (v && v > UINT64_MAX / mul))
        return -1;
    *out = v * mul;
    return 0;
}
