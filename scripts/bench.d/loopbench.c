/*
 * loopbench.c - the event-loop section's helper (compiled by scripts/bench).
 *
 *   loopbench http PORT CONNS SECONDS [PATH]
 *       CONNS keep-alive connections to 127.0.0.1:PORT, each sending
 *       "GET PATH HTTP/1.1" (PATH default /health) again as soon as the
 *       previous answer (a Content-Length body) is in, for SECONDS after a
 *       0.5 s warm-up.
 *       Prints "rps= errors= total=" (total: every answer, the warm-up's too).
 *   loopbench stopclose PORT PID
 *       One keep-alive connection and one request answered, then SIGTERM
 *       to PID; time until the connection reads EOF. Prints "ms=".
 *   loopbench irq PID LOG TIMEOUT_MS
 *       SIGTERM to PID, a host whose run spins ignoring the stop; time until
 *       LOG (its stderr) shows "IRQ:unwound" (its stop handler, entered once
 *       the interrupt unwound run), less the stop timeout. Prints "ms=".
 *   loopbench reaped CHILD PID
 *       SIGTERM to PID (a host whose service started CHILD); time until
 *       CHILD no longer exists (reaped: a zombie still exists). Prints "ms=".
 *
 * Exit status 2 on a system error, with a message.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static char REQ[512] = "GET /health HTTP/1.1\r\nHost: bench\r\n\r\n";
static size_t REQ_LEN = sizeof "GET /health HTTP/1.1\r\nHost: bench\r\n\r\n" - 1;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "loopbench: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

typedef struct {
    int fd;
    char buf[8192];
    size_t len;
} conn;

/* Complete answers at the start of c->buf, consumed; -1 on a bad one. */
static int answers(conn *c)
{
    int n = 0;
    for (;;) {
        char *eoh = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!eoh)
            return n;
        char *cl = memmem(c->buf, (size_t)(eoh - c->buf), "Content-Length: ", 16);
        if (!cl || strncmp(c->buf, "HTTP/1.1 200", 12) != 0)
            return -1;
        size_t body = strtoul(cl + 16, NULL, 10), total = (size_t)(eoh + 4 - c->buf) + body;
        if (c->len < total)
            return n;
        memmove(c->buf, c->buf + total, c->len - total);
        c->len -= total;
        n++;
    }
}

static int http(int port, int nconn, double seconds)
{
    int ep = epoll_create1(0);
    conn *cs = calloc((size_t)nconn, sizeof *cs);
    for (int i = 0; i < nconn; i++) {
        cs[i].fd = dial(port);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
        if (write(cs[i].fd, REQ, REQ_LEN) < 0)
            die("write");
    }
    uint64_t start = now_ns(), warm = start + 500000000u;
    uint64_t end = warm + (uint64_t)(seconds * 1e9);
    long done = 0, total = 0, errors = 0;
    struct epoll_event evs[64];
    for (uint64_t t = start; t < end; t = now_ns()) {
        int n = epoll_wait(ep, evs, 64, 100);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
            if (r <= 0) {
                errno = r ? errno : ECONNRESET;
                die("read");
            }
            c->len += (size_t)r;
            int a = answers(c);
            if (a < 0) {
                errors++;
                c->len = 0;
                a = 1;
            }
            for (int k = 0; k < a; k++) {
                total++;
                if (now_ns() >= warm)
                    done++;
                if (write(c->fd, REQ, REQ_LEN) < 0)
                    die("write");
            }
        }
    }
    printf("rps=%.0f errors=%ld total=%ld\n", (double)done / seconds, errors, total);
    return 0;
}

static int stopclose(int port, pid_t pid)
{
    conn c = {.fd = dial(port)};
    if (write(c.fd, REQ, REQ_LEN) < 0)
        die("write");
    while (answers(&c) < 1) {
        ssize_t r = read(c.fd, c.buf + c.len, sizeof c.buf - c.len);
        if (r <= 0)
            die("read");
        c.len += (size_t)r;
    }
    uint64_t t0 = now_ns();
    kill(pid, SIGTERM);
    char b[256];
    while (read(c.fd, b, sizeof b) > 0)
        ;
    printf("ms=%.3f\n", (double)(now_ns() - t0) / 1e6);
    return 0;
}

static int irq(pid_t pid, const char *log, double timeout_ms)
{
    uint64_t t0 = now_ns(), give_up = t0 + 10000000000u;
    kill(pid, SIGTERM);
    static char buf[1 << 16];
    for (;;) {
        FILE *f = fopen(log, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        if (strstr(buf, "IRQ:unwound"))
            break;
        if (now_ns() > give_up) {
            fprintf(stderr, "loopbench: no IRQ:unwound in %s\n", log);
            return 2;
        }
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    printf("ms=%.3f\n", (double)(now_ns() - t0) / 1e6 - timeout_ms);
    return 0;
}

static int reaped(pid_t child, pid_t pid)
{
    uint64_t t0 = now_ns(), give_up = t0 + 10000000000u;
    kill(pid, SIGTERM);
    while (kill(child, 0) == 0 && now_ns() < give_up) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    printf("ms=%.3f\n", (double)(now_ns() - t0) / 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "http") == 0) {
        if (argc == 6) {
            int n = snprintf(REQ, sizeof REQ, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", argv[5]);
            if (n < 0 || (size_t)n >= sizeof REQ) {
                fprintf(stderr, "loopbench: PATH too long\n");
                return 2;
            }
            REQ_LEN = (size_t)n;
        }
        return http(atoi(argv[2]), atoi(argv[3]), atof(argv[4]));
    }
    if (argc == 4 && strcmp(argv[1], "stopclose") == 0)
        return stopclose(atoi(argv[2]), (pid_t)atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "irq") == 0)
        return irq((pid_t)atoi(argv[2]), argv[3], atof(argv[4]));
    if (argc == 4 && strcmp(argv[1], "reaped") == 0)
        return reaped((pid_t)atoi(argv[2]), (pid_t)atoi(argv[3]));
    fprintf(stderr, "usage: loopbench http PORT CONNS SECONDS [PATH] | stopclose PORT PID | "
                    "irq PID LOG TIMEOUT_MS | reaped CHILD PID\n");
    return 2;
}
