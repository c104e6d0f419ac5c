/*
 * test_metrics.c - what the host's metrics endpoint says (front/metrics.c,
 * built into this test beside the core): /healthz's rule for every state
 * (not begun, a clean and a failed STOPPED, the pending states within and
 * past their wait hint), the exposition's escaping of a service's name and
 * its cumulative histogram, and which ADDR:PORT --metrics takes. The
 * server itself is spec/metrics_spec.lua's business.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/frontend.h"

#include "check.h"

#define SEC 1000000000ull

static char text[16384];

/* One service's stats: state st, its status moved at moved_ns. */
static lsvc_service_stats stats(const char *name, lsvc_state st, uint64_t moved_ns)
{
    lsvc_service_stats s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "%s", name);
    s.status.state = st;
    s.moved_ns = moved_ns;
    return s;
}

/* /healthz for one service beside a RUNNING one: the status, text in text. */
static int health_of(const lsvc_service_stats *one, uint64_t now)
{
    lsvc_service_stats s[2] = {stats("ok", LSVC_RUNNING, SEC), *one};
    lsvc_buf b = lsvc_buf_init(text, sizeof text);
    return lsvc_metrics_health(&b, s, 2, now);
}

static void test_health(void)
{
    uint64_t now = 100 * SEC;
    lsvc_service_stats s = stats("svc", LSVC_RUNNING, SEC);
    CHECK_EQ(health_of(&s, now), 200);
    CHECK_STR(text, "ok: every service is where it was asked to be\nok: RUNNING\nsvc: RUNNING\n");
    s = stats("svc", LSVC_PAUSED, SEC);
    CHECK_EQ(health_of(&s, now), 200);
    s = stats("svc", LSVC_STOPPED, SEC); /* ended cleanly */
    CHECK_EQ(health_of(&s, now), 200);
    s = stats("svc", LSVC_STOPPED, 0); /* not begun */
    CHECK_EQ(health_of(&s, now), 503);
    CHECK(strstr(text, "svc: not started yet") != NULL);
    s = stats("svc", LSVC_STOPPED, SEC);
    s.status.exit = (lsvc_exit){LSVC_ERROR_SERVICE_SPECIFIC_ERROR, 3};
    CHECK_EQ(health_of(&s, now), 503);
    CHECK_STR(text, "unhealthy: 1 of 2 services is not where it was asked to be\nok: RUNNING\n"
                    "svc: STOPPED with service-specific exit code 3\n");
    s = stats("svc", LSVC_START_PENDING, now - 2 * SEC);
    s.status.checkpoint = 4;
    s.status.wait_hint = 30000; /* within it, and still not ready */
    CHECK_EQ(health_of(&s, now), 503);
    CHECK(strstr(text, "svc: START_PENDING for 2000 ms (checkpoint 4)\n") != NULL);
    s = stats("svc", LSVC_STOP_PENDING, now - SEC);
    s.status.wait_hint = 30000;
    CHECK_EQ(health_of(&s, now), 503);
    CHECK(strstr(text, "svc: STOP_PENDING for 1000 ms\n") != NULL);
    lsvc_state moving[] = {LSVC_PAUSE_PENDING, LSVC_CONTINUE_PENDING};
    for (size_t i = 0; i < 2; i++) {
        s = stats("svc", moving[i], now - 3 * SEC);
        s.status.wait_hint = 5000; /* on its way */
        CHECK_EQ(health_of(&s, now), 200);
        s.status.wait_hint = 2000; /* stuck past it */
        CHECK_EQ(health_of(&s, now), 503);
        char want[128];
        snprintf(want, sizeof want, "svc: %s for 3000 ms, past its wait hint of 2000 ms\n",
                 lsvc_state_name(moving[i]));
        CHECK(strstr(text, want) != NULL);
    }
    /* two wrong */
    lsvc_service_stats two[2] = {stats("a", LSVC_STOP_PENDING, SEC), stats("b", LSVC_STOPPED, 0)};
    lsvc_buf b = lsvc_buf_init(text, sizeof text);
    CHECK_EQ(lsvc_metrics_health(&b, two, 2, now), 503);
    CHECK(strncmp(text, "unhealthy: 2 of 2 services are not where they were asked to be\n", 63) ==
          0);
}

static void test_render(void)
{
    lsvc_service_stats s = stats("a\"b\\c\nd", LSVC_RUNNING, SEC);
    s.controls_delivered = 3;
    s.latency_buckets[0] = 1;                        /* <= 10 us */
    s.latency_buckets[4] = 1;                        /* <= 1 ms */
    s.latency_buckets[LSVC_LATENCY_BUCKETS - 1] = 1; /* > 1 s */
    s.latency_sum_ns = 2500000000ull;
    s.reloads = 2;
    s.reload_errors = 1;
    s.gauges = (lsvc_gauges){.lua_bytes = 123456, .tasks = 3, .children = 1};
    lsvc_buf b = lsvc_buf_init(text, sizeof text);
    lsvc_metrics_render(&b, &s, 1);
    CHECK(b.len < sizeof text);
    const char *want[] = {
        "# TYPE luasvc_service_state gauge\n",
        "\nluasvc_service_state{service=\"a\\\"b\\\\c\\nd\"} 4\n",
        "\nluasvc_controls_total{service=\"a\\\"b\\\\c\\nd\"} 3\n",
        "# TYPE luasvc_control_latency_seconds histogram\n",
        "\nluasvc_control_latency_seconds_bucket{service=\"a\\\"b\\\\c\\nd\",le=\"1e-05\"} 1\n",
        "\nluasvc_control_latency_seconds_bucket{service=\"a\\\"b\\\\c\\nd\",le=\"0.0005\"} 1\n",
        "\nluasvc_control_latency_seconds_bucket{service=\"a\\\"b\\\\c\\nd\",le=\"0.001\"} 2\n",
        "\nluasvc_control_latency_seconds_bucket{service=\"a\\\"b\\\\c\\nd\",le=\"1\"} 2\n",
        "\nluasvc_control_latency_seconds_bucket{service=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 3\n",
        "\nluasvc_control_latency_seconds_sum{service=\"a\\\"b\\\\c\\nd\"} 2.500000000\n",
        "\nluasvc_control_latency_seconds_count{service=\"a\\\"b\\\\c\\nd\"} 3\n",
        "\nluasvc_reloads_total{service=\"a\\\"b\\\\c\\nd\"} 2\n",
        "\nluasvc_reload_errors_total{service=\"a\\\"b\\\\c\\nd\"} 1\n",
        "\nluasvc_lua_memory_bytes{service=\"a\\\"b\\\\c\\nd\"} 123456\n",
        "\nluasvc_tasks{service=\"a\\\"b\\\\c\\nd\"} 3\n",
        "\nluasvc_children{service=\"a\\\"b\\\\c\\nd\"} 1\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(text, want[i]))
            FAILF("not in the exposition: %s", want[i]);
    /* no raw newline inside a sample: every line is a comment or a sample */
    for (const char *line = text; *line; line = strchr(line, '\n') + 1)
        CHECK(line[0] == '#' || strncmp(line, "luasvc_", 7) == 0);
    CHECK(isinf(lsvc_latency_bounds_s[LSVC_LATENCY_BUCKETS - 1]));
}

static void test_addr(void)
{
    char err[256];
    const char *good[] = {"127.0.0.1:9100", "0.0.0.0:0", "localhost:65535", "[::1]:9100", "[::]:1"};
    const char *bad[] = {"",           "9100",         ":9100",           "127.0.0.1",
                         "127.0.0.1:", "127.0.0.1:x",  "127.0.0.1:65536", "127.0.0.1:-1",
                         "::1:9100",   "[::1]",        "[127.0.0.1]:80",  "host.example:80",
                         "[::1:80",    "127.0.0.1: 80"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (lsvc_metrics_check_addr(good[i], err, sizeof err) != 0)
            FAILF("'%s' refused: %s", good[i], err);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (lsvc_metrics_check_addr(bad[i], err, sizeof err) == 0)
            FAILF("'%s' taken", bad[i]);
        else if (!err[0])
            FAILF("'%s' refused without a reason", bad[i]);
    }
}

int main(void)
{
    test_health();
    test_render();
    test_addr();
    return CHECK_EXIT("test_metrics");
}
