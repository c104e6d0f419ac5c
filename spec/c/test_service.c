/*
 * test_service.c - service.c's control handler and transitions, without a
 * worker: every control in every state (what the handler answers, the
 * pending state it enters, what it queues and reports), every pending
 * state's resolutions, STOPPED reported once, and reports numbered in the
 * order of the changes. The worker's side (which handler runs) is the
 * specs' business; this is the table the front ends rely on. Also the
 * host's start barrier: who runs the front end's preparation and ready.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/supervisor.h"

#include "check.h"

#define MAX_REPORTS 64

static lsvc_status reports[MAX_REPORTS];
static int nreports;

static void on_report(lsvc_service *svc, const lsvc_status *st, void *ud)
{
    (void)svc;
    (void)ud;
    if (nreports < MAX_REPORTS)
        reports[nreports] = *st;
    nreports++;
}

static const uint32_t ALL_ACCEPTS =
    LSVC_ACCEPT_STOP | LSVC_ACCEPT_PAUSE_CONTINUE | LSVC_ACCEPT_SHUTDOWN | LSVC_ACCEPT_PARAMCHANGE |
    LSVC_ACCEPT_POWEREVENT | LSVC_ACCEPT_SESSIONCHANGE | LSVC_ACCEPT_PRESHUTDOWN;

static lsvc_host *host;

/* A service with no worker, its report callback counting, accepting
 * `accepts`, with a handler for user code 200 only. */
static lsvc_service *new_service(uint32_t accepts)
{
    lsvc_service_opts o = {.script = "t.lua", .report = on_report};
    lsvc_service *svc = lsvc_service_new(host, &o);
    uint8_t handled[32] = {0};
    handled[(200 - 128) / 8] |= 1u << ((200 - 128) % 8);
    lsvc_service_configure(svc, "t", NULL, accepts, handled, 5000);
    return svc;
}

static lsvc_state state_of(lsvc_service *svc)
{
    lsvc_status st;
    lsvc_service_get_status(svc, &st);
    return st.state;
}

/* Bring a new service into `want` by the worker's own calls, then make
 * it accept `accepts` (as a reload would). */
static lsvc_service *service_in_all(lsvc_state want);
static lsvc_service *service_in(lsvc_state want, uint32_t accepts)
{
    lsvc_service *svc = service_in_all(want);
    uint8_t handled[32] = {0};
    handled[(200 - 128) / 8] |= 1u << ((200 - 128) % 8);
    lsvc_service_configure(svc, "t", NULL, accepts, handled, 5000);
    return svc;
}

static lsvc_service *service_in_all(lsvc_state want)
{
    lsvc_service *svc = new_service(ALL_ACCEPTS);
    if (want == LSVC_STOPPED)
        return svc;
    lsvc_service_set_state(svc, LSVC_START_PENDING, 30000);
    if (want == LSVC_START_PENDING)
        return svc;
    lsvc_service_set_state(svc, LSVC_RUNNING, 0);
    switch (want) {
    case LSVC_PAUSE_PENDING: lsvc_service_control(svc, LSVC_CTRL_PAUSE); break;
    case LSVC_PAUSED:
        lsvc_service_control(svc, LSVC_CTRL_PAUSE);
        lsvc_service_set_state(svc, LSVC_PAUSED, 0);
        break;
    case LSVC_CONTINUE_PENDING:
        lsvc_service_control(svc, LSVC_CTRL_PAUSE);
        lsvc_service_set_state(svc, LSVC_PAUSED, 0);
        lsvc_service_control(svc, LSVC_CTRL_CONTINUE);
        break;
    case LSVC_STOP_PENDING: lsvc_service_request_stop(svc); break;
    default: break;
    }
    lsvc_event ev;
    while (lsvc_queue_pop(lsvc_service_queue(svc), &ev)) {
    }
    return svc;
}

static const lsvc_state STATES[] = {LSVC_STOPPED,       LSVC_START_PENDING, LSVC_RUNNING,
                                    LSVC_PAUSE_PENDING, LSVC_PAUSED,        LSVC_CONTINUE_PENDING,
                                    LSVC_STOP_PENDING};

/* Every control code 0-300 in every state, with every accepts mask of
 * interest: the handler answers what the model says, and moves, queues and
 * reports exactly as that answer implies. */
static void test_every_control_in_every_state(void)
{
    const uint32_t masks[] = {0, LSVC_ACCEPT_STOP | LSVC_ACCEPT_SHUTDOWN, ALL_ACCEPTS};
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++) {
        for (size_t s = 0; s < sizeof STATES / sizeof *STATES; s++) {
            for (uint32_t code = 0; code <= 300; code++) {
                lsvc_state from = STATES[s];
                lsvc_service *svc = service_in(from, masks[m]);
                if (state_of(svc) != from) {
                    FAILF("setup: state %s, want %s", lsvc_state_name(state_of(svc)),
                          lsvc_state_name(from));
                    lsvc_service_free(svc);
                    continue;
                }
                bool handled = code == 200;
                uint32_t want = lsvc_control_check(from, masks[m], code, handled);
                nreports = 0;
                uint32_t got = lsvc_service_control(svc, code);
                lsvc_state after = state_of(svc);
                size_t queued = lsvc_queue_len(lsvc_service_queue(svc));
                if (got != want)
                    FAILF("%s, code %u, mask %#x: answer %u, the model says %u",
                          lsvc_state_name(from), code, masks[m], got, want);
                bool noop = (code == LSVC_CTRL_PAUSE && from == LSVC_PAUSED) ||
                            (code == LSVC_CTRL_CONTINUE && from == LSVC_RUNNING);
                lsvc_state pending = lsvc_control_pending_state(code);
                if (want != LSVC_NO_ERROR) {
                    /* refused: nothing moves, nothing queued, nothing reported */
                    if (after != from || queued || nreports)
                        FAILF("%s, code %u refused (%u) but state %s, %zu queued, %d reports",
                              lsvc_state_name(from), code, want, lsvc_state_name(after), queued,
                              nreports);
                } else if (code == LSVC_CTRL_INTERROGATE || noop) {
                    /* the current status again, nothing queued */
                    if (after != from || queued || nreports != 1 || reports[0].state != from)
                        FAILF("%s, code %u: want one report of the same state, nothing queued "
                              "(%zu queued, %d reports)",
                              lsvc_state_name(from), code, queued, nreports);
                } else {
                    lsvc_state want_state = pending ? pending : from;
                    if (after != want_state || queued != 1)
                        FAILF("%s, code %u: state %s (want %s), %zu queued (want 1)",
                              lsvc_state_name(from), code, lsvc_state_name(after),
                              lsvc_state_name(want_state), queued);
                    if (pending && (nreports != 1 || reports[0].state != pending))
                        FAILF("%s, code %u: the pending state is reported at once",
                              lsvc_state_name(from), code);
                    if (pending && nreports == 1) {
                        uint32_t mask = pending == LSVC_STOP_PENDING ? 0 : masks[m];
                        CHECK_EQ(reports[0].controls_accepted, mask);
                        CHECK_EQ(reports[0].wait_hint, 5000);
                        CHECK_EQ(reports[0].checkpoint, 0);
                    }
                    bool stop = pending == LSVC_STOP_PENDING;
                    if (lsvc_service_stopping(svc) != (stop || from == LSVC_STOP_PENDING))
                        FAILF("%s, code %u: stopping is %d", lsvc_state_name(from), code,
                              (int)lsvc_service_stopping(svc));
                }
                lsvc_service_free(svc);
            }
        }
    }
}

/* Each pending state and the states it may resolve to (the worker's
 * set_state), and a few it may not, which change nothing. */
static void test_pending_resolutions(void)
{
    struct {
        lsvc_state from, to;
        bool ok;
    } pairs[] = {
        {LSVC_START_PENDING, LSVC_RUNNING, true},
        {LSVC_START_PENDING, LSVC_PAUSED, false},
        {LSVC_PAUSE_PENDING, LSVC_PAUSED, true},
        {LSVC_PAUSE_PENDING, LSVC_RUNNING, true}, /* pause failed: back */
        {LSVC_CONTINUE_PENDING, LSVC_RUNNING, true},
        {LSVC_CONTINUE_PENDING, LSVC_PAUSED, true}, /* continue failed: back */
        {LSVC_STOP_PENDING, LSVC_RUNNING, false},
        {LSVC_STOP_PENDING, LSVC_PAUSED, false},
        {LSVC_RUNNING, LSVC_START_PENDING, false},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        lsvc_service *svc = service_in(pairs[i].from, ALL_ACCEPTS);
        nreports = 0;
        lsvc_service_set_state(svc, pairs[i].to, 0);
        lsvc_state after = state_of(svc);
        lsvc_state want = pairs[i].ok ? pairs[i].to : pairs[i].from;
        if (after != want || nreports != (pairs[i].ok ? 1 : 0))
            FAILF("%s -> %s: state %s, %d reports", lsvc_state_name(pairs[i].from),
                  lsvc_state_name(pairs[i].to), lsvc_state_name(after), nreports);
        if (pairs[i].ok && nreports == 1) {
            CHECK_EQ(reports[0].state, pairs[i].to);
            CHECK_EQ(reports[0].wait_hint, 0); /* a final state has no wait hint */
            CHECK_EQ(reports[0].controls_accepted, ALL_ACCEPTS);
        }
        lsvc_service_free(svc);
    }
}

/* STOPPED is reported once, with its exit code, from any state; progress
 * moves checkpoints only in pending states. */
static void test_stopped_once_and_progress(void)
{
    for (size_t s = 0; s < sizeof STATES / sizeof *STATES; s++) {
        lsvc_service *svc = service_in(STATES[s], ALL_ACCEPTS);
        nreports = 0;
        lsvc_service_set_stopped(svc, (lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR, 7});
        lsvc_service_set_stopped(svc, (lsvc_exit){LSVC_NO_ERROR, 0});
        lsvc_service_set_state(svc, LSVC_RUNNING, 0);
        lsvc_status st;
        lsvc_service_get_status(svc, &st);
        CHECK_EQ(st.state, LSVC_STOPPED);
        CHECK_EQ(st.exit.win32, LSVC_ERROR_SERVICE_SPECIFIC_ERROR);
        CHECK_EQ(st.exit.service_specific, 7);
        CHECK_EQ(st.controls_accepted, 0);
        if (nreports != 1)
            FAILF("from %s: %d reports of STOPPED, want 1", lsvc_state_name(STATES[s]), nreports);
        CHECK_EQ(lsvc_service_control(svc, LSVC_CTRL_STOP), LSVC_ERROR_SERVICE_NOT_ACTIVE);
        lsvc_service_free(svc);
    }

    lsvc_service *svc = service_in(LSVC_RUNNING, ALL_ACCEPTS);
    CHECK(!lsvc_service_progress(svc, 1000)); /* not pending */
    lsvc_service_control(svc, LSVC_CTRL_PAUSE);
    nreports = 0;
    CHECK(lsvc_service_progress(svc, 1234));
    CHECK(lsvc_service_progress(svc, 1234));
    CHECK_EQ(nreports, 2);
    CHECK_EQ(reports[1].checkpoint, 2);
    CHECK_EQ(reports[1].wait_hint, 1234);
    lsvc_service_set_state(svc, LSVC_PAUSED, 0);
    lsvc_status st;
    lsvc_service_get_status(svc, &st);
    CHECK_EQ(st.checkpoint, 0); /* a state change resets it */
    lsvc_service_free(svc);
}

/* Reports carry strictly increasing numbers, in the order of the changes. */
static void test_report_order(void)
{
    lsvc_service *svc = service_in(LSVC_RUNNING, ALL_ACCEPTS);
    nreports = 0;
    for (int i = 0; i < 10; i++) {
        lsvc_service_control(svc, LSVC_CTRL_PAUSE);
        lsvc_service_set_state(svc, LSVC_PAUSED, 0);
        lsvc_service_control(svc, LSVC_CTRL_CONTINUE);
        lsvc_service_set_state(svc, LSVC_RUNNING, 0);
    }
    CHECK_EQ(nreports, 40);
    for (int i = 1; i < nreports && i < MAX_REPORTS; i++)
        if (reports[i].seq <= reports[i - 1].seq)
            FAILF("report %d has seq %llu after %llu", i, (unsigned long long)reports[i].seq,
                  (unsigned long long)reports[i - 1].seq);
    const lsvc_state cycle[] = {LSVC_PAUSE_PENDING, LSVC_PAUSED, LSVC_CONTINUE_PENDING,
                                LSVC_RUNNING};
    for (int i = 0; i < nreports && i < MAX_REPORTS; i++)
        CHECK_EQ(reports[i].state, cycle[i % 4]);
    lsvc_service_free(svc);
}

/* The start barrier (lsvc_host_on_ready): the front end's preparation
 * runs once, on the front end's thread or on the last load when that
 * comes first (a front end's thread that is not running must not hold the
 * start back); ready runs once, after both. */
static int prepares, readies;
static size_t ready_failed;

static void on_prepare(lsvc_host *h, void *ud)
{
    (void)h;
    (void)ud;
    prepares++;
}

static void on_ready(lsvc_host *h, size_t failed, void *ud)
{
    (void)h;
    (void)ud;
    readies++;
    ready_failed = failed;
}

static lsvc_host *prepare_hosts[2]; /* no lsvc_host_free: a host lives as long as its process */

static void test_host_prepare(bool front_end_first)
{
    lsvc_host *h = prepare_hosts[front_end_first] = lsvc_host_new();
    lsvc_service_opts o = {.script = "t.lua"};
    lsvc_service *a = lsvc_service_new(h, &o), *b = lsvc_service_new(h, &o);
    CHECK(lsvc_host_add(h, a) == 0 && lsvc_host_add(h, b) == 0);
    prepares = readies = 0;
    lsvc_host_on_ready(h, on_prepare, on_ready, NULL);
    if (front_end_first) {
        lsvc_host_prepare(h);
        CHECK_EQ(prepares, 1);
    }
    lsvc_service_loaded(a, true);
    CHECK_EQ(prepares, front_end_first ? 1 : 0); /* not the last load: not its business */
    CHECK_EQ(readies, 0);
    lsvc_service_loaded(b, false);
    CHECK_EQ(prepares, 1); /* the last load prepared, when the front end had not */
    CHECK_EQ(readies, 1);
    CHECK_EQ(ready_failed, 1);
    lsvc_host_prepare(h); /* the front end, late: nothing more */
    CHECK_EQ(prepares, 1);
    CHECK_EQ(readies, 1);
    lsvc_host_wait_ready(h); /* ready has run: at once */
}

int main(void)
{
    host = lsvc_host_new();
    lsvc_log_set_level(LSVC_LOG_ERROR);
    test_every_control_in_every_state();
    test_pending_resolutions();
    test_stopped_once_and_progress();
    test_report_order();
    test_host_prepare(true);
    test_host_prepare(false);
    return CHECK_EXIT("test_service");
}
