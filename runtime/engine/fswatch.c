/*
 * fswatch.c - tells a worker that one of its watched files may have
 * changed, so an idle watched service does not wake up to look.
 *
 * On Linux one thread per process waits on an inotify descriptor that
 * watches the directories of every service's watched files (directories,
 * so that saves by rename are seen too). An event naming a watched file
 * raises the service's `fs_kicked` flag and wakes its worker, which then
 * checks its files with stat() as a timed poll would (reload.c).
 *
 * The events also say whether what the worker saw is a whole save: each
 * watched file keeps what its last event proved (fs_state). A rename into
 * place (IN_MOVED_TO) or the close of a writer (IN_CLOSE_WRITE) ends a
 * save; a write or truncation (IN_MODIFY) means a writer is at work until
 * its close; anything else (IN_ATTRIB alone, a creation, a deletion, a
 * lost event) proves nothing. The worker asks after each look
 * (lsvc_fswatch_take): the events that made what it saw were queued by the
 * kernel in the system calls themselves, before its look, so reading the
 * queue then leaves none of them out. A "complete" answer loads at once,
 * a "writing" one holds the reload until the close (at most
 * LSVC_FSWATCH_HOLD_MS after the last write: a writer that never closes,
 * or truncate(2), then falls back on the settle rule), anything else
 * keeps the loader's settle rule, as the polling path does. Elsewhere, or
 * when inotify cannot be had (no more watches, ...), lsvc_fswatch_set
 * returns false and the worker polls on its timer (--watch-interval).
 *
 * Any thread; the table is guarded by its mutex. The thread never touches
 * a Lua state.
 */
#include <stdlib.h>
#include <string.h>

#include "private.h"

#ifdef __linux__

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the events since the worker's last look prove of a file. */
typedef enum fs_state {
    FS_NONE,     /* no event */
    FS_COMPLETE, /* the last was the end of a save: a close after writing, a rename in */
    FS_WRITING,  /* the last was a write: a writer is at work */
    FS_UNSURE,   /* created, deleted, moved away, attributes only, events lost */
} fs_state;

/* One watched file of one service: the inotify watch of its directory and
 * its base name. Several entries may share a wd (inotify gives the same wd
 * for the same directory). */
typedef struct entry {
    int wd;
    lsvc_service *svc;
    char *base;
    fs_state state;
    uint64_t written_ns; /* FS_WRITING: when the last write was told */
    bool old;            /* lsvc_fswatch_set: the list being replaced */
} entry;

static struct {
    pthread_mutex_t mu;
    int fd, stop_fd; /* inotify, eventfd; -1 before the first use */
    bool failed;     /* inotify could not be had: every service polls */
    pthread_t thread;
    entry *v;
    size_t n, cap;
} W = {PTHREAD_MUTEX_INITIALIZER, -1, -1, false, 0, NULL, 0, 0};

#define MASK                                                                                       \
    (IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM |              \
     IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)

static void kick(lsvc_service *svc) { lsvc_service_kick_fs(svc); }

/* Under W.mu: what an event proves of a file (see fs_state). */
static void note(entry *e, uint32_t mask, uint64_t now)
{
    if (mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_CREATE | IN_DELETE |
                IN_MOVED_FROM)) {
        e->state = FS_UNSURE;
    } else if (mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
        e->state = FS_COMPLETE;
    } else if (mask & IN_MODIFY) {
        e->state = FS_WRITING;
        e->written_ns = now;
    } else if (e->state == FS_NONE) { /* IN_ATTRIB: after a save, part of it */
        e->state = FS_UNSURE;
    }
}

/* Under W.mu: read up to `want` bytes of queued events (whole events:
 * what a read gives), note and kick. Both the thread and a worker's
 * lsvc_fswatch_take read here, under the lock, so an event read is always
 * noted before anyone asks. Bounded, so that a directory whose other files
 * change all the time cannot keep the lock. */
static void take_events(size_t want)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t len;
    for (size_t got = 0; got < want && (len = read(W.fd, buf, sizeof buf)) > 0;
         got += (size_t)len) {
        uint64_t now = lsvc_now_ns();
        for (char *at = buf; at < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)at;
            at += sizeof *ev + ev->len;
            for (size_t i = 0; i < W.n; i++) {
                entry *e = &W.v[i];
                /* queue overflow: anything may have changed; the directory
                 * itself went: its files did */
                bool all = ev->mask & IN_Q_OVERFLOW;
                bool dir = ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF);
                if (all ||
                    (e->wd == ev->wd && (dir || (ev->len && strcmp(ev->name, e->base) == 0)))) {
                    note(e, ev->mask, now);
                    kick(e->svc);
                }
            }
        }
    }
}

static void *watch_main(void *arg)
{
    (void)arg;
    struct pollfd p[2] = {{.fd = W.fd, .events = POLLIN}, {.fd = W.stop_fd, .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        pthread_mutex_lock(&W.mu);
        take_events(1); /* one read, then the lock is free again */
        pthread_mutex_unlock(&W.mu);
    }
    return NULL;
}

/* Under W.mu. Start the thread at the first use. */
static bool ready(void)
{
    if (W.failed)
        return false;
    if (W.fd >= 0)
        return true;
    W.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    W.stop_fd = W.fd >= 0 ? eventfd(0, EFD_CLOEXEC) : -1;
    if (W.fd < 0 || W.stop_fd < 0 || pthread_create(&W.thread, NULL, watch_main, NULL) != 0) {
        if (W.fd >= 0)
            close(W.fd);
        if (W.stop_fd >= 0)
            close(W.stop_fd);
        W.fd = W.stop_fd = -1;
        W.failed = true;
        return false;
    }
    return true;
}

static bool wd_used(int wd)
{
    for (size_t i = 0; i < W.n; i++)
        if (W.v[i].wd == wd)
            return true;
    return false;
}

/* Under W.mu: drop svc's entries (only those marked old: only_old) and
 * the watches nobody else uses. */
static void drop(lsvc_service *svc, bool only_old)
{
    size_t k = 0;
    for (size_t i = 0; i < W.n; i++) {
        if (W.v[i].svc == svc && (W.v[i].old || !only_old)) {
            int wd = W.v[i].wd;
            free(W.v[i].base);
            W.v[i].svc = NULL;
            bool used = false;
            for (size_t j = 0; j < W.n; j++)
                if (W.v[j].svc && W.v[j].wd == wd)
                    used = true;
            if (!used)
                inotify_rm_watch(W.fd, wd);
        } else {
            W.v[k++] = W.v[i];
        }
    }
    W.n = k;
}

/* Under W.mu: watch path's directory for path's base name, for svc. */
static bool add(lsvc_service *svc, const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    if (dlen >= sizeof dir)
        return false;
    if (slash && dlen == 0) {
        strcpy(dir, "/");
    } else if (slash) {
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
    } else {
        strcpy(dir, ".");
    }
    if (W.n == W.cap) {
        size_t cap = W.cap ? W.cap * 2 : 16;
        entry *v = realloc(W.v, cap * sizeof *v);
        if (!v)
            return false;
        W.v = v;
        W.cap = cap;
    }
    int wd = inotify_add_watch(W.fd, dir, MASK);
    if (wd < 0)
        return false;
    char *base = strdup(slash ? slash + 1 : path);
    if (!base) {
        if (!wd_used(wd))
            inotify_rm_watch(W.fd, wd);
        return false;
    }
    /* what the events told of the file carries over from the list being
     * replaced (a save under way while a reload took over) */
    entry e = {wd, svc, base, FS_NONE, 0, false};
    for (size_t i = 0; i < W.n; i++)
        if (W.v[i].svc == svc && W.v[i].old && W.v[i].wd == wd && !strcmp(W.v[i].base, base)) {
            e.state = W.v[i].state;
            e.written_ns = W.v[i].written_ns;
        }
    W.v[W.n++] = e;
    return true;
}

bool lsvc_fswatch_set(lsvc_service *svc, char *const *paths, size_t n)
{
    pthread_mutex_lock(&W.mu);
    bool ok = ready();
    for (size_t i = 0; ok && i < W.n; i++)
        W.v[i].old = W.v[i].svc == svc;
    for (size_t i = 0; ok && i < n; i++) {
        ok = add(svc, paths[i]);
        /* A symlinked file or directory: its edits happen where it really
         * is, and only that directory hears of them. */
        char *real = ok ? realpath(paths[i], NULL) : NULL;
        if (real && strcmp(real, paths[i]) != 0)
            ok = add(svc, real);
        free(real);
        /* A symlinked directory on the way (a deploy's current -> release-42):
         * re-pointing it is heard in the directory that holds the link. */
        char prefix[4096];
        for (const char *at = strchr(paths[i] + 1, '/'); ok && at; at = strchr(at + 1, '/')) {
            size_t len = (size_t)(at - paths[i]);
            struct stat st;
            if (len >= sizeof prefix)
                break;
            memcpy(prefix, paths[i], len);
            prefix[len] = '\0';
            if (lstat(prefix, &st) == 0 && S_ISLNK(st.st_mode))
                ok = add(svc, prefix);
        }
    }
    if (W.fd >= 0)
        drop(svc, ok); /* the old list; all or nothing: failed, this service polls */
    pthread_mutex_unlock(&W.mu);
    /* a change between the worker's last look and now was not seen */
    if (ok)
        kick(svc);
    return ok;
}

void lsvc_fswatch_forget(lsvc_service *svc)
{
    pthread_mutex_lock(&W.mu);
    if (W.fd >= 0)
        drop(svc, false);
    pthread_mutex_unlock(&W.mu);
}

lsvc_fswatch_told lsvc_fswatch_take(lsvc_service *svc)
{
    pthread_mutex_lock(&W.mu);
    if (W.fd < 0) {
        pthread_mutex_unlock(&W.mu);
        return LSVC_FSWATCH_UNSURE;
    }
    /* what the kernel queued up to now (later events are for a later look) */
    int queued = 0;
    if (ioctl(W.fd, FIONREAD, &queued) != 0)
        queued = 1 << 20;
    take_events((size_t)queued);
    uint64_t now = lsvc_now_ns();
    bool complete = false, writing = false, unsure = false;
    for (size_t i = 0; i < W.n; i++) {
        entry *e = &W.v[i];
        if (e->svc != svc)
            continue;
        if (e->state == FS_WRITING && now - e->written_ns >= LSVC_FSWATCH_HOLD_MS * 1000000ull)
            e->state = FS_UNSURE; /* no close came: the settle rule decides */
        complete |= e->state == FS_COMPLETE;
        writing |= e->state == FS_WRITING;
        unsure |= e->state == FS_UNSURE;
    }
    /* a writer at work: it stays so until its close; else the answer is
     * given and the next look hears only of later events */
    for (size_t i = 0; !writing && i < W.n; i++)
        if (W.v[i].svc == svc)
            W.v[i].state = FS_NONE;
    pthread_mutex_unlock(&W.mu);
    return writing               ? LSVC_FSWATCH_WRITING
           : complete && !unsure ? LSVC_FSWATCH_COMPLETE
                                 : LSVC_FSWATCH_UNSURE;
}

void lsvc_fswatch_shutdown(void)
{
    pthread_mutex_lock(&W.mu);
    bool started = W.fd >= 0;
    pthread_mutex_unlock(&W.mu);
    if (!started)
        return;
    uint64_t one = 1;
    if (write(W.stop_fd, &one, sizeof one) < 0) {
        /* an eventfd write of 1 cannot fail short of a bug */
    }
    pthread_join(W.thread, NULL);
    pthread_mutex_lock(&W.mu);
    for (size_t i = 0; i < W.n; i++)
        free(W.v[i].base);
    free(W.v);
    W.v = NULL;
    W.n = W.cap = 0;
    close(W.fd);
    close(W.stop_fd);
    W.fd = W.stop_fd = -1;
    pthread_mutex_unlock(&W.mu);
}

#else /* no change notification: the workers poll on their timers */

bool lsvc_fswatch_set(lsvc_service *svc, char *const *paths, size_t n)
{
    (void)svc;
    (void)paths;
    (void)n;
    return false;
}

void lsvc_fswatch_forget(lsvc_service *svc) { (void)svc; }

lsvc_fswatch_told lsvc_fswatch_take(lsvc_service *svc)
{
    (void)svc;
    return LSVC_FSWATCH_UNSURE;
}

void lsvc_fswatch_shutdown(void) {}

#endif
