/*
 * posix_endpoint_client.c - the client's side of the control endpoint
 * (posix_endpoint.c is the host's): a socket's path, one request and its
 * reply (lsvc_endpoint_request: connect, send, read, each with a
 * deadline), the services a runtime directory lists, and the probe that
 * tells a live host's listener from a socket a killed host left (which
 * the host's side asks before it takes a name over). Calls nothing of the
 * host's side. Any thread; no state of its own.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "posix.h"

int lsvc_endpoint_sock_path(const char *dir, const char *name, struct sockaddr_un *sa, char *err,
                            size_t errlen)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path, sizeof sa->sun_path, "%s/%s.sock", dir, name);
    if (n < 0 || (size_t)n >= sizeof sa->sun_path) {
        snprintf(err, errlen,
                 "endpoint path %s/%s.sock is longer than %zu bytes; use a shorter "
                 "LUASVC_RUNTIME_DIR or service name",
                 dir, name, sizeof sa->sun_path - 1);
        return -1;
    }
    return 0;
}

/* The client's whole request (connect, send, reply) has this long: a host
 * that is stopped (SIGSTOP) or hung gives "no reply", never a hang. */
#define LSVC_CLIENT_TIMEOUT_MS 5000

/* Wait until fd is ready for events or deadline_ns passes: false then. */
static bool wait_fd(int fd, short events, uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = lsvc_now_ns();
        if (now >= deadline_ns)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)((deadline_ns - now) / 1000000u) + 1);
        if (r > 0)
            return true;
        if (r < 0 && errno != EINTR)
            return false;
    }
}

/* Connect fd (non-blocking) to sa by deadline_ns. A listener whose backlog
 * is full (its host stopped, or swamped) refuses with EAGAIN at once: try
 * again in a moment, until the deadline. 0, or an errno. */
static int connect_by(int fd, const struct sockaddr_un *sa, uint64_t deadline_ns)
{
    for (;;) {
        if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0)
            return 0;
        int e = errno;
        if (e == EINPROGRESS)
            return wait_fd(fd, POLLOUT, deadline_ns) ? 0 : ETIMEDOUT;
        if (e != EAGAIN && e != EINTR)
            return e;
        if (lsvc_now_ns() >= deadline_ns)
            return ETIMEDOUT;
        struct timespec ts = {0, 10000000}; /* 10 ms */
        nanosleep(&ts, NULL);
    }
}

/* Is a live host's listener at sa? Never waits: a full backlog (a stopped
 * host) is a listener too. Without a socket to probe with (out of
 * descriptors: *cannot, the errno), it may be: never taken over then. */
bool lsvc_endpoint_probe(const struct sockaddr_un *sa, int *cannot)
{
    *cannot = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *cannot = errno;
        return true;
    }
    bool alive = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0 || errno == EAGAIN ||
                 errno == EINPROGRESS;
    close(fd);
    return alive;
}

int lsvc_endpoint_request(const char *dir, const char *name, const char *req, char *out,
                          size_t outlen, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    if (lsvc_endpoint_sock_path(dir, name, &sa, err, errlen) != 0)
        return LSVC_CLIENT_ERROR;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return LSVC_CLIENT_ERROR;
    }
    uint64_t deadline = lsvc_now_ns() + LSVC_CLIENT_TIMEOUT_MS * 1000000ull;
    int ce = connect_by(fd, &sa, deadline);
    if (ce != 0) {
        close(fd);
        if (ce == ENOENT || ce == ECONNREFUSED) {
            snprintf(err, errlen, "service '%s' is not running (no endpoint at %s)", name,
                     sa.sun_path);
            return LSVC_CLIENT_NOT_RUNNING;
        }
        if (ce == ETIMEDOUT)
            snprintf(err, errlen,
                     "no reply from service '%s' at %s: its host takes no connection "
                     "(stopped or hung?)",
                     name, sa.sun_path);
        else
            snprintf(err, errlen, "cannot reach service '%s' at %s: %s", name, sa.sun_path,
                     strerror(ce));
        return LSVC_CLIENT_ERROR;
    }
    /* A host that refuses us may reply and close before reading: a failed
     * send still leaves its reply to read. */
    size_t n = strlen(req), off = 0;
    int send_errno = 0;
    while (off < n && !send_errno) {
        ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline))
            continue;
        else if (!(w < 0 && errno == EINTR))
            send_errno = w < 0 && errno != EAGAIN ? errno : ETIMEDOUT;
    }
    size_t len = 0;
    bool timed_out = false;
    while (len + 1 < outlen) {
        ssize_t r = recv(fd, out + len, outlen - 1 - len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN) {
            if (wait_fd(fd, POLLIN, deadline))
                continue;
            timed_out = true;
            break;
        }
        if (r <= 0)
            break;
        len += (size_t)r;
        if (memchr(out, '\n', len))
            break;
    }
    close(fd);
    out[len] = '\0';
    char *nl = strchr(out, '\n');
    if (!nl) {
        if (send_errno && send_errno != ETIMEDOUT)
            snprintf(err, errlen, "send to %s: %s", sa.sun_path, strerror(send_errno));
        else if (timed_out || send_errno)
            snprintf(err, errlen,
                     "no reply from service '%s' at %s within %d ms (its host "
                     "stopped or hung?)",
                     name, sa.sun_path, LSVC_CLIENT_TIMEOUT_MS);
        else
            snprintf(err, errlen, "no reply from service '%s' at %s", name, sa.sun_path);
        return LSVC_CLIENT_ERROR;
    }
    *nl = '\0';
    return LSVC_CLIENT_OK;
}

int lsvc_endpoint_list(const char *dir, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l <= 5 || strcmp(de->d_name + l - 5, ".sock") != 0)
            continue;
        char **nn = realloc(*names, (*n + 1) * sizeof *nn);
        if (!nn)
            break;
        *names = nn;
        (*names)[*n] = strndup(de->d_name, l - 5);
        (*n)++;
    }
    closedir(d);
    for (size_t i = 1; i < *n; i++) /* sorted, for a stable listing */
        for (size_t j = i; j > 0 && strcmp((*names)[j - 1], (*names)[j]) > 0; j--) {
            char *t = (*names)[j];
            (*names)[j] = (*names)[j - 1];
            (*names)[j - 1] = t;
        }
    return 0;
}
