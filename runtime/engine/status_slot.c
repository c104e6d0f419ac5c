/*
 * status_slot.c - a script's `status_slot = "NAME"`: the runtime posts the
 * service's every state change and every log line at info or above to that
 * mailslot, one JSON object per message:
 *   {"service":..,"state":..,"time":..,"level":..,"text":..,"event":"state"|"log"}
 * time is UTC, ISO 8601 with milliseconds.
 *
 * It is hooked up from above: an observer of the services' reports
 * (service.c) and a sink of the log (log.c), registered by the first
 * binding. Any thread may post (status reports come from the control handler's
 * threads, the worker and the watchdog; log lines from anywhere). Posts
 * never block (the slot's writes do not) and never log through the log
 * path they serve; a missing reader is normal (nobody is listening) and
 * costs one failed sendto. One mutex guards the bindings and orders the
 * messages: a reader sees them in the order they were posted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "private.h"

typedef struct binding {
    lsvc_service *svc;
    char service[128];
    char slot[96];
    lsvc_slot_writer *w;
    int last_state; /* last state posted, for log lines and to skip checkpoints */
    lsvc_slot_rc last_rc;
    char *buf;    /* LSVC_SLOT_MAX bytes, the message being built */
    bool started; /* the host let the service start: posts go out */
    struct binding *next;
} binding;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static binding *bindings;
static atomic_int nbindings;
static _Thread_local bool quiet; /* posting from inside the post path */

static void slot_state(lsvc_service *svc, const lsvc_status *st);
static void slot_log(lsvc_level lv, const char *service, const char *text);
static void slot_release(lsvc_service *svc, bool go);
static void slot_front_end(bool begin);

static const lsvc_observer observer = {slot_state, slot_front_end, slot_release};
static pthread_once_t registered = PTHREAD_ONCE_INIT;

/* Hooked up from above by the first binding: an observer of the services'
 * reports and a sink of the log (info and above, whatever is shown). */
static void register_once(void)
{
    lsvc_service_observe(&observer);
    lsvc_log_add_sink(slot_log, LSVC_LOG_INFO, false);
}

static binding *find_svc(lsvc_service *svc)
{
    for (binding *b = bindings; b; b = b->next)
        if (b->svc == svc)
            return b;
    return NULL;
}

static void unbind(binding *b)
{
    binding **pp = &bindings;
    while (*pp && *pp != b)
        pp = &(*pp)->next;
    if (*pp)
        *pp = b->next;
    lsvc_slot_writer_close(b->w);
    free(b->buf);
    free(b);
    atomic_fetch_sub(&nbindings, 1);
}

size_t lsvc_status_slot_json(char *buf, size_t len, const char *service, const char *state,
                             const char *level, const char *text, const char *event)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t secs = tv.tv_sec;
#ifdef _WIN32
    gmtime_s(&tm, &secs);
#else
    gmtime_r(&secs, &tm);
#endif
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", (long)tv.tv_usec / 1000);

    lsvc_buf b = lsvc_buf_init(buf, len);
    lsvc_buf_add(&b, "{\"service\":");
    lsvc_buf_json(&b, service);
    lsvc_buf_add(&b, ",\"state\":");
    lsvc_buf_json(&b, state);
    lsvc_buf_printf(&b, ",\"time\":\"%s\",\"level\":", when);
    lsvc_buf_json(&b, level);
    lsvc_buf_add(&b, ",\"text\":");
    lsvc_buf_json(&b, text);
    lsvc_buf_add(&b, ",\"event\":");
    lsvc_buf_json(&b, event);
    lsvc_buf_add(&b, "}");
    return b.len;
}

/* Post b->buf (len bytes). Called with mu held. Returns the result and
 * whether it is news worth a log line (a first failure, a recovery). */
static bool post(binding *b, size_t len, char *err, size_t errlen)
{
    lsvc_slot_rc rc = lsvc_slot_write(b->w, b->buf, len, err, errlen);
    bool news = rc != b->last_rc && rc != LSVC_SLOT_NOREADER && b->last_rc != LSVC_SLOT_NOREADER;
    b->last_rc = rc;
    return news && rc != LSVC_SLOT_OK;
}

static void state_text(const lsvc_status *st, char *buf, size_t len)
{
    if (st->state != LSVC_STOPPED)
        snprintf(buf, len, "%s", lsvc_state_name(st->state));
    else
        lsvc_exit_text(st->exit, NULL, buf, len);
}

void lsvc_status_slot_set(lsvc_service *svc, const char *slot)
{
    if (slot)
        pthread_once(&registered, register_once);
    char err[512] = "";
    char name[128];
    snprintf(name, sizeof name, "%s", lsvc_service_name(svc));
    lsvc_status st;
    bool go = lsvc_service_released_status(svc, &st); /* a reload: the service is under way */

    pthread_mutex_lock(&mu);
    binding *b = find_svc(svc);
    if (b && slot && strcmp(b->slot, slot) == 0) {
        snprintf(b->service, sizeof b->service, "%s", name);
        pthread_mutex_unlock(&mu);
        return;
    }
    if (b)
        unbind(b);
    b = NULL;
    if (slot) {
        b = calloc(1, sizeof *b);
        if (b) {
            b->buf = malloc(LSVC_SLOT_MAX);
            b->w = b->buf ? lsvc_slot_open(slot, err, sizeof err) : NULL;
        }
        if (b && b->w) {
            b->svc = svc;
            snprintf(b->service, sizeof b->service, "%s", name);
            snprintf(b->slot, sizeof b->slot, "%s", slot);
            /* posts start from the state the service is in: at once after
             * a reload (go), else when the host lets it start */
            b->last_state = go ? (int)st.state : 0;
            b->started = go;
            b->next = bindings;
            bindings = b;
            atomic_fetch_add(&nbindings, 1);
        } else {
            if (b)
                free(b->buf);
            free(b);
            b = NULL;
            if (!err[0])
                snprintf(err, sizeof err, "out of memory");
        }
    }
    bool news = false;
    if (b && go) {
        char text[256];
        state_text(&st, text, sizeof text);
        size_t n = lsvc_status_slot_json(b->buf, LSVC_SLOT_MAX, b->service,
                                         lsvc_state_name(st.state), "info", text, "state");
        news = post(b, n, err, sizeof err);
    }
    pthread_mutex_unlock(&mu);
    if ((slot && !b) || news) {
        quiet = true;
        lsvc_log(LSVC_LOG_WARNING, name, "status_slot %s: %s", slot, err);
        quiet = false;
    }
}

static void slot_state(lsvc_service *svc, const lsvc_status *st)
{
    if (atomic_load(&nbindings) == 0 || quiet)
        return;
    char err[512], name[128] = "", slot[96] = "";
    bool news = false;
    pthread_mutex_lock(&mu);
    binding *b = find_svc(svc);
    if (b && b->started &&
        b->last_state != (int)st->state) { /* a checkpoint alone is no state change */
        b->last_state = (int)st->state;
        char text[256];
        state_text(st, text, sizeof text);
        bool failed = st->state == LSVC_STOPPED && st->exit.win32 != LSVC_NO_ERROR;
        size_t n =
            lsvc_status_slot_json(b->buf, LSVC_SLOT_MAX, b->service, lsvc_state_name(st->state),
                                  failed ? "error" : "info", text, "state");
        news = post(b, n, err, sizeof err);
        memcpy(name, b->service, sizeof name);
        memcpy(slot, b->slot, sizeof slot);
        if (st->state == LSVC_STOPPED)
            unbind(b); /* the last message of this run */
    }
    pthread_mutex_unlock(&mu);
    if (news) {
        quiet = true;
        lsvc_log(LSVC_LOG_WARNING, name, "status_slot %s: %s", slot, err);
        quiet = false;
    }
}

static void slot_log(lsvc_level lv, const char *service, const char *text)
{
    if (atomic_load(&nbindings) == 0 || quiet || !service)
        return;
    /* As long as a log line at most (log.c cuts there too), at a UTF-8
     * character boundary, so the JSON always fits one message. */
    char cut[8192];
    size_t tl = strlen(text);
    if (tl >= sizeof cut) {
        tl = sizeof cut - 4;
        while (tl && ((unsigned char)text[tl] & 0xC0) == 0x80)
            tl--;
        memcpy(cut, text, tl);
        memcpy(cut + tl, "...", 4);
        text = cut;
    }
    char err[512], slot[96] = "";
    bool news = false;
    pthread_mutex_lock(&mu);
    for (binding *b = bindings; b; b = b->next) {
        if (!b->started || strcmp(b->service, service) != 0)
            continue;
        const char *state = lsvc_state_name((lsvc_state)b->last_state);
        size_t n = lsvc_status_slot_json(b->buf, LSVC_SLOT_MAX, b->service,
                                         state ? state : "START_PENDING", lsvc_level_name(lv), text,
                                         "log");
        news = post(b, n, err, sizeof err);
        memcpy(slot, b->slot, sizeof slot);
        break;
    }
    pthread_mutex_unlock(&mu);
    if (news) {
        quiet = true;
        lsvc_log(LSVC_LOG_WARNING, service, "status_slot %s: %s", slot, err);
        quiet = false;
    }
}

static void slot_release(lsvc_service *svc, bool go)
{
    if (atomic_load(&nbindings) == 0)
        return;
    lsvc_status st;
    lsvc_service_get_status(svc, &st);
    pthread_mutex_lock(&mu);
    binding *b = find_svc(svc);
    if (b && !go)
        unbind(b);
    else if (b)
        b->started = true;
    pthread_mutex_unlock(&mu);
    if (b && go) /* where the reader's story starts: START_PENDING */
        slot_state(svc, &st);
}

/* Around a front end's report: its own log line for a state change is
 * not posted a second time. */
static void slot_front_end(bool begin) { quiet = begin; }
