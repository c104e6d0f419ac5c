/*
 * metrics.c - the host's own health and metrics endpoint, `luasvc run
 * --metrics ADDR:PORT` (off by default): a small HTTP/1.1 server on a
 * thread of its own, plain sockets and poll (WSAPoll on Windows).
 *
 *   GET /healthz   200 while every service is where it was asked to be,
 *                  503 otherwise; the body says, service by service, why
 *                  (lsvc_metrics_health: the rule is written there)
 *   GET /metrics   the services' numbers in the Prometheus text exposition
 *                  format 0.0.4 (lsvc_metrics_render)
 *   HEAD of both; any other method 405, any other path 404.
 *
 * It reads the services only through lsvc_service_get_stats (a copy
 * under the service's mutex): it never runs Lua and never waits on a
 * worker. One request per connection (Connection: close). Bounded in
 * every way a client could hold it: at most METRICS_MAX_CONNS connections
 * (the oldest still sending its request makes room for a new one), the
 * request head within METRICS_HEAD_MAX bytes (its first line within
 * METRICS_LINE_MAX: 413; else 431) and METRICS_READ_MS, a whole
 * connection within METRICS_CONN_MS, nonblocking sockets throughout; a
 * malformed request gets 400 at the first byte that shows it (the head is
 * read by http_head.c).
 *
 * What the answers say (the exposition, the health rule) is
 * metrics_text.c's.
 *
 * Threads: lsvc_metrics_open, _start and _close on the main thread (the
 * console's); the server on its own; lsvc_metrics_check_addr on any
 * thread.
 */
#ifndef _WIN32
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET sock_t;
#define BAD_SOCK INVALID_SOCKET
#define sock_close closesocket
#define SEND_FLAGS 0
#define SHUT_WR SD_SEND
static int sock_errno(void) { return WSAGetLastError(); }
static bool would_block(int e) { return e == WSAEWOULDBLOCK || e == WSAEINTR; }
static bool out_of_fds(int e) { return e == WSAEMFILE || e == WSAENOBUFS; }
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
typedef int sock_t;
#define BAD_SOCK (-1)
#define sock_close close
#define SEND_FLAGS MSG_NOSIGNAL /* a client gone: EPIPE, never SIGPIPE */
static int sock_errno(void) { return errno; }
static bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }
static bool out_of_fds(int e) { return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM; }
#endif

#include "frontend.h"
#include "http_head.h"

#define METRICS_MAX_CONNS 32
#define METRICS_HEAD_MAX 8192  /* request line and headers */
#define METRICS_LINE_MAX 2048  /* the request line */
#define METRICS_READ_MS 5000   /* accept to the request's end */
#define METRICS_CONN_MS 10000  /* accept to close, the answer's sending included */
#define METRICS_LINGER_MS 1000 /* after the answer: what the client still sends, read away */
#define METRICS_DRAIN_MAX 262144
#define METRICS_BACKOFF_MS 100 /* out of descriptors: accept again after this */
#define MS 1000000ull

typedef enum conn_phase { CONN_FREE, CONN_READ, CONN_WRITE, CONN_DRAIN } conn_phase;

typedef struct metrics_conn {
    conn_phase phase;
    sock_t fd;
    uint64_t since_ns, due_ns; /* accepted; the current phase's end */
    char *in;                  /* METRICS_HEAD_MAX bytes */
    size_t in_len, drained;
    lsvc_http_head http; /* the request's head as read so far */
    char *out;           /* the whole answer */
    size_t out_len, out_off;
} metrics_conn;

struct lsvc_metrics {
    sock_t listen_fd;
    char where[80]; /* "127.0.0.1:9100", as bound */
    lsvc_host *host;
#ifdef _WIN32
    sock_t wake_rd; /* a UDP socket connected to itself: WSAPoll polls sockets only */
#else
    int wake_rd, wake_wr;
#endif
    pthread_t thread;
    bool started;
    atomic_bool quit;
    uint64_t accept_after_ns; /* out of descriptors: not before this */
    metrics_conn conns[METRICS_MAX_CONNS];
};

/* ---- ADDR:PORT -------------------------------------------------------- */

/* "ADDR:PORT" as a socket address: 0, or -1 with the reason in err. */
static int parse_addr(const char *s, struct sockaddr_storage *sa, socklen_t *salen, char *err,
                      size_t errlen)
{
    const char *h = s, *colon;
    size_t hlen;
    char host[64];
    if (s[0] == '[') { /* [IPv6]:PORT */
        const char *rb = strchr(s, ']');
        h = s + 1;
        hlen = rb ? (size_t)(rb - h) : 0;
        colon = rb && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = strrchr(s, ':');
        hlen = colon ? (size_t)(colon - s) : 0;
    }
    if (!colon || hlen == 0 || hlen >= sizeof host) {
        snprintf(err, errlen, "'%s' is not ADDR:PORT (127.0.0.1:9100, [::1]:9100, 0.0.0.0:9100)",
                 s);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || port < 0 || port > 65535 || colon[1] == '-' ||
        colon[1] == '+' || colon[1] == ' ') {
        snprintf(err, errlen, "bad port '%s' in '%s': 1-65535, or 0 for any free port", colon + 1,
                 s);
        return -1;
    }
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    memset(sa, 0, sizeof *sa);
    struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
    if (h == s && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *salen = sizeof *v4;
    } else if (h != s && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *salen = sizeof *v6;
    } else {
        snprintf(err, errlen,
                 "bad address '%s' in '%s': an IPv4 address, localhost, or an IPv6 address in "
                 "brackets ([::1])",
                 host, s);
        return -1;
    }
    return 0;
}

int lsvc_metrics_check_addr(const char *addr, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    return parse_addr(addr, &sa, &salen, err, errlen);
}

/* sa as "ADDR:PORT" ("[ADDR]:PORT" for IPv6). */
static void addr_text(const struct sockaddr_storage *sa, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN] = "?";
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, (void *)&v6->sin6_addr, a, sizeof a);
        snprintf(buf, len, "[%s]:%u", a, ntohs(v6->sin6_port));
    } else {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, (void *)&v4->sin_addr, a, sizeof a);
        snprintf(buf, len, "%s:%u", a, ntohs(v4->sin_port));
    }
}

/* ---- the server ---------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

typedef enum metrics_page { PAGE_NONE, PAGE_HEALTHZ, PAGE_METRICS } metrics_page;

/* What a request asks, from lsvc_http_feed's rc and the head in[]: the
 * status (200: *pg, the page) or the error to answer with. */
static int route(const char *in, const lsvc_http_head *h, int rc, metrics_page *pg)
{
    *pg = PAGE_NONE;
    if (rc != LSVC_HTTP_DONE)
        return rc;
    if (!h->version_ok)
        return 505;
    if (!h->get && !h->head)
        return 405;
    if (h->path_len == 8 && memcmp(in + h->path, "/healthz", 8) == 0)
        *pg = PAGE_HEALTHZ;
    else if (h->path_len == 8 && memcmp(in + h->path, "/metrics", 8) == 0)
        *pg = PAGE_METRICS;
    return *pg ? 200 : 404;
}

/* A body into b (cap 0: measured): the page's, or the status's line.
 * Returns the status (/healthz's 200 or 503). */
static int body(lsvc_buf *b, int status, metrics_page pg, const lsvc_service_stats *s, size_t n,
                uint64_t now)
{
    if (pg == PAGE_METRICS)
        lsvc_metrics_render(b, s, n);
    else if (pg == PAGE_HEALTHZ)
        return lsvc_metrics_health(b, s, n, now);
    else
        lsvc_buf_printf(b, "%d %s\n", status, reason(status));
    return status;
}

/* The whole answer into c->out: the page pg, or the error status. The
 * stats are read once, so that the body measured is the body written. */
static void answer(lsvc_metrics *m, metrics_conn *c, int status, metrics_page pg, bool head_only)
{
    size_t n = pg ? lsvc_host_count(m->host) : 0;
    lsvc_service_stats *s = n ? calloc(n, sizeof *s) : NULL;
    if (n && !s)
        status = 500, n = 0, pg = PAGE_NONE;
    for (size_t k = 0; k < n; k++)
        lsvc_service_get_stats(lsvc_host_service(m->host, k), &s[k]);
    uint64_t now = lsvc_now_ns();
    lsvc_buf measure = lsvc_buf_init(NULL, 0);
    status = body(&measure, status, pg, s, n, now);
    size_t cap = measure.len + 512;
    c->out = malloc(cap);
    c->out_len = c->out_off = 0;
    if (c->out) {
        lsvc_buf b = lsvc_buf_init(c->out, cap);
        lsvc_buf_printf(&b,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain; %scharset=utf-8\r\n"
                        "Content-Length: %zu\r\nCache-Control: no-store\r\n%s"
                        "Connection: close\r\n\r\n",
                        status, reason(status), pg == PAGE_METRICS ? "version=0.0.4; " : "",
                        measure.len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
        if (!head_only)
            body(&b, status, pg, s, n, now);
        c->out_len = b.len < cap ? b.len : cap - 1;
    }
    free(s);
    c->phase = CONN_WRITE;
    c->due_ns = c->since_ns + METRICS_CONN_MS * MS;
}

static void conn_close(metrics_conn *c)
{
    if (c->phase == CONN_FREE)
        return;
    sock_close(c->fd);
    free(c->in);
    free(c->out);
    *c = (metrics_conn){.phase = CONN_FREE, .fd = BAD_SOCK};
}

/* The answer is out: no more to send; what the client still sends is read
 * away for a while, so that closing does not reset the connection (and
 * lose the answer) while the client is still sending a request too long. */
static void conn_linger(metrics_conn *c, uint64_t now)
{
    shutdown(c->fd, SHUT_WR);
    c->phase = CONN_DRAIN;
    c->due_ns = now + METRICS_LINGER_MS * MS;
}

static void conn_write(metrics_conn *c, uint64_t now)
{
    while (c->out && c->out_off < c->out_len) {
        int w = (int)send(c->fd, c->out + c->out_off, (int)(c->out_len - c->out_off), SEND_FLAGS);
        if (w < 0 && would_block(sock_errno()))
            return;
        if (w <= 0) {
            conn_close(c);
            return;
        }
        c->out_off += (size_t)w;
    }
    conn_linger(c, now);
}

/* Read what the client sent: the request's head, or (lingering) whatever
 * follows the answer. */
static void conn_read(lsvc_metrics *m, metrics_conn *c, uint64_t now)
{
    char scratch[4096];
    for (;;) {
        bool drain = c->phase == CONN_DRAIN;
        char *to = drain ? scratch : c->in + c->in_len;
        size_t room = drain ? sizeof scratch : METRICS_HEAD_MAX - c->in_len;
        int r = (int)recv(c->fd, to, (int)room, 0);
        if (r < 0 && would_block(sock_errno()))
            return;
        if (r <= 0) { /* the client has closed (an unfinished request has no answer) */
            conn_close(c);
            return;
        }
        if (drain) { /* read away, up to a point */
            c->drained += (size_t)r;
            if (c->drained <= METRICS_DRAIN_MAX)
                continue;
            conn_close(c);
            return;
        }
        c->in_len += (size_t)r;
        int rc = lsvc_http_feed(&c->http, c->in, c->in_len, METRICS_LINE_MAX, METRICS_HEAD_MAX);
        if (rc) {
            metrics_page pg;
            int status = route(c->in, &c->http, rc, &pg);
            answer(m, c, status, pg, rc == LSVC_HTTP_DONE && c->http.head);
            conn_write(c, now);
            return;
        }
    }
}

/* Past its phase's end: a request not in yet is answered 408; an answer
 * not taken, or a linger over, ends the connection. */
static void conn_expire(lsvc_metrics *m, metrics_conn *c, uint64_t now)
{
    if (c->phase == CONN_FREE || now < c->due_ns)
        return;
    if (c->phase == CONN_READ) {
        answer(m, c, 408, PAGE_NONE, false);
        conn_write(c, now);
    } else {
        conn_close(c);
    }
}

/* A free slot for a new connection: when every slot is taken, the oldest
 * connection still sending its request gives way (so that many slow or
 * silent clients cannot keep a prompt one out); NULL when all are being
 * answered (the new one waits in the listen backlog). */
static metrics_conn *free_slot(lsvc_metrics *m)
{
    metrics_conn *oldest = NULL;
    for (size_t i = 0; i < METRICS_MAX_CONNS; i++) {
        metrics_conn *c = &m->conns[i];
        if (c->phase == CONN_FREE)
            return c;
        if (c->phase == CONN_READ && (!oldest || c->since_ns < oldest->since_ns))
            oldest = c;
    }
    if (oldest)
        conn_close(oldest);
    return oldest;
}

static bool any_slot(lsvc_metrics *m)
{
    for (size_t i = 0; i < METRICS_MAX_CONNS; i++)
        if (m->conns[i].phase == CONN_FREE || m->conns[i].phase == CONN_READ)
            return true;
    return false;
}

/* Take a connection waiting to be accepted: false when none is left. */
static bool accept_one(lsvc_metrics *m, uint64_t now)
{
#ifdef _WIN32
    sock_t fd = accept(m->listen_fd, NULL, NULL); /* non-blocking, as the listener */
    if (fd != BAD_SOCK)
        SetHandleInformation((HANDLE)fd, HANDLE_FLAG_INHERIT, 0);
#else
    sock_t fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
#endif
    if (fd == BAD_SOCK) {
        int e = sock_errno();
        if (out_of_fds(e)) /* the connection waits in the backlog meanwhile */
            m->accept_after_ns = now + METRICS_BACKOFF_MS * MS;
        return !would_block(e) && !out_of_fds(e); /* ECONNABORTED and the like: the next */
    }
    metrics_conn *c = free_slot(m);
    char *in = c ? malloc(METRICS_HEAD_MAX) : NULL;
    if (!in) {
        sock_close(fd);
        free(in);
        return c != NULL;
    }
    *c = (metrics_conn){.phase = CONN_READ, .fd = fd, .since_ns = now, .in = in};
    c->due_ns = now + METRICS_READ_MS * MS;
    conn_read(m, c, now); /* the request is often in already */
    return true;
}

/* The poll set of a turn: the wake socket, the listener when a
 * connection may be taken, each connection by what it waits for. The
 * timeout: the earliest phase's end. */
static size_t poll_set(lsvc_metrics *m, struct pollfd *pfd, metrics_conn **who, uint64_t now,
                       int *timeout_ms)
{
    size_t n = 0;
    uint64_t due = 0;
    pfd[n++] = (struct pollfd){.fd = m->wake_rd, .events = POLLIN};
    who[0] = NULL;
    if (now >= m->accept_after_ns && any_slot(m)) {
        who[n] = NULL;
        pfd[n++] = (struct pollfd){.fd = m->listen_fd, .events = POLLIN};
    } else if (now < m->accept_after_ns) {
        due = m->accept_after_ns;
    }
    for (size_t i = 0; i < METRICS_MAX_CONNS; i++) {
        metrics_conn *c = &m->conns[i];
        if (c->phase == CONN_FREE)
            continue;
        who[n] = c;
        pfd[n++] =
            (struct pollfd){.fd = c->fd, .events = c->phase == CONN_WRITE ? POLLOUT : POLLIN};
        if (!due || c->due_ns < due)
            due = c->due_ns;
    }
    *timeout_ms = !due ? -1 : due <= now ? 0 : (int)((due - now + MS - 1) / MS);
    return n;
}

static void wake_drain(lsvc_metrics *m)
{
    char b[64];
#ifdef _WIN32
    while (recv(m->wake_rd, b, sizeof b, 0) > 0) {
    }
#else
    while (read(m->wake_rd, b, sizeof b) > 0) {
    }
#endif
}

/* A pause after a failing poll (its causes pass: out of memory). */
static void nap_ms(int ms)
{
#ifdef _WIN32
    Sleep((DWORD)ms);
#else
    poll(NULL, 0, ms);
#endif
}

static void *metrics_main(void *arg)
{
    lsvc_metrics *m = arg;
    struct pollfd pfd[2 + METRICS_MAX_CONNS];
    metrics_conn *who[2 + METRICS_MAX_CONNS];
    while (!atomic_load(&m->quit)) {
        int timeout;
        size_t n = poll_set(m, pfd, who, lsvc_now_ns(), &timeout);
#ifdef _WIN32
        int r = WSAPoll(pfd, (ULONG)n, timeout);
#else
        int r = poll(pfd, (nfds_t)n, timeout);
#endif
        uint64_t now = lsvc_now_ns();
        if (r < 0 && !would_block(sock_errno())) {
            lsvc_log(LSVC_LOG_WARNING, NULL, "metrics: poll: error %d, trying again", sock_errno());
            nap_ms(METRICS_BACKOFF_MS);
            continue;
        }
        if (r > 0 && pfd[0].revents)
            wake_drain(m);
        bool listener = false;
        for (size_t i = 1; r > 0 && i < n; i++) {
            if (!pfd[i].revents)
                continue;
            if (!who[i])
                listener = true; /* last: a new one may take an old one's slot */
            else if (who[i]->phase == CONN_WRITE)
                conn_write(who[i], now);
            else
                conn_read(m, who[i], now);
        }
        for (int k = 0; listener && k < 16 && accept_one(m, now); k++) {
        }
        for (size_t i = 0; i < METRICS_MAX_CONNS; i++)
            conn_expire(m, &m->conns[i], now);
    }
    return NULL;
}

/* ---- open, start, close (main thread) ------------------------------------ */

/* The wake: a pipe, or on Windows a UDP socket connected to itself. */
static int wake_open(lsvc_metrics *m)
{
#ifdef _WIN32
    m->wake_rd = WSASocketW(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int alen = sizeof a;
    u_long one = 1;
    if (m->wake_rd == BAD_SOCK || bind(m->wake_rd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(m->wake_rd, (struct sockaddr *)&a, &alen) != 0 ||
        connect(m->wake_rd, (struct sockaddr *)&a, sizeof a) != 0 ||
        ioctlsocket(m->wake_rd, FIONBIO, &one) != 0)
        return -1;
    return 0;
#else
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    m->wake_rd = p[0];
    m->wake_wr = p[1];
    return 0;
#endif
}

static void wake(lsvc_metrics *m)
{
#ifdef _WIN32
    send(m->wake_rd, "x", 1, 0);
#else
    ssize_t w = write(m->wake_wr, "x", 1);
    (void)w; /* full: a wake is pending already */
#endif
}

/* A listening socket on sa: 0, or -1 (the socket error in *e). */
static int listen_on(lsvc_metrics *m, const struct sockaddr_storage *sa, socklen_t salen, int *e)
{
#ifdef _WIN32
    m->listen_fd =
        WSASocketW(sa->ss_family, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
    BOOL excl = TRUE;
    u_long one = 1;
    bool ok = m->listen_fd != BAD_SOCK &&
              setsockopt(m->listen_fd, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (char *)&excl,
                         sizeof excl) == 0 &&
              ioctlsocket(m->listen_fd, FIONBIO, &one) == 0;
#else
    m->listen_fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1; /* a restarted host binds while the old connections linger */
    bool ok = m->listen_fd != BAD_SOCK &&
              setsockopt(m->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0;
#endif
    ok = ok && bind(m->listen_fd, (const struct sockaddr *)sa, salen) == 0 &&
         listen(m->listen_fd, 64) == 0;
    *e = ok ? 0 : sock_errno();
    return ok ? 0 : -1;
}

static const char *sock_strerror(int e)
{
#ifdef _WIN32
    switch (e) {
    case WSAEADDRINUSE: return "Address already in use";
    case WSAEADDRNOTAVAIL: return "Cannot assign requested address";
    case WSAEACCES: return "Permission denied";
    default: return "socket error";
    }
#else
    return strerror(e);
#endif
}

lsvc_metrics *lsvc_metrics_open(const char *addr, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    socklen_t salen = 0;
    if (parse_addr(addr, &sa, &salen, err, errlen) != 0)
        return NULL;
#ifdef _WIN32
    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
        snprintf(err, errlen, "cannot start Winsock");
        return NULL;
    }
#endif
    lsvc_metrics *m = calloc(1, sizeof *m);
    if (!m) {
#ifdef _WIN32
        WSACleanup();
#endif
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->listen_fd = m->wake_rd = BAD_SOCK;
#ifndef _WIN32
    m->wake_wr = -1;
#endif
    for (size_t i = 0; i < METRICS_MAX_CONNS; i++)
        m->conns[i] = (metrics_conn){.phase = CONN_FREE, .fd = BAD_SOCK};
    int e = 0;
    if (listen_on(m, &sa, salen, &e) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, sock_strerror(e));
        lsvc_metrics_close(m);
        return NULL;
    }
    if (wake_open(m) != 0) {
        snprintf(err, errlen, "cannot make the metrics thread's wake: %s",
                 sock_strerror(sock_errno()));
        lsvc_metrics_close(m);
        return NULL;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(m->listen_fd, (struct sockaddr *)&bound, &blen) != 0)
        bound = sa;
    addr_text(&bound, m->where, sizeof m->where);
    return m;
}

int lsvc_metrics_start(lsvc_metrics *m, lsvc_host *h)
{
    if (!m)
        return 0;
    m->host = h;
    int rc = pthread_create(&m->thread, NULL, metrics_main, m);
    if (rc != 0)
        return rc;
    m->started = true;
    lsvc_log(LSVC_LOG_INFO, NULL, "metrics: listening on %s (GET /healthz, GET /metrics)",
             m->where);
    return 0;
}

void lsvc_metrics_close(lsvc_metrics *m)
{
    if (!m)
        return;
    if (m->started) {
        atomic_store(&m->quit, true);
        wake(m);
        pthread_join(m->thread, NULL);
    }
    for (size_t i = 0; i < METRICS_MAX_CONNS; i++)
        conn_close(&m->conns[i]);
    if (m->listen_fd != BAD_SOCK)
        sock_close(m->listen_fd);
#ifdef _WIN32
    if (m->wake_rd != BAD_SOCK)
        sock_close(m->wake_rd);
    WSACleanup();
#else
    if (m->wake_rd >= 0)
        close(m->wake_rd);
    if (m->wake_wr >= 0)
        close(m->wake_wr);
#endif
    free(m);
}
