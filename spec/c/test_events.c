/*
 * test_events.c - the event data of SESSIONCHANGE and POWEREVENT, from the
 * bytes HandlerEx receives to the script's handler: a real service (host,
 * worker, Lua state) driven through the core's control handler, as the
 * Windows front end drives it. (Wine's SCM never sends these controls, so
 * the SCM suite cannot.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"

#include "check.h"

static const char *const SCRIPT = "test_events_fixture.lua";
static const char *const OUT = "test_events_out.txt";

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Poll (deadline 10 s) until the handlers' output holds `want`. */
static bool wait_output(const char *want)
{
    for (int i = 0; i < 2000; i++) {
        const char *s = slurp(OUT);
        if (s && strstr(s, want))
            return true;
        pause_ms(5);
    }
    fprintf(stderr, "test_events: no '%s' in: %s\n", want, slurp(OUT) ? slurp(OUT) : "(none)");
    return false;
}

static bool wait_state(lsvc_service *svc, lsvc_state want)
{
    for (int i = 0; i < 2000; i++) {
        lsvc_status st;
        lsvc_service_get_status(svc, &st);
        if (st.state == want)
            return true;
        pause_ms(5);
    }
    return false;
}

int main(void)
{
    remove(OUT);
    FILE *f = fopen(SCRIPT, "w");
    CHECK(f != NULL);
    if (!f)
        return 1;
    fprintf(f,
            "local out = assert(io.open('%s', 'wb'))\n"
            "local function put(...) out:write(string.format(...), '\\n'); out:flush() end\n"
            "return {\n"
            "  name = 'events', accepts = { 'stop', 'sessionchange', 'powerevent' },\n"
            "  run = function(ctx) while ctx:sleep(1000) do end end,\n"
            "  sessionchange = function(ctx, t, s) put('session %%d %%s', t, tostring(s)) end,\n"
            "  powerevent = function(ctx, t, p)\n"
            "    if p then put('power %%d %%s %%d %%d', t, p.setting, #p.data, p.data:byte(1))\n"
            "    else put('power %%d none', t) end\n"
            "  end,\n"
            "  stop = function() out:close() end,\n"
            "}\n",
            OUT);
    fclose(f);

    lsvc_host *h = lsvc_host_new();
    /* the build directory's permissions are not the test: allow_insecure */
    lsvc_service_opts o = {.script = SCRIPT, .allow_insecure = true};
    lsvc_service *svc = h ? lsvc_service_new(h, &o) : NULL;
    CHECK(svc != NULL);
    if (!svc)
        return 1;
    CHECK(lsvc_host_add(h, svc) == 0);
    CHECK(lsvc_watchdog_start(h) == 0);
    CHECK(lsvc_worker_start(svc) == 0);
    CHECK(lsvc_host_wait_loaded(h) == 0);
    lsvc_host_release(h, true);
    CHECK(wait_state(svc, LSVC_RUNNING));

    /* WTS_SESSION_LOGON (5) for session 3, as HandlerEx gets it */
    unsigned char wts[8] = {8, 0, 0, 0, 3, 0, 0, 0};
    lsvc_event ev;
    lsvc_event_from_scm(&ev, LSVC_CTRL_SESSIONCHANGE, 5, wts);
    CHECK(lsvc_service_control_event(svc, &ev) == LSVC_NO_ERROR);
    CHECK(wait_output("session 5 3\n"));

    /* PBT_POWERSETTINGCHANGE, GUID_ACDC_POWER_SOURCE = 1 (on battery) */
    unsigned char pbs[24] = {0x59, 0x9A, 0x3E, 0x5D, 0xD5, 0xE9, 0x00, 0x4B, 0xA6, 0xBD, 0xFF, 0x34,
                             0xFF, 0x51, 0x65, 0x48, 4,    0,    0,    0,    1,    0,    0,    0};
    lsvc_event_from_scm(&ev, LSVC_CTRL_POWEREVENT, LSVC_PBT_POWERSETTINGCHANGE, pbs);
    CHECK(lsvc_service_control_event(svc, &ev) == LSVC_NO_ERROR);
    CHECK(wait_output("power 32787 {5D3E9A59-E9D5-4B00-A6BD-FF34FF516548} 4 1\n"));

    /* PBT_APMRESUMEAUTOMATIC (0x12): a type, no setting */
    lsvc_event_from_scm(&ev, LSVC_CTRL_POWEREVENT, 0x12, NULL);
    CHECK(lsvc_service_control_event(svc, &ev) == LSVC_NO_ERROR);
    CHECK(wait_output("power 18 none\n"));

    CHECK(lsvc_service_control(svc, LSVC_CTRL_STOP) == LSVC_NO_ERROR);
    lsvc_host_wait_stopped(h);
    lsvc_host_join(h);
    lsvc_status st;
    lsvc_service_get_status(svc, &st);
    CHECK(st.state == LSVC_STOPPED && st.exit.win32 == LSVC_NO_ERROR);
    remove(SCRIPT);
    remove(OUT);
    return CHECK_EXIT("test_events");
}
