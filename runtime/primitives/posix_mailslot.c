/*
 * posix_mailslot.c - mailslots on POSIX: AF_UNIX SOCK_SEQPACKET sockets.
 *
 * A slot NAME is a listening SOCK_SEQPACKET socket at RUNTIME_DIR/slots/NAME:
 * the reader owns it and accepts every writer; a writer connects and sends.
 * Seqpacket keeps message boundaries and, per writer, their order (what a
 * status channel needs), and its queue is bounded by bytes (the socket
 * buffers), not by net.unix.max_dgram_qlen, which is 10 datagrams on many
 * systems: a burst of status messages would be dropped with SOCK_DGRAM.
 * Each message goes out with a one-byte header, so an empty message is not
 * taken for the end of the connection.
 *
 * The slots directory is mode 0700 and the socket 0600, so only the
 * reader's user (and root) can post to it or take its name; with a group,
 * the socket is made 0660 and chgrp'd (the directories on the way must let
 * the group through).
 *
 * Writes never block: the writer's socket is non-blocking. No socket at the
 * path (or a stale one) fails at once with NOREADER, a reader that does not
 * keep up with FULL (EAGAIN), a message over LSVC_SLOT_MAX with TOOLARGE.
 * A reader that went away and came back is reconnected on the next write.
 * Any thread; one reader or writer is used by one thread at a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "primitives.h"

/* Room for a few 64 KiB messages in flight from one writer. */
#define SLOT_SNDBUF (4 * (LSVC_SLOT_MAX + 4096))
#define SLOT_BACKLOG 64
#define HDR 'M' /* the one-byte header of every message */

struct lsvc_slot {
    int fd;                        /* listening */
    int *conns;                    /* accepted writers */
    size_t nconns, capconns, next; /* next: where the round robin goes on */
    unsigned since_accept;         /* messages taken since new writers were looked for */
    struct sockaddr_un sa;
    ino_t ino; /* of the socket file, to remove only our own */
    dev_t dev;
    int ep; /* lsvc_slot_wait_fd: an epoll of fd and conns, -1 until asked for */
};

struct lsvc_slot_writer {
    int fd; /* connected, or -1 */
    char name[96];
    struct sockaddr_un sa;
};

/* The runtime directory, for the slots and the control endpoint. */
int lsvc_runtime_dir(char *buf, size_t len, char *err, size_t errlen)
{
    const char *env = getenv("LUASVC_RUNTIME_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (env && *env)
        n = snprintf(buf, len, "%s", env);
    else if (xdg && *xdg)
        n = snprintf(buf, len, "%s/luasvc", xdg);
    else
        n = snprintf(buf, len, "/run/luasvc");
    if (n < 0 || (size_t)n >= len) {
        snprintf(err, errlen, "runtime directory path too long");
        return -1;
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create runtime directory %s: %s", buf, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(buf, &st) != 0) {
        snprintf(err, errlen, "cannot use runtime directory %s: %s", buf, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "runtime directory %s is not a directory", buf);
        return -1;
    }
    return 0;
}

/* RUNTIME_DIR/slots (created 0700 when missing) and the socket path. */
static int slot_path(const char *name, bool create_dir, struct sockaddr_un *sa, char *err,
                     size_t errlen)
{
    if (!lsvc_name_valid(name)) {
        snprintf(err, errlen,
                 "invalid slot name '%s' (1-80 characters, no '/', '\\' or "
                 "control characters)",
                 name);
        return -1;
    }
    char dir[200];
    if (lsvc_runtime_dir(dir, sizeof dir, err, errlen) != 0)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path, sizeof sa->sun_path, "%s/slots/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof sa->sun_path) {
        snprintf(err, errlen,
                 "slot path %s/slots/%s is longer than %zu bytes; use a shorter "
                 "LUASVC_RUNTIME_DIR or slot name",
                 dir, name, sizeof sa->sun_path - 1);
        return -1;
    }
    if (create_dir) {
        char sdir[sizeof dir + 8];
        snprintf(sdir, sizeof sdir, "%s/slots", dir);
        if (mkdir(sdir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", sdir, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static lsvc_slot_rc errno_rc(int e)
{
    if (e == EACCES || e == EPERM)
        return LSVC_SLOT_DENIED;
    return LSVC_SLOT_ERROR;
}

/* Bind fd to sa and listen: 0, or errno (then *rc says so, or EXISTS when
 * a live reader holds the name). A socket left by a reader that crashed
 * is replaced: a connection to a dead socket is refused. */
static int slot_bind(int fd, const struct sockaddr_un *sa, const char *name, lsvc_slot_rc *rc,
                     char *err, size_t errlen)
{
    mode_t old = umask(077);
    int b = bind(fd, (const struct sockaddr *)sa, sizeof *sa);
    int e = errno;
    if (b != 0 && e == EADDRINUSE) {
        int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int alive = probe >= 0 && connect(probe, (const struct sockaddr *)sa, sizeof *sa) == 0;
        if (probe >= 0)
            close(probe);
        if (alive) {
            umask(old);
            *rc = LSVC_SLOT_EXISTS;
            snprintf(err, errlen, "slot %s already has a reader (%s)", name, sa->sun_path);
            return EADDRINUSE;
        }
        unlink(sa->sun_path);
        b = bind(fd, (const struct sockaddr *)sa, sizeof *sa);
        e = errno;
    }
    umask(old);
    if (b == 0 && listen(fd, SLOT_BACKLOG) != 0) {
        b = -1;
        e = errno;
        unlink(sa->sun_path);
    }
    if (b != 0) {
        *rc = errno_rc(e);
        snprintf(err, errlen, "cannot create slot %s (%s): %s", name, sa->sun_path, strerror(e));
        return e;
    }
    return 0;
}

/* The bound socket's mode: owner-only, or open to group gid for writing
 * (a socket file gets 0777 less the umask, 0700; writers need w). 0, or -1
 * with the socket unlinked and the error in err. */
static int slot_set_mode(const struct sockaddr_un *sa, const char *name, const char *group,
                         gid_t gid, char *err, size_t errlen)
{
    if (!group && chmod(sa->sun_path, 0600) != 0) {
        snprintf(err, errlen, "slot %s: chmod %s: %s", name, sa->sun_path, strerror(errno));
        unlink(sa->sun_path);
        return -1;
    }
    if (group && (chown(sa->sun_path, (uid_t)-1, gid) != 0 || chmod(sa->sun_path, 0660) != 0)) {
        snprintf(err, errlen, "slot %s: cannot open it to group '%s': %s", name, group,
                 strerror(errno));
        unlink(sa->sun_path);
        return -1;
    }
    return 0;
}

lsvc_slot *lsvc_slot_create(const char *name, const char *group, lsvc_slot_rc *rc, char *err,
                            size_t errlen)
{
    *rc = LSVC_SLOT_ERROR;
    struct sockaddr_un sa;
    if (slot_path(name, true, &sa, err, errlen) != 0) {
        if (errno == EACCES || errno == EPERM)
            *rc = LSVC_SLOT_DENIED;
        return NULL;
    }
    gid_t gid = (gid_t)-1;
    if (group) {
        struct group gr, *res = NULL;
        char buf[4096];
        if (getgrnam_r(group, &gr, buf, sizeof buf, &res) != 0 || !res) {
            snprintf(err, errlen, "slot %s: unknown group '%s'", name, group);
            return NULL;
        }
        gid = gr.gr_gid;
    }
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return NULL;
    }
    if (slot_bind(fd, &sa, name, rc, err, errlen) != 0 ||
        slot_set_mode(&sa, name, group, gid, err, errlen) != 0) {
        close(fd);
        return NULL;
    }
    lsvc_slot *s = calloc(1, sizeof *s);
    if (!s) {
        unlink(sa.sun_path);
        close(fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->fd = fd;
    s->ep = -1;
    s->sa = sa;
    struct stat st;
    if (stat(sa.sun_path, &st) == 0) {
        s->ino = st.st_ino;
        s->dev = st.st_dev;
    }
    *rc = LSVC_SLOT_OK;
    return s;
}

/* A descriptor more in the epoll that lsvc_slot_wait_fd gives, once
 * there is one (a closed descriptor leaves it by itself). */
static void ep_add(lsvc_slot *s, int fd)
{
    if (s->ep < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev);
}

static void accept_all(lsvc_slot *s)
{
    for (;;) {
        int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0)
            return;
        if (s->nconns == s->capconns) {
            size_t cap = s->capconns ? 2 * s->capconns : 8;
            int *n = realloc(s->conns, cap * sizeof *n);
            if (!n) {
                close(c);
                return;
            }
            s->conns = n;
            s->capconns = cap;
        }
        s->conns[s->nconns++] = c;
        ep_add(s, c);
    }
}

static void drop_conn(lsvc_slot *s, size_t i)
{
    close(s->conns[i]);
    s->conns[i] = s->conns[--s->nconns];
}

static lsvc_slot_rc recv_one(lsvc_slot *s, char *buf, size_t cap, size_t *len);

/* One message from any writer, without waiting: OK, TIMEOUT, or one that
 * came but cannot be given whole (TRUNCATED, MALFORMED). Writers take
 * turns, so a chatty one cannot starve the others. */
static lsvc_slot_rc take(lsvc_slot *s, char *buf, size_t cap, size_t *len)
{
    /* New writers are looked for when the known ones have nothing, and
     * every 32 messages: no accept4 per message, yet no writer waits long
     * behind a flood from the others. */
    if (++s->since_accept >= 32 || s->nconns == 0) {
        s->since_accept = 0;
        accept_all(s);
    }
    for (int round = 0; round < 2; round++) {
        lsvc_slot_rc rc = recv_one(s, buf, cap, len);
        if (rc != LSVC_SLOT_TIMEOUT)
            return rc;
        if (round == 0) {
            s->since_accept = 0;
            accept_all(s);
        }
    }
    return LSVC_SLOT_TIMEOUT;
}

/* One message from the known writers, round robin: OK, or TIMEOUT when
 * none has one. A message is given whole or not at all: one over cap bytes
 * (a writer of its own, with a send buffer larger than ours) is TRUNCATED,
 * one without the header MALFORMED; *len is its size either way, and the
 * reader goes on with the next. */
static lsvc_slot_rc recv_one(lsvc_slot *s, char *buf, size_t cap, size_t *len)
{
    for (size_t k = 0; k < s->nconns;) {
        size_t i = (s->next + k) % s->nconns;
        char hdr;
        struct iovec iov[2] = {{&hdr, 1}, {buf, cap}};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
        /* MSG_TRUNC: the message's real size, even past the buffer */
        ssize_t n = recvmsg(s->conns[i], &mh, MSG_DONTWAIT | MSG_TRUNC);
        if (n > 0) {
            s->next = (i + 1) % s->nconns;
            *len = (size_t)n - 1;
            if (hdr != HDR) {
                *len = (size_t)n;
                return LSVC_SLOT_MALFORMED;
            }
            if ((mh.msg_flags & MSG_TRUNC) || (size_t)n - 1 > cap)
                return LSVC_SLOT_TRUNCATED;
            return LSVC_SLOT_OK;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            drop_conn(s, i); /* that writer has gone */
            continue;        /* index i now holds another one */
        }
        k++;
    }
    return LSVC_SLOT_TIMEOUT;
}

lsvc_slot_rc lsvc_slot_read(lsvc_slot *s, char *buf, size_t cap, size_t *len, uint32_t timeout_ms,
                            char *err, size_t errlen)
{
    uint64_t due = lsvc_now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        lsvc_slot_rc rc = take(s, buf, cap, len);
        if (rc == LSVC_SLOT_TRUNCATED)
            snprintf(err, errlen,
                     "a message of %zu bytes, over the %zu a message may have, "
                     "was dropped",
                     *len, cap);
        else if (rc == LSVC_SLOT_MALFORMED)
            snprintf(err, errlen,
                     "a message of %zu bytes without the slot's header (not from "
                     "a mailslot writer) was dropped",
                     *len);
        if (rc != LSVC_SLOT_TIMEOUT)
            return rc;
        uint64_t now = lsvc_now_ns();
        if (now >= due)
            return LSVC_SLOT_TIMEOUT;
        struct pollfd fds[1 + 64];
        size_t nf = 0;
        fds[nf++] = (struct pollfd){.fd = s->fd, .events = POLLIN};
        for (size_t i = 0; i < s->nconns && nf < sizeof fds / sizeof fds[0]; i++)
            fds[nf++] = (struct pollfd){.fd = s->conns[i], .events = POLLIN};
        /* past 64 writers the others are looked at on every wake-up, and
         * at least every 10 ms */
        uint64_t wait_ms = (due - now + 999999u) / 1000000u;
        if (s->nconns >= sizeof fds / sizeof fds[0] && wait_ms > 10)
            wait_ms = 10;
        int r = poll(fds, nf, (int)(wait_ms > 0x7fffffff ? 0x7fffffff : wait_ms));
        if (r < 0 && errno == EINTR)
            return LSVC_SLOT_TIMEOUT; /* a signal: the caller decides */
        if (r < 0) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return LSVC_SLOT_ERROR;
        }
    }
}

int lsvc_slot_wait_fd(lsvc_slot *s)
{
    if (s->ep >= 0)
        return s->ep;
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    ep_add(s, s->fd);
    for (size_t i = 0; i < s->nconns; i++)
        ep_add(s, s->conns[i]);
    return s->ep;
}

void lsvc_slot_close(lsvc_slot *s)
{
    if (!s)
        return;
    /* Only our own socket file: another reader may have taken the name
     * since (after a stale-socket check of its own). */
    struct stat st;
    if (stat(s->sa.sun_path, &st) == 0 && st.st_ino == s->ino && st.st_dev == s->dev)
        unlink(s->sa.sun_path);
    close(s->fd);
    for (size_t i = 0; i < s->nconns; i++)
        close(s->conns[i]);
    if (s->ep >= 0)
        close(s->ep);
    free(s->conns);
    free(s);
}

lsvc_slot_writer *lsvc_slot_open(const char *name, char *err, size_t errlen)
{
    lsvc_slot_writer *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (slot_path(name, false, &w->sa, err, errlen) != 0) {
        free(w);
        return NULL;
    }
    snprintf(w->name, sizeof w->name, "%s", name);
    w->fd = -1; /* connected at the first write */
    return w;
}

static lsvc_slot_rc errno_write(lsvc_slot_writer *w, int e, size_t len, char *err, size_t errlen)
{
    switch (e) {
    case ENOENT:
    case ECONNREFUSED:
    case ENOTDIR:
    case EPIPE:
    case ECONNRESET:
        snprintf(err, errlen, "no reader for slot %s", w->name);
        return LSVC_SLOT_NOREADER;
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case ENOBUFS:
        snprintf(err, errlen, "slot %s is full: its reader is not keeping up", w->name);
        return LSVC_SLOT_FULL;
    case EACCES:
    case EPERM:
        snprintf(err, errlen, "slot %s: permission denied (%s)", w->name, w->sa.sun_path);
        return LSVC_SLOT_DENIED;
    case EMSGSIZE:
        snprintf(err, errlen, "message of %zu bytes exceeds the %d-byte slot limit", len,
                 LSVC_SLOT_MAX);
        return LSVC_SLOT_TOOLARGE;
    default: snprintf(err, errlen, "slot %s: %s", w->name, strerror(e)); return LSVC_SLOT_ERROR;
    }
}

/* Connect to the reader there is now. 0, or an errno. A full backlog
 * (the reader is not accepting) is EAGAIN: full, not waited for. */
static int writer_connect(lsvc_slot_writer *w)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return errno;
    int sz = SLOT_SNDBUF;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    if (connect(fd, (struct sockaddr *)&w->sa, sizeof w->sa) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    w->fd = fd;
    return 0;
}

lsvc_slot_rc lsvc_slot_write(lsvc_slot_writer *w, const void *msg, size_t len, char *err,
                             size_t errlen)
{
    if (len > LSVC_SLOT_MAX) {
        snprintf(err, errlen, "message of %zu bytes exceeds the %d-byte slot limit", len,
                 LSVC_SLOT_MAX);
        return LSVC_SLOT_TOOLARGE;
    }
    char hdr = HDR;
    struct iovec iov[2] = {{&hdr, 1}, {(void *)msg, len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    /* A connection can have been left by its reader: then once more, to
     * the reader there is now. */
    for (int attempt = 0;; attempt++) {
        bool fresh = false;
        if (w->fd < 0) {
            int e = writer_connect(w);
            if (e)
                return errno_write(w, e, len, err, errlen);
            fresh = true;
        }
        if (sendmsg(w->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
            return LSVC_SLOT_OK;
        int e = errno;
        if (e == EPIPE || e == ECONNRESET || e == ENOTCONN) {
            close(w->fd);
            w->fd = -1;
            if (!fresh && attempt == 0)
                continue;
        }
        return errno_write(w, e, len, err, errlen);
    }
}

void lsvc_slot_writer_close(lsvc_slot_writer *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    free(w);
}
