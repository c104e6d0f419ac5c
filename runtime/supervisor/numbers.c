/*
 * numbers.c - what a service says of itself: its numbers (controls
 * delivered and their latency as a histogram, reloads and their errors,
 * the engine's gauges), its status as `status --json` gives it, and what
 * a front end reads of it. Any thread, under the service's mutex where a
 * field is the mutex's (service_impl.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "service_impl.h"

unsigned lsvc_service_reload_result(lsvc_service *svc, const char *error)
{
    pthread_mutex_lock(&svc->mu);
    if (error) {
        snprintf(svc->last_reload_error, sizeof svc->last_reload_error, "%s", error);
        svc->reload_errors++;
    } else {
        svc->reloads++;
        svc->last_reload_error[0] = '\0';
    }
    unsigned n = svc->reloads;
    pthread_mutex_unlock(&svc->mu);
    return n;
}

/* The names of the bits of mask, as JSON strings separated by commas. */
static void json_accepts(lsvc_buf *b, uint32_t mask)
{
    const char *sep = "";
    for (uint32_t bit = 1; bit <= LSVC_ACCEPT_PRESHUTDOWN; bit <<= 1) {
        if ((mask & bit) && lsvc_accept_name(bit)) {
            lsvc_buf_printf(b, "%s\"%s\"", sep, lsvc_accept_name(bit));
            sep = ",";
        }
    }
}

size_t lsvc_status_json(lsvc_service *svc, char *buf, size_t len)
{
    pthread_mutex_lock(&svc->mu);
    lsvc_status st = svc->status;
    uint32_t accepts = svc->accepts;
    uint64_t lat = svc->last_latency_ns, delivered = svc->controls_delivered;
    uint32_t stop_timeout = svc->stop_timeout_ms;
    unsigned reloads = svc->reloads;
    char reload_err[sizeof svc->last_reload_error];
    memcpy(reload_err, svc->last_reload_error, sizeof reload_err);
    char name[sizeof svc->name], display[sizeof svc->display_name];
    char text[sizeof svc->status_text];
    memcpy(text, svc->status_text, sizeof text);
    memcpy(name, svc->name, sizeof name);
    memcpy(display, svc->display_name, sizeof display);
    pthread_mutex_unlock(&svc->mu);

    lsvc_buf b = lsvc_buf_init(buf, len);
    lsvc_buf_add(&b, "{\"name\":");
    lsvc_buf_json(&b, name);
    lsvc_buf_add(&b, ",\"display_name\":");
    lsvc_buf_json(&b, display[0] ? display : name);
    lsvc_buf_add(&b, ",\"script\":");
    lsvc_buf_json(&b, svc->opts.script);
    lsvc_buf_printf(&b, ",\"state\":\"%s\",\"state_code\":%d,\"controls_accepted\":[",
                    lsvc_state_name(st.state), (int)st.state);
    json_accepts(&b, st.controls_accepted);
    lsvc_buf_add(&b, "],\"accepts\":[");
    json_accepts(&b, accepts);
    lsvc_buf_printf(&b,
                    "],\"win32_exit_code\":%u,\"service_exit_code\":%u,\"checkpoint\":%u,"
                    "\"wait_hint\":%u,\"stop_timeout\":%u,\"pid\":%ld,\"controls_delivered\":%llu,"
                    "\"control_latency_us\":%.1f,\"reloads\":%u,\"last_reload_error\":",
                    st.exit.win32, st.exit.service_specific, st.checkpoint, st.wait_hint,
                    stop_timeout, (long)getpid(), (unsigned long long)delivered,
                    (double)lat / 1000.0, reloads);
    if (reload_err[0])
        lsvc_buf_json(&b, reload_err);
    else
        lsvc_buf_add(&b, "null");
    lsvc_buf_add(&b, ",\"status_text\":");
    if (text[0])
        lsvc_buf_json(&b, text);
    else
        lsvc_buf_add(&b, "null");
    lsvc_buf_printf(&b, ",\"children\":%u}",
                    (unsigned)atomic_load_explicit(&svc->g_children, memory_order_relaxed));
    return b.len;
}

/* ---- what a front end reads (any thread) ------------------------------ */

const char *lsvc_service_name(const lsvc_service *svc) { return svc->name; }

const char *lsvc_service_script(const lsvc_service *svc) { return svc->opts.script; }

size_t lsvc_service_index(const lsvc_service *svc) { return svc->index; }

uint64_t lsvc_service_heartbeat(lsvc_service *svc)
{
    return atomic_load_explicit(&svc->heartbeat_ns, memory_order_relaxed);
}

void lsvc_service_wake(lsvc_service *svc) { lsvc_queue_wake(&svc->queue); }

uint32_t lsvc_service_stop_timeout(lsvc_service *svc)
{
    pthread_mutex_lock(&svc->mu);
    uint32_t ms = svc->stop_timeout_ms;
    pthread_mutex_unlock(&svc->mu);
    return ms;
}

void lsvc_service_get_info(lsvc_service *svc, lsvc_service_info *out)
{
    pthread_mutex_lock(&svc->mu);
    snprintf(out->name, sizeof out->name, "%s", svc->name);
    snprintf(out->display_name, sizeof out->display_name, "%s", svc->display_name);
    snprintf(out->description, sizeof out->description, "%s", svc->description);
    out->stop_timeout_ms = svc->stop_timeout_ms;
    out->watchdog_ms = svc->watchdog_ms;
    pthread_mutex_unlock(&svc->mu);
}

bool lsvc_service_load_failed(lsvc_service *svc)
{
    pthread_mutex_lock(&svc->mu);
    bool failed = svc->load_failed;
    pthread_mutex_unlock(&svc->mu);
    return failed;
}


const double lsvc_latency_bounds_s[LSVC_LATENCY_BUCKETS] = {
    0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.1, 1.0, INFINITY};

void lsvc_service_set_gauges(lsvc_service *svc, const lsvc_gauges *g)
{
    atomic_store_explicit(&svc->g_lua_bytes, g->lua_bytes, memory_order_relaxed);
    atomic_store_explicit(&svc->g_tasks, g->tasks, memory_order_relaxed);
    atomic_store_explicit(&svc->g_children, g->children, memory_order_relaxed);
}

void lsvc_service_get_stats(lsvc_service *svc, lsvc_service_stats *out)
{
    pthread_mutex_lock(&svc->mu);
    memcpy(out->name, svc->name, sizeof out->name);
    memcpy(out->display_name, svc->display_name, sizeof out->display_name);
    out->accepts = svc->accepts;
    out->stop_timeout_ms = svc->stop_timeout_ms;
    out->status = svc->status;
    memcpy(out->status_text, svc->status_text, sizeof out->status_text);
    out->controls_delivered = svc->controls_delivered;
    out->last_latency_ns = svc->last_latency_ns;
    out->latency_sum_ns = svc->latency_sum_ns;
    memcpy(out->latency_buckets, svc->latency_buckets, sizeof out->latency_buckets);
    out->reloads = svc->reloads;
    out->reload_errors = svc->reload_errors;
    memcpy(out->last_reload_error, svc->last_reload_error, sizeof out->last_reload_error);
    out->created_ns = svc->created_ns;
    out->moved_ns = svc->moved_ns;
    pthread_mutex_unlock(&svc->mu);
    out->gauges.lua_bytes = atomic_load_explicit(&svc->g_lua_bytes, memory_order_relaxed);
    out->gauges.tasks = atomic_load_explicit(&svc->g_tasks, memory_order_relaxed);
    out->gauges.children = atomic_load_explicit(&svc->g_children, memory_order_relaxed);
}

void lsvc_service_count_delivery(lsvc_service *svc, uint64_t arrived_ns)
{
    pthread_mutex_lock(&svc->mu);
    uint64_t lat = lsvc_now_ns() - arrived_ns;
    size_t b = 0;
    while (b + 1 < LSVC_LATENCY_BUCKETS && (double)lat > lsvc_latency_bounds_s[b] * 1e9)
        b++;
    svc->last_latency_ns = lat;
    svc->latency_sum_ns += lat;
    svc->latency_buckets[b]++;
    svc->controls_delivered++;
    pthread_mutex_unlock(&svc->mu);
}
