/*
 * posix_systemd.c - `luasvc run` under systemd (Type=notify): maps the
 * service model onto sd_notify messages, pings the systemd watchdog while
 * every worker is responsive, and tells the log to speak journald's
 * priority prefixes.
 *
 * The protocol is sd_notify's documented datagram protocol (sd_notify(3),
 * "the notification protocol"): one AF_UNIX datagram of newline-separated
 * KEY=VALUE lines to the socket named by $NOTIFY_SOCKET (a path, or an
 * abstract name when it starts with '@'); the kernel attaches our
 * credentials, which is all systemd checks (NotifyAccess=main). It is a
 * few dozen lines, so luasvc does not link libsystemd for it: no new
 * build or run-time dependency, and the same binary works with or without
 * systemd installed.
 *
 * The model's mapping (README.md, "Under systemd"):
 * STATUS= is the state, with checkpoint and wait hint while pending, and
 * the script's text (ctx:status, ctx:progress) after a colon.
 *   START_PENDING + progress -> EXTEND_TIMEOUT_USEC=wait hint (not before
 *       the first progress: a start that never shows progress must hit
 *       TimeoutStartSec), STATUS=
 *   RUNNING (first time)     -> READY=1, STATUS=
 *   PAUSE/CONTINUE pending, PAUSED -> STATUS=
 *   STOP_PENDING             -> STOPPING=1, STATUS=, EXTEND_TIMEOUT_USEC on
 *       progress
 *   PARAMCHANGE, hot reload  -> RELOADING=1 ... READY=1
 *   STOPPED                  -> STATUS=, ERRNO= for a forced stop (the
 *       process exit status carries the service's exit code)
 * With several services in one host: READY=1 once all have reached
 * RUNNING, STOPPING=1 once all are stopping, STATUS= lists them.
 *
 * Threads: lsvc_systemd_report runs on whichever thread changed a status
 * (worker, endpoint, watchdog), lsvc_systemd_reloading on a worker, the
 * notifier thread pings the watchdog. State below is under sd->mu; the
 * socket is written with one sendmsg per message (atomic for datagrams).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "posix.h"

struct lsvc_systemd {
    lsvc_host *host;
    int fd;
    struct sockaddr_un addr;
    socklen_t addrlen;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the notifier's sleep; signalled at quit */
    bool ready_sent, stopping_sent, quitting;
    unsigned reloading; /* services in a reload */
    lsvc_status *last;  /* per service, the last status reported */
    bool *seen_running;
    uint64_t watchdog_usec; /* 0: no watchdog */
    pthread_t thread;
    bool thread_started;
};

/* Send one notification; errors are ignored as sd_notify's callers do
 * (systemd gone away is no reason to stop a service). Never waits: this
 * runs on the control, signal and watchdog paths, and a manager that does
 * not read its socket must not stall them (a full socket loses the
 * message). Any thread. */
static void sd_send(lsvc_systemd *sd, const char *msg)
{
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
    struct msghdr mh = {
        .msg_name = &sd->addr, .msg_namelen = sd->addrlen, .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t r;
    do
        r = sendmsg(sd->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
}

/* "STATUS=..." for the host: the state of one service (with checkpoint and
 * wait hint while pending), or "name STATE" for each of several. sd->mu held. */
static void status_line(lsvc_systemd *sd, lsvc_buf *b)
{
    lsvc_host *h = sd->host;
    lsvc_buf_add(b, "STATUS=");
    size_t n = lsvc_host_count(h);
    for (size_t i = 0; i < n && b->len < b->cap; i++) {
        lsvc_service *svc = lsvc_host_service(h, i);
        const lsvc_status *st = &sd->last[i];
        const char *state = lsvc_state_name(st->state);
        char exit_text[LSVC_EXIT_TEXT_MAX];
        if (n > 1)
            lsvc_buf_printf(b, "%s%s ", i ? ", " : "", lsvc_service_name(svc));
        if (lsvc_state_is_pending(st->state) && st->checkpoint)
            lsvc_buf_printf(b, "%s (checkpoint %u, wait hint %u ms)", state, st->checkpoint,
                            st->wait_hint);
        else if (st->state == LSVC_STOPPED)
            lsvc_buf_add(b, lsvc_exit_text(st->exit, NULL, exit_text, sizeof exit_text));
        else
            lsvc_buf_add(b, state);
        char text[256];
        lsvc_service_get_text(svc, text, sizeof text);
        if (text[0])
            lsvc_buf_printf(b, ": %s", text);
    }
}

void lsvc_systemd_report(lsvc_systemd *sd, lsvc_service *svc, const lsvc_status *st)
{
    if (!sd)
        return;
    char msg[2048];
    lsvc_buf b = lsvc_buf_init(msg, sizeof msg);
    /* Reports come from several threads; service.c hands them over one at
     * a time and in the order of the changes (a stale one never arrives),
     * so st is the service's status as of this report. */
    pthread_mutex_lock(&sd->mu);
    lsvc_host *h = sd->host;
    size_t idx = lsvc_service_index(svc);
    lsvc_status prev = sd->last[idx];
    sd->last[idx] = *st;
    bool progress =
        st->state == prev.state && st->checkpoint != prev.checkpoint && st->checkpoint > 0;

    if (st->state == LSVC_RUNNING)
        sd->seen_running[idx] = true;
    /* ready once every service has reached RUNNING or has already ended
     * (one failing to start does not hold up its siblings' READY=1) */
    bool all_running = true, all_stopping = true;
    for (size_t i = 0; i < lsvc_host_count(h); i++) {
        all_running = all_running && (sd->seen_running[i] || sd->last[i].state == LSVC_STOPPED);
        lsvc_state s = sd->last[i].state;
        all_stopping = all_stopping && (s == LSVC_STOP_PENDING || s == LSVC_STOPPED);
    }
    if (!sd->ready_sent && all_running && !all_stopping) {
        sd->ready_sent = true;
        lsvc_buf_add(&b, "READY=1\n");
    }
    if (!sd->stopping_sent && all_stopping) {
        sd->stopping_sent = true;
        lsvc_buf_add(&b, "STOPPING=1\n");
    }
    /* systemd's start and stop timeouts move with the model's wait hints,
     * but only on real progress (a checkpoint), never on entry */
    if (progress && (st->state == LSVC_START_PENDING || st->state == LSVC_STOP_PENDING))
        lsvc_buf_printf(&b, "EXTEND_TIMEOUT_USEC=%llu\n",
                        (unsigned long long)st->wait_hint * 1000ull);
    if (st->state == LSVC_STOPPED &&
        (st->exit.win32 == LSVC_ERROR_TIMEOUT || st->exit.win32 == LSVC_ERROR_PROCESS_ABORTED))
        lsvc_buf_printf(&b, "ERRNO=%d\n", ETIMEDOUT); /* forced past a deadline */
    status_line(sd, &b);
    pthread_mutex_unlock(&sd->mu);
    sd_send(sd, msg);
}

void lsvc_systemd_reloading(lsvc_systemd *sd, lsvc_service *svc, bool begin)
{
    if (!sd)
        return;
    (void)svc;
    char msg[2100];
    pthread_mutex_lock(&sd->mu);
    bool send;
    if (begin) {
        send = sd->reloading++ == 0;
    } else {
        send = sd->reloading > 0 && --sd->reloading == 0;
        send = send && !sd->stopping_sent && sd->ready_sent;
    }
    lsvc_buf b = lsvc_buf_init(msg, sizeof msg);
    lsvc_buf_add(&b, begin ? "RELOADING=1\n" : "READY=1\n");
    status_line(sd, &b);
    pthread_mutex_unlock(&sd->mu);
    if (send)
        sd_send(sd, msg);
}

void lsvc_systemd_signal(lsvc_systemd *sd, int sig, bool before, bool accepted)
{
    if (!sd || sig != SIGHUP)
        return;
    /* RELOADING=1 before the control is queued, so that `systemctl reload`
     * (kill -HUP) sees it as early as possible; the worker's own
     * begin/end pair comes after and ends it with READY=1. */
    pthread_mutex_lock(&sd->mu);
    bool live = sd->ready_sent && !sd->stopping_sent;
    pthread_mutex_unlock(&sd->mu);
    if (!live)
        return;
    if (before)
        sd_send(sd, "RELOADING=1");
    else if (!accepted) {
        pthread_mutex_lock(&sd->mu);
        bool idle = sd->reloading == 0;
        pthread_mutex_unlock(&sd->mu);
        if (idle)
            sd_send(sd, "READY=1"); /* refused: nothing will end it */
    }
}

/* The notifier thread. Every quarter of WATCHDOG_USEC it wakes every
 * worker (an idle one stamps its heartbeat at that scheduler turn) and sends
 * WATCHDOG=1 if every service that is running, paused, pausing or
 * continuing has stamped within the last half period: one slow wake-up is
 * forgiven, a hang is not. A worker stuck in Lua (or in C) never returns to
 * its scheduler, its stamp ages, the pings stop, and systemd's watchdog
 * fires between 1 and 1.5 periods after the hang. */
static void *notifier_main(void *arg)
{
    lsvc_systemd *sd = arg;
    lsvc_host *h = sd->host;
    uint64_t tick_ns = sd->watchdog_usec * 1000u / 4, fresh_ns = sd->watchdog_usec * 1000u / 2;
    pthread_mutex_lock(&sd->mu);
    while (!sd->quitting) {
        uint64_t now = lsvc_now_ns();
        bool healthy = true;
        for (size_t i = 0; i < lsvc_host_count(h); i++) {
            lsvc_service *svc = lsvc_host_service(h, i);
            /* starting and stopping have their own deadlines (luasvc's
             * and TimeoutStartSec/TimeoutStopSec); a long load is no hang */
            lsvc_state st = sd->last[i].state;
            if (st == LSVC_STOPPED || st == LSVC_START_PENDING || st == LSVC_STOP_PENDING)
                continue;
            uint64_t beat = lsvc_service_heartbeat(svc);
            if (beat + fresh_ns < now) {
                healthy = false;
                break;
            }
        }
        pthread_mutex_unlock(&sd->mu);
        if (healthy)
            sd_send(sd, "WATCHDOG=1");
        for (size_t i = 0; i < lsvc_host_count(h); i++)
            lsvc_service_wake(lsvc_host_service(h, i));
        uint64_t next = now + tick_ns;
        pthread_mutex_lock(&sd->mu);
        while (!sd->quitting && lsvc_now_ns() < next)
            lsvc_cond_wait_until(&sd->cv, &sd->mu, next);
    }
    pthread_mutex_unlock(&sd->mu);
    return NULL;
}

/* stderr is the journal when $JOURNAL_STREAM names its device and inode
 * (systemd.exec(5)); then log lines carry "<N>" priority prefixes. Checked
 * against stderr itself, so a redirected stderr gets plain lines. */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

lsvc_systemd *lsvc_systemd_open(lsvc_host *h)
{
    if (stderr_is_journal())
        lsvc_log_set_journal(true);
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return NULL;
    size_t n = strlen(path);
    lsvc_systemd *sd = calloc(1, sizeof *sd);
    if (!sd)
        return NULL;
    sd->host = h;
    sd->addr.sun_family = AF_UNIX;
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof sd->addr.sun_path) {
        lsvc_log(LSVC_LOG_WARNING, NULL, "NOTIFY_SOCKET=%s is not usable: not notifying systemd",
                 path);
        free(sd);
        return NULL;
    }
    memcpy(sd->addr.sun_path, path, n);
    if (path[0] == '@')
        sd->addr.sun_path[0] = '\0'; /* abstract namespace */
    sd->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    sd->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    size_t nsvc = lsvc_host_count(h);
    sd->last = calloc(nsvc ? nsvc : 1, sizeof *sd->last);
    sd->seen_running = calloc(nsvc ? nsvc : 1, sizeof *sd->seen_running);
    if (sd->fd < 0 || !sd->last || !sd->seen_running) {
        lsvc_log(LSVC_LOG_WARNING, NULL, "cannot notify systemd: %s", strerror(errno));
        if (sd->fd >= 0)
            close(sd->fd);
        free(sd->last);
        free(sd->seen_running);
        free(sd);
        return NULL;
    }
    for (size_t i = 0; i < nsvc; i++)
        sd->last[i].state = LSVC_STOPPED;
    pthread_mutex_init(&sd->mu, NULL);
    lsvc_cond_init(&sd->cv); /* timed waits on lsvc_now_ns's clock */

    /* WATCHDOG_USEC is meant for the main process only (WATCHDOG_PID). */
    const char *wu = getenv("WATCHDOG_USEC"), *wp = getenv("WATCHDOG_PID");
    unsigned long long usec = wu ? strtoull(wu, NULL, 10) : 0;
    if (usec && (!wp || strtol(wp, NULL, 10) == (long)getpid()))
        sd->watchdog_usec = usec;
    /* Not for the script's own child processes; no thread runs yet. */
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    return sd;
}

int lsvc_systemd_start(lsvc_systemd *sd)
{
    if (!sd || !sd->watchdog_usec)
        return 0;
    int rc = pthread_create(&sd->thread, NULL, notifier_main, sd);
    if (rc == 0)
        sd->thread_started = true;
    return rc;
}

void lsvc_systemd_close(lsvc_systemd *sd)
{
    if (!sd)
        return;
    pthread_mutex_lock(&sd->mu);
    sd->quitting = true;
    pthread_cond_broadcast(&sd->cv);
    pthread_mutex_unlock(&sd->mu);
    if (sd->thread_started)
        pthread_join(sd->thread, NULL);
    sd->thread_started = false;
    /* Not freed, the socket not closed: an abandoned worker (stuck in a C
     * call, see watchdog.c) may still report on its way out, and the
     * process ends right after this. */
}
