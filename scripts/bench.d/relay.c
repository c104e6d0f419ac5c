/*
 * relay.c - the floor of control arrival -> Lua handler entry (section 2):
 * a two-hop C relay of the same shape as luasvc's path, with nothing else
 * on it. (Compiled by scripts/bench, not by CMake; Linux: eventfd, epoll.)
 *
 *   relay SOCKPATH        runs until killed
 *
 * Hop one: the main thread (luasvc's endpoint thread) is blocked in poll()
 * on an AF_UNIX stream listener; per connection it accepts, reads one line
 * and answers it:
 *   "CONTROL CODE NAME"  stamps the arrival (CLOCK_MONOTONIC), pushes the
 *                        request into a mutex-protected queue, writes an
 *                        eventfd (once the mutex is released, as luasvc's
 *                        queue wakes its worker), answers "OK", closes;
 *   "STATUS NAME"        answers "OK {...}" with "controls_delivered" and
 *                        "control_latency_us" (the last sample), the
 *                        fields of luasvc's STATUS, so `client latency`
 *                        measures both the same way.
 * Hop two: a second thread (luasvc's worker: libuv on epoll, its wake an
 * eventfd under a uv_poll_t) waits in epoll_wait on the eventfd, reads it,
 * pops every queued request and takes the time: arrival -> pop is the
 * sample. No credentials check, no parsing beyond the verb, no Lua.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define QCAP 64
static pthread_mutex_t qmu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t queue[QCAP]; /* arrival stamps */
static size_t qhead, qlen;
static int wakefd;

static pthread_mutex_t smu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t delivered, last_ns;

static void *worker(void *arg)
{
    (void)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN}, got;
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, wakefd, &ev) != 0) {
        perror("relay: epoll");
        _exit(2);
    }
    for (;;) {
        int n = epoll_wait(ep, &got, 1, -1);
        if (n < 0 && errno != EINTR) {
            perror("relay: epoll_wait");
            _exit(2);
        }
        if (n <= 0)
            continue;
        uint64_t cnt;
        while (read(wakefd, &cnt, sizeof cnt) < 0 && errno == EINTR)
            ;
        for (;;) {
            pthread_mutex_lock(&qmu);
            int any = qlen > 0;
            uint64_t arrived = 0;
            if (any) {
                arrived = queue[qhead];
                qhead = (qhead + 1) % QCAP;
                qlen--;
            }
            pthread_mutex_unlock(&qmu);
            if (!any)
                break;
            uint64_t lat = now_ns() - arrived;
            pthread_mutex_lock(&smu);
            last_ns = lat;
            delivered++;
            pthread_mutex_unlock(&smu);
        }
    }
    return NULL;
}

static void answer(int fd, const char *req, size_t len)
{
    char out[256];
    int n;
    if (len >= 8 && memcmp(req, "CONTROL ", 8) == 0) {
        uint64_t t = now_ns();
        pthread_mutex_lock(&qmu);
        int ok = qlen < QCAP;
        if (ok) {
            queue[(qhead + qlen) % QCAP] = t;
            qlen++;
        }
        pthread_mutex_unlock(&qmu);
        if (ok) {
            uint64_t one = 1;
            while (write(wakefd, &one, sizeof one) < 0 && errno == EINTR)
                ;
        }
        n = snprintf(out, sizeof out, ok ? "OK\n" : "ERROR full\n");
    } else if (len >= 7 && memcmp(req, "STATUS ", 7) == 0) {
        pthread_mutex_lock(&smu);
        n = snprintf(out, sizeof out,
                     "OK {\"state\":\"RUNNING\",\"controls_delivered\":%llu,"
                     "\"control_latency_us\":%.1f}\n",
                     (unsigned long long)delivered, (double)last_ns / 1000.0);
        pthread_mutex_unlock(&smu);
    } else {
        n = snprintf(out, sizeof out, "ERROR unknown request\n");
    }
    send(fd, out, (size_t)n, MSG_NOSIGNAL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: relay SOCKPATH\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(argv[1]) >= sizeof sa.sun_path) {
        fprintf(stderr, "relay: path too long\n");
        return 2;
    }
    strcpy(sa.sun_path, argv[1]);
    wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    unlink(sa.sun_path);
    if (wakefd < 0 || ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(ls, 16) != 0) {
        fprintf(stderr, "relay: %s: %s\n", sa.sun_path, strerror(errno));
        return 2;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, worker, NULL) != 0) {
        fprintf(stderr, "relay: cannot start the worker thread\n");
        return 2;
    }
    char buf[600];
    for (;;) {
        struct pollfd p = {.fd = ls, .events = POLLIN};
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0)
            continue;
        /* the request is mostly there already; poll for the rest */
        size_t len = 0;
        while (len < sizeof buf) {
            ssize_t r = recv(c, buf + len, sizeof buf - len, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                struct pollfd q = {.fd = c, .events = POLLIN};
                if (poll(&q, 1, 1000) <= 0)
                    break;
                continue;
            }
            if (r <= 0)
                break;
            len += (size_t)r;
            if (memchr(buf, '\n', len))
                break;
        }
        if (len && memchr(buf, '\n', len))
            answer(c, buf, len);
        close(c);
    }
}
