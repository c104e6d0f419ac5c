/*
 * posix_endpoint.c - the control endpoint of a POSIX host (the host's side).
 *
 * Each hosted service gets an AF_UNIX stream socket NAME.sock (mode 0600)
 * in the runtime directory (mode 0700, owned by the host's user). One
 * endpoint thread serves them all: it checks the peer's uid (SO_PEERCRED:
 * the host's own user or root), reads one request per connection, all
 * clients at once and each with a deadline, hands a control to the
 * service's control handler (which never blocks), replies without
 * waiting and closes. A malformed request gets an "ERR" reply; the thread
 * goes on. The client's side (a request, the listing, the probe a host
 * makes before it takes a name over) is posix_endpoint_client.c, which
 * this file calls and which never calls back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "posix.h"

struct lsvc_endpoint {
    lsvc_host *host;
    int *fds; /* listening socket of host->svcs[i] */
    char **paths;
    int wake[2];
    int sigfd; /* signals for the host (lsvc_signals_catch), taken here */
    lsvc_signal_fn on_signal;
    pthread_t thread;
    bool started;
    bool prepared; /* fds bound under temporary names (lsvc_endpoint_prepare) */
    lsvc_streams *streams; /* evals' and log streams' clients (posix_stream.c) */
};

static lsvc_endpoint *endpoint_new(lsvc_host *h, char *err, size_t errlen)
{
    lsvc_endpoint *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->host = h;
    e->fds = malloc(lsvc_host_count(h) * sizeof *e->fds);
    e->paths = calloc(lsvc_host_count(h), sizeof *e->paths);
    e->wake[0] = e->wake[1] = -1;
    e->sigfd = -1;
    for (size_t i = 0; e->fds && i < lsvc_host_count(h); i++)
        e->fds[i] = -1;
    if (!e->fds || !e->paths || pipe2(e->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "out of resources: %s", strerror(errno));
        lsvc_endpoint_close(e);
        return NULL;
    }
    return e;
}

/*
 * Binding a socket makes a file, which costs a start more than all the
 * rest of the endpoint (a tenth of a millisecond or more on ext4), and its
 * name is the service's, known once the script has loaded. So while the
 * scripts load, the main thread binds every socket under a temporary name
 * in the runtime directory (".luasvc-PID-I.tmp": no ".sock", so no client
 * or listing sees it) and listens; lsvc_endpoint_open then only renames
 * it, without replacing a file that is there. Best effort: NULL, with
 * nothing left behind, when any of it fails; open then binds as ever and
 * tells what is wrong. No umask here: a script's chunk may be making files
 * meanwhile; the directory is private to this user (checked) and the
 * socket's mode is set before it gets its name.
 */
lsvc_endpoint *lsvc_endpoint_prepare(lsvc_host *h)
{
    char dir[200], err[512];
    if (lsvc_runtime_dir(dir, sizeof dir, err, sizeof err) != 0 ||
        lsvc_rundir_check(dir, err, sizeof err) != 0)
        return NULL;
    lsvc_endpoint *e = endpoint_new(h, err, sizeof err);
    if (!e)
        return NULL;
    for (size_t i = 0; i < lsvc_host_count(h); i++) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/.luasvc-%ld-%zu.tmp", dir,
                         (long)getpid(), i);
        if (n < 0 || (size_t)n >= sizeof sa.sun_path)
            goto fail;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            goto fail;
        e->fds[i] = fd;
        unlink(sa.sun_path); /* left by a crashed host of the same pid */
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            goto fail;
        e->paths[i] = strdup(sa.sun_path);
        if (!e->paths[i]) {
            unlink(sa.sun_path);
            goto fail;
        }
        if (chmod(sa.sun_path, 0600) != 0 || listen(fd, 16) != 0)
            goto fail;
    }
    e->prepared = true;
    return e;
fail:
    lsvc_endpoint_close(e); /* closes and unlinks what was made */
    return NULL;
}

/* The error of a start that finds a live endpoint at sa, or cannot tell
 * (cannot: the errno of the probe; a script that took every descriptor). */
static void already_running(const char *name, const struct sockaddr_un *sa, int cannot, char *err,
                            size_t errlen)
{
    if (cannot)
        snprintf(err, errlen,
                 "cannot tell whether service '%s' is already running (endpoint %s): %s", name,
                 sa->sun_path, strerror(cannot));
    else
        snprintf(err, errlen, "service '%s' is already running (endpoint %s)", name, sa->sun_path);
}

/* Give prepared socket i its name sa. 0: done; 1: not done, bind as ever
 * (renameat2 without replacing unsupported here, or the temporary socket
 * went away); -1: err set (the service is already running). */
static int place_prepared(lsvc_endpoint *e, size_t i, const struct sockaddr_un *sa, char *err,
                          size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (renameat2(AT_FDCWD, e->paths[i], AT_FDCWD, sa->sun_path, RENAME_NOREPLACE) == 0) {
            char *final = strdup(sa->sun_path);
            if (!final) {
                unlink(sa->sun_path);
                return 1;
            }
            free(e->paths[i]);
            e->paths[i] = final;
            return 0;
        }
        if (errno != EEXIST || attempt > 0)
            break;
        /* Someone's socket is there: alive, or left by a crashed host? */
        int cannot;
        if (lsvc_endpoint_probe(sa, &cannot)) {
            already_running(lsvc_service_name(lsvc_host_service(e->host, i)), sa, cannot, err,
                            errlen);
            return -1;
        }
        unlink(sa->sun_path);
    }
    close(e->fds[i]);
    e->fds[i] = -1;
    unlink(e->paths[i]);
    free(e->paths[i]);
    e->paths[i] = NULL;
    return 1;
}

lsvc_endpoint *lsvc_endpoint_open(lsvc_host *h, lsvc_endpoint *pre, char *err, size_t errlen)
{
    char dir[200];
    if (lsvc_runtime_dir(dir, sizeof dir, err, errlen) != 0 ||
        lsvc_rundir_check(dir, err, errlen) != 0) {
        lsvc_endpoint_close(pre);
        return NULL;
    }
    for (size_t i = 0; i < lsvc_host_count(h); i++)
        for (size_t j = 0; j < i; j++) {
            lsvc_service *a = lsvc_host_service(h, i), *b = lsvc_host_service(h, j);
            if (strcmp(lsvc_service_name(a), lsvc_service_name(b)) == 0) {
                snprintf(err, errlen, "%s and %s both name their service '%s'",
                         lsvc_service_script(b), lsvc_service_script(a), lsvc_service_name(a));
                lsvc_endpoint_close(pre);
                return NULL;
            }
        }
    lsvc_endpoint *e = pre ? pre : endpoint_new(h, err, errlen);
    if (!e)
        return NULL;
    mode_t old = umask(077);
    for (size_t i = 0; i < lsvc_host_count(h); i++) {
        struct sockaddr_un sa;
        if (lsvc_endpoint_sock_path(dir, lsvc_service_name(lsvc_host_service(h, i)), &sa, err,
                                    errlen) != 0)
            goto fail_umask;
        if (e->prepared && e->fds[i] >= 0) {
            int placed = place_prepared(e, i, &sa, err, errlen);
            if (placed < 0)
                goto fail_umask;
            if (placed == 0)
                continue;
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            goto fail_umask;
        }
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            if (errno != EADDRINUSE) {
                snprintf(err, errlen, "bind %s: %s", sa.sun_path, strerror(errno));
                close(fd);
                goto fail_umask;
            }
            /* Someone's socket is there: alive, or left by a crashed host? */
            int cannot;
            if (lsvc_endpoint_probe(&sa, &cannot)) {
                close(fd);
                already_running(lsvc_service_name(lsvc_host_service(h, i)), &sa, cannot, err,
                                errlen);
                goto fail_umask;
            }
            unlink(sa.sun_path);
            if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
                snprintf(err, errlen, "bind %s: %s", sa.sun_path, strerror(errno));
                close(fd);
                goto fail_umask;
            }
        }
        chmod(sa.sun_path, 0600);
        e->fds[i] = fd;
        e->paths[i] = strdup(sa.sun_path);
        if (listen(fd, 16) != 0) {
            snprintf(err, errlen, "listen %s: %s", sa.sun_path, strerror(errno));
            goto fail_umask;
        }
    }
    umask(old);
    return e;
fail_umask:
    umask(old);
    lsvc_endpoint_close(e);
    return NULL;
}

/* Never waits: a client that does not read its reply loses it (a reply
 * fits the socket's buffer many times over). */
static void reply(int fd, const char *s)
{
    size_t n = strlen(s), off = 0;
    while (off < n) {
        ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

static void reply_err(int fd, uint32_t code, const char *text)
{
    char buf[600];
    snprintf(buf, sizeof buf, "ERR %u %s\n", code, text);
    reply(fd, buf);
}

/* Reply "OK <status json>": the JSON at whatever length it takes (every
 * string of it may be escaped to six times its size), in one send (the
 * client wakes once). */
static void reply_status(int fd, lsvc_service *svc)
{
    char small[4096], *line = small;
    size_t need = lsvc_status_json(svc, small + 3, sizeof small - 4); /* "OK " ... "\n" */
    if (need >= sizeof small - 4) {
        line = malloc(need + 5);
        if (!line) {
            reply_err(fd, 8, "Not enough memory resources are available to process this command.");
            return;
        }
        size_t again = lsvc_status_json(svc, line + 3, need + 1); /* it may have changed */
        need = again < need ? again : need;
    }
    memcpy(line, "OK ", 3);
    memcpy(line + 3 + need, "\n", 2);
    reply(fd, line);
    if (line != small)
        free(line);
}

/* The peer may use the endpoint (and its console): the host's own user
 * or root. *cred: who it is. */
static bool peer_allowed(lsvc_service *svc, int fd, struct ucred *cred)
{
    socklen_t cl = sizeof *cred;
    *cred = (struct ucred){.pid = 0, .uid = (uid_t)-1};
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &cl) == 0 &&
        (cred->uid == geteuid() || cred->uid == 0))
        return true;
    lsvc_log(LSVC_LOG_WARNING, lsvc_service_name(svc), "endpoint: refused a client of uid %u",
             (unsigned)cred->uid);
    reply_err(fd, 5, "Access is denied.");
    return false;
}

/*
 * The clients being read, all at once: one that is slow or silent delays
 * nobody else. Each has LSVC_ENDPOINT_REQUEST_MS for its whole request
 * (the luasvc client sends it at once; an EVAL's chunk included); then
 * what came is answered (a partial request gets an ERR). When the table
 * is full, the client whose time runs out first makes room.
 */
#define MAX_CLIENTS 64
#define LSVC_ENDPOINT_REQUEST_MS 1000

typedef struct client {
    int fd; /* -1: free (or handed over to the streams) */
    size_t svc;
    uint64_t deadline_ns;
    struct ucred cred;
    size_t len;   /* of buf: the request line */
    char *chunk;  /* EVAL: its chunk, being read (NULL: none) */
    uint32_t need, got;
    bool trailing; /* more came than the chunk's length */
    char buf[LSVC_PROTO_MAX + 1];
} client;

/* An EVAL's or a LOG's answer: handed over to the streams. */
static void answer_stream(lsvc_endpoint *e, lsvc_service *svc, client *c, const lsvc_request *req)
{
    char who[96];
    snprintf(who, sizeof who, "uid %u (pid %d)", (unsigned)c->cred.uid, (int)c->cred.pid);
    uint32_t rc;
    if (req->kind == LSVC_REQ_LOG) {
        rc = lsvc_streams_log(e->streams, svc, c->fd, who);
    } else if (c->trailing || c->got < c->need) {
        reply_err(c->fd, LSVC_ERROR_INVALID_PARAMETER,
                  c->trailing ? "trailing bytes after the chunk" : "truncated chunk");
        return;
    } else {
        c->chunk[c->need] = '\0';
        rc = lsvc_streams_eval(e->streams, svc, c->fd, c->chunk, c->need, who);
        c->chunk = NULL; /* taken */
    }
    if (rc == LSVC_NO_ERROR)
        c->fd = -1; /* the streams' now */
    else
        reply_err(c->fd, rc, lsvc_win32_message(rc));
}

/* Answer the request client c sent (what came before it stopped, or its
 * time ran out). */
static void answer(lsvc_endpoint *e, lsvc_service *svc, client *c)
{
    lsvc_request req;
    char err[128];
    if (lsvc_proto_parse(c->buf, c->len, &req, err, sizeof err) != 0) {
        lsvc_log(LSVC_LOG_DEBUG, lsvc_service_name(svc), "endpoint: bad request: %s", err);
        reply_err(c->fd, LSVC_ERROR_INVALID_PARAMETER, err);
        return;
    }
    if (strcmp(req.name, lsvc_service_name(svc)) != 0) {
        reply_err(c->fd, 1060, "The specified service does not exist as an installed service.");
        return;
    }
    if (req.kind == LSVC_REQ_STATUS) {
        reply_status(c->fd, svc);
        return;
    }
    if (req.kind == LSVC_REQ_EVAL || req.kind == LSVC_REQ_LOG) {
        if (e->streams)
            answer_stream(e, svc, c, &req);
        else
            reply_err(c->fd, 8, "Not enough memory resources are available to process this command.");
        return;
    }
    uint32_t rc = lsvc_service_control(svc, req.code);
    if (rc == LSVC_NO_ERROR) {
        reply_status(c->fd, svc);
    } else {
        reply_err(c->fd, rc, lsvc_win32_message(rc));
    }
}

static void client_end(lsvc_endpoint *e, client *c, bool answer_it)
{
    if (answer_it)
        answer(e, lsvc_host_service(e->host, c->svc), c);
    if (c->fd >= 0)
        close(c->fd);
    free(c->chunk);
    c->chunk = NULL;
    c->fd = -1;
}

/* The request line is an EVAL's: its chunk is read next (what came after
 * the line is its beginning). false: not one, or not a valid line. */
static bool begin_chunk(client *c, const char *nl)
{
    lsvc_request req;
    char err[8];
    size_t head = (size_t)(nl - c->buf) + 1;
    if (c->len < 5 || memcmp(c->buf, "EVAL ", 5) != 0 ||
        lsvc_proto_parse(c->buf, head, &req, err, sizeof err) != 0)
        return false;
    c->chunk = malloc((size_t)req.payload_len + 1);
    if (!c->chunk)
        return false;
    size_t extra = c->len - head;
    c->need = req.payload_len;
    c->got = (uint32_t)(extra < c->need ? extra : c->need);
    c->trailing = extra > c->need;
    memcpy(c->chunk, c->buf + head, c->got);
    c->len = head;
    return true;
}

/* Read what client c sent; answer once it is a whole line (and an EVAL's
 * whole chunk), or all it will send, or as much as a request may be. */
static void client_read(lsvc_endpoint *e, client *c)
{
    for (;;) {
        bool in_chunk = c->chunk != NULL;
        char *dst = in_chunk ? c->chunk + c->got : c->buf + c->len;
        size_t room = in_chunk ? c->need - c->got : sizeof c->buf - c->len;
        ssize_t r = room ? recv(c->fd, dst, room, 0) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r > 0 && in_chunk)
            c->got += (uint32_t)r;
        else if (r > 0)
            c->len += (size_t)r;
        if (in_chunk) {
            if (r <= 0 || c->got == c->need) {
                client_end(e, c, true);
                return;
            }
            continue;
        }
        const char *nl = memchr(c->buf, '\n', c->len);
        if (nl && begin_chunk(c, nl)) {
            if (c->got == c->need) { /* all there already (an empty chunk) */
                client_end(e, c, true);
                return;
            }
            continue;
        }
        if (r <= 0 || nl || c->len == sizeof c->buf) {
            client_end(e, c, true);
            return;
        }
    }
}

/* Take a connection on listener i into a free slot. false: accept failed
 * with no connection to take (or out of descriptors). */
static bool client_accept(lsvc_endpoint *e, client *cl, size_t i)
{
    int fd = accept4(e->fds[i], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return false;
    struct ucred cred;
    if (!peer_allowed(lsvc_host_service(e->host, i), fd, &cred)) {
        close(fd);
        return true;
    }
    client *slot = NULL, *oldest = NULL;
    for (size_t k = 0; k < MAX_CLIENTS && !slot; k++) {
        if (cl[k].fd < 0)
            slot = &cl[k];
        else if (!oldest || cl[k].deadline_ns < oldest->deadline_ns)
            oldest = &cl[k];
    }
    if (!slot) {
        client_end(e, oldest, true);
        slot = oldest;
    }
    *slot = (client){.fd = fd,
                     .svc = i,
                     .cred = cred,
                     .deadline_ns = lsvc_now_ns() + LSVC_ENDPOINT_REQUEST_MS * 1000000ull};
    client_read(e, slot); /* the request is mostly there already: no poll for it */
    return true;
}

/* Take the signals that came (the pipe) to the host. */
static void take_signals(lsvc_endpoint *e)
{
    unsigned char b[64];
    ssize_t r;
    while ((r = read(e->sigfd, b, sizeof b)) > 0)
        for (ssize_t i = 0; i < r; i++)
            if (e->on_signal)
                e->on_signal(e->host, (int)b[i]);
}

/*
 * The endpoint's loop: listeners, the wake pipe, the signals and the
 * clients being read, in one poll; nothing in it waits on a client, so a
 * signal is acted on at once whatever clients do.
 *
 * Out of descriptors (a script that leaks them: they share the process),
 * accept fails while the client waits. The loop keeps one descriptor in
 * reserve (/dev/null): it gives it up to take that client, who is read
 * and answered as any other (a request needs no descriptor but the
 * client's), and takes it back once a descriptor is free again, the
 * client's when it is closed. Meanwhile a listener whose accept fails
 * rests for a moment instead of spinning, and is polled again as soon as
 * the reserve is back. Lost to a leaking thread, the reserve is looked
 * for again at each turn; until then listeners only rest. The reserve is
 * first taken by lsvc_signals_catch, before any script runs.
 */
/* The poll entries of a turn: the listeners not resting, the wake pipe,
 * the signals, then only the clients there (poll refuses more entries
 * than RLIMIT_NOFILE, EINVAL; each entry here is an open descriptor): entry
 * n + 2 + j is client at[j]. Returns how many; *next is the earliest time
 * something is due (a listener's rest, a client's deadline), 0 for none. */
static size_t poll_entries(lsvc_endpoint *e, size_t n, const uint64_t *rest, const client *cl,
                           struct pollfd *p, size_t *at, uint64_t now, uint64_t *next)
{
    *next = 0;
    for (size_t i = 0; i < n; i++) {
        bool resting = rest[i] > now;
        p[i] = (struct pollfd){.fd = resting ? -1 : e->fds[i], .events = POLLIN};
        if (resting && (!*next || rest[i] < *next))
            *next = rest[i];
    }
    p[n] = (struct pollfd){.fd = e->wake[0], .events = POLLIN};
    p[n + 1] = (struct pollfd){.fd = e->sigfd, .events = POLLIN};
    size_t used = n + 2;
    for (size_t k = 0; k < MAX_CLIENTS; k++) {
        if (cl[k].fd < 0)
            continue;
        at[used - n - 2] = k;
        p[used++] = (struct pollfd){.fd = cl[k].fd, .events = POLLIN};
        if (!*next || cl[k].deadline_ns < *next)
            *next = cl[k].deadline_ns;
    }
    return used;
}

/* poll failed (not EINTR): never give up, a host without its endpoint
 * takes no control and no signal (the limit lowered under it, say); the
 * wake pipe and the signals are still read (both non-blocking). Returns
 * true when the endpoint is asked to end. */
static bool poll_failed(lsvc_endpoint *e, bool *told)
{
    if (!*told)
        lsvc_log(LSVC_LOG_ERROR, NULL, "endpoint: poll: %s; trying again", strerror(errno));
    *told = true;
    struct timespec pause = {0, 100000000};
    nanosleep(&pause, NULL);
    char b;
    if (read(e->wake[0], &b, 1) == 1)
        return true;
    take_signals(e);
    return false;
}

/* A few clients of listener i at a time (the others wait); out of
 * descriptors, the reserve goes to the client, or the listener rests. */
static void accept_burst(lsvc_endpoint *e, client *cl, size_t i, int *spare, uint64_t *rest,
                         uint64_t now)
{
    for (int burst = 0; burst < 16; burst++) {
        if (client_accept(e, cl, i))
            continue;
        if ((errno == EMFILE || errno == ENFILE) && *spare >= 0) {
            close(*spare); /* the reserve, for this client */
            *spare = -1;
            if (client_accept(e, cl, i))
                continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            rest[i] = now + 100000000ull;
        return;
    }
}

static void *endpoint_main(void *arg)
{
    lsvc_endpoint *e = arg;
    size_t n = lsvc_host_count(e->host), np = n + 2 + MAX_CLIENTS + LSVC_STREAMS_POLL;
    lsvc_rundir_sweep();
    struct pollfd *p = calloc(np, sizeof *p);
    uint64_t *rest = calloc(n, sizeof *rest); /* listener i polled again after */
    client *cl = calloc(MAX_CLIENTS, sizeof *cl);
    size_t at[MAX_CLIENTS];
    bool told = false; /* a failing poll was logged */
    int spare = lsvc_signals_spare();
    if (!p || !rest || !cl)
        goto out;
    for (size_t k = 0; k < MAX_CLIENTS; k++)
        cl[k].fd = -1;
    for (size_t i = 0; i < n; i++) /* accept takes what is there, never waits */
        fcntl(e->fds[i], F_SETFL, fcntl(e->fds[i], F_GETFL) | O_NONBLOCK);
    for (;;) {
        if (spare < 0 && (spare = lsvc_take_spare()) >= 0)
            memset(rest, 0, n * sizeof *rest); /* back: the listeners may take one each */
        uint64_t now = lsvc_now_ns(), next;
        size_t used = poll_entries(e, n, rest, cl, p, at, now, &next);
        size_t streams_at = used;
        if (e->streams)
            used += lsvc_streams_poll(e->streams, p + used);
        int timeout = !next ? -1 : next <= now ? 0 : (int)((next - now) / 1000000u) + 1;
        if (poll(p, used, timeout) < 0) {
            if (errno != EINTR && poll_failed(e, &told))
                break;
            continue;
        }
        told = false;
        if (p[n].revents)
            break;
        if (p[n + 1].revents & POLLIN)
            take_signals(e);
        for (size_t j = n + 2; j < streams_at; j++)
            if (p[j].revents)
                client_read(e, &cl[at[j - n - 2]]);
        if (e->streams)
            lsvc_streams_events(e->streams, p + streams_at);
        now = lsvc_now_ns();
        for (size_t k = 0; k < MAX_CLIENTS; k++)
            if (cl[k].fd >= 0 && cl[k].deadline_ns <= now)
                client_end(e, &cl[k], true); /* its time is up: answer what came */
        for (size_t i = 0; i < n; i++)
            if (p[i].revents & POLLIN)
                accept_burst(e, cl, i, &spare, rest, now);
    }
out:
    for (size_t k = 0; cl && k < MAX_CLIENTS; k++) {
        if (cl[k].fd >= 0)
            close(cl[k].fd);
        free(cl[k].chunk);
    }
    if (spare >= 0)
        close(spare);
    free(cl);
    free(rest);
    free(p);
    return NULL;
}

int lsvc_endpoint_start(lsvc_endpoint *e, const sigset_t *signals, lsvc_signal_fn on_signal)
{
    e->on_signal = on_signal;
    e->streams = lsvc_streams_new(); /* NULL: the console is refused */
    e->sigfd = signals ? lsvc_signals_fd() : -1; /* lsvc_signals_catch's */
    int rc = pthread_create(&e->thread, NULL, endpoint_main, e);
    e->started = rc == 0;
    return rc;
}

void lsvc_endpoint_close(lsvc_endpoint *e)
{
    if (!e)
        return;
    if (e->started) {
        ssize_t w = write(e->wake[1], "x", 1);
        (void)w;
        pthread_join(e->thread, NULL);
    }
    for (size_t i = 0; e->fds && i < lsvc_host_count(e->host); i++) {
        if (e->fds[i] >= 0)
            close(e->fds[i]);
        if (e->paths && e->paths[i]) {
            unlink(e->paths[i]);
            free(e->paths[i]);
        }
    }
    lsvc_streams_free(e->streams); /* after the thread: it was its */
    if (e->wake[0] >= 0)
        close(e->wake[0]);
    if (e->wake[1] >= 0)
        close(e->wake[1]);
    free(e->fds);
    free(e->paths);
    free(e);
}
