/*
 * posix_mailslot.c - mailslots on POSIX: AF_UNIX datagram sockets.
 *
 * A slot NAME is a SOCK_DGRAM socket bound at RUNTIME_DIR/slots/NAME: the
 * reader owns it, writers send to its path. Datagrams keep message
 * boundaries and, on one socket, their order. The slots directory is mode
 * 0700 and the socket 0600, so only the reader's user (and root) can post
 * to it or take its name; with a group, the socket is made 0660 and
 * chgrp'd (the directories on the way must let the group through).
 *
 * Writes never block: sendto with MSG_DONTWAIT. No socket at the path (or
 * a stale one) fails at once with NOREADER, a reader that does not keep up
 * with FULL (EAGAIN), a message over LSVC_SLOT_MAX with TOOLARGE.
 * Any thread; one reader or writer is used by one thread at a time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../luasvc.h"
#include "posix.h"

/* Room for a few 64 KiB messages in flight from one writer. */
#define SLOT_SNDBUF (4 * (LSVC_SLOT_MAX + 4096))
#define SLOT_RCVBUF (4 * (LSVC_SLOT_MAX + 4096))

struct lsvc_slot {
    int fd;
    struct sockaddr_un sa;
    ino_t ino; /* of the socket file, to remove only our own */
    dev_t dev;
};

struct lsvc_slot_writer {
    int fd;
    char name[96];
    struct sockaddr_un sa;
};

const char *lsvc_slot_rc_name(lsvc_slot_rc rc)
{
    switch (rc) {
    case LSVC_SLOT_OK: return "ok";
    case LSVC_SLOT_TIMEOUT: return "timeout";
    case LSVC_SLOT_NOREADER: return "noreader";
    case LSVC_SLOT_FULL: return "full";
    case LSVC_SLOT_TOOLARGE: return "toolarge";
    case LSVC_SLOT_EXISTS: return "exists";
    case LSVC_SLOT_DENIED: return "denied";
    default: return "error";
    }
}

bool lsvc_slot_name_valid(const char *name) { return lsvc_name_valid(name); }

/* RUNTIME_DIR/slots (created 0700 when missing) and the socket path. */
static int slot_path(const char *name, bool create_dir, struct sockaddr_un *sa, char *err,
                     size_t errlen)
{
    if (!lsvc_slot_name_valid(name)) {
        snprintf(err, errlen, "invalid slot name '%s' (1-80 characters, no '/', '\\' or "
                              "control characters)", name);
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
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return NULL;
    }
    int sz = SLOT_RCVBUF;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    mode_t old = umask(077);
    int b = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    if (b != 0 && e == EADDRINUSE) {
        /* A reader is there, or a socket left by one that crashed: a
         * datagram to a dead socket is refused. */
        int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int alive = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (probe >= 0)
            close(probe);
        if (alive) {
            umask(old);
            close(fd);
            *rc = LSVC_SLOT_EXISTS;
            snprintf(err, errlen, "slot %s already has a reader (%s)", name, sa.sun_path);
            return NULL;
        }
        unlink(sa.sun_path);
        b = bind(fd, (struct sockaddr *)&sa, sizeof sa);
        e = errno;
    }
    umask(old);
    if (b != 0) {
        *rc = errno_rc(e);
        snprintf(err, errlen, "cannot create slot %s (%s): %s", name, sa.sun_path, strerror(e));
        close(fd);
        return NULL;
    }
    if (group && (chown(sa.sun_path, (uid_t)-1, gid) != 0 || chmod(sa.sun_path, 0660) != 0)) {
        snprintf(err, errlen, "slot %s: cannot open it to group '%s': %s", name, group,
                 strerror(errno));
        unlink(sa.sun_path);
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
    s->sa = sa;
    struct stat st;
    if (stat(sa.sun_path, &st) == 0) {
        s->ino = st.st_ino;
        s->dev = st.st_dev;
    }
    *rc = LSVC_SLOT_OK;
    return s;
}

lsvc_slot_rc lsvc_slot_read(lsvc_slot *s, char *buf, size_t cap, size_t *len,
                            uint32_t timeout_ms, char *err, size_t errlen)
{
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    int r = poll(&p, 1, (int)(timeout_ms > 0x7fffffff ? 0x7fffffff : timeout_ms));
    if (r < 0 && errno == EINTR)
        return LSVC_SLOT_TIMEOUT; /* the caller loops on its own deadline */
    if (r < 0) {
        snprintf(err, errlen, "poll: %s", strerror(errno));
        return LSVC_SLOT_ERROR;
    }
    if (r == 0)
        return LSVC_SLOT_TIMEOUT;
    ssize_t n = recv(s->fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return LSVC_SLOT_TIMEOUT;
        snprintf(err, errlen, "recv: %s", strerror(errno));
        return LSVC_SLOT_ERROR;
    }
    *len = (size_t)n > cap ? cap : (size_t)n; /* cannot happen with cap >= the limit */
    return LSVC_SLOT_OK;
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
    w->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (w->fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        free(w);
        return NULL;
    }
    int sz = SLOT_SNDBUF;
    setsockopt(w->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    return w;
}

lsvc_slot_rc lsvc_slot_write(lsvc_slot_writer *w, const void *msg, size_t len, char *err,
                             size_t errlen)
{
    if (len > LSVC_SLOT_MAX) {
        snprintf(err, errlen, "message of %zu bytes exceeds the %d-byte slot limit", len,
                 LSVC_SLOT_MAX);
        return LSVC_SLOT_TOOLARGE;
    }
    /* Unconnected: each message finds the reader now at the path, so a
     * reader that restarts is found again. */
    ssize_t n = sendto(w->fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                       (struct sockaddr *)&w->sa, sizeof w->sa);
    if (n >= 0)
        return LSVC_SLOT_OK;
    int e = errno;
    switch (e) {
    case ENOENT:
    case ECONNREFUSED:
    case ENOTDIR:
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
    default:
        snprintf(err, errlen, "slot %s: %s", w->name, strerror(e));
        return LSVC_SLOT_ERROR;
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
