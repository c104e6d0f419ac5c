/*
 * frontend.h - the top layer: what the front ends of both platforms
 * share: the foreground host (console.c, with its platform half in
 * posix/posix_console.c or win32/win32_console.c), the verbs check
 * and listen, and the command line's table (usage.c). Each platform's own
 * front ends add posix/posix.h or win32/win32.h. Includes engine.h
 * only. Main thread, unless a function says otherwise.
 */
#ifndef LUASVC_FRONTEND_H
#define LUASVC_FRONTEND_H

#include <stdbool.h>
#include <stdio.h>

#include "../engine/engine.h"

/* ---- check.c: `luasvc check` (main thread) ---- */

int lsvc_check_main(int argc, char **argv);

/* ---- listen.c: `luasvc listen NAME [--json]`: print a slot's messages
 * until Ctrl+C ---- */

int lsvc_listen(int argc, char **argv);

/* ---- usage.c: the verbs, their synopses and options ---- */

/* `luasvc help [VERB]` into f (verb NULL: every verb). 0, or 2 for an
 * unknown verb (said on stderr). */
int lsvc_help(FILE *f, const char *verb);
/* "luasvc VERB: MESSAGE" and the verb's synopsis on stderr; returns 2. */
int lsvc_usage_error(const char *verb, const char *fmt, ...) LSVC_PRINTF(2, 3);
/* Whether VERB takes option opt ("--no-watch"), and whether it takes a value. */
bool lsvc_usage_has_option(const char *verb, const char *opt, bool *takes_value);
/* `luasvc control`'s CODE (128-255 or a control name), or -1 after saying
 * what it may be. */
int lsvc_usage_control(const char *arg);
/* A "--help" or "-h" among the arguments before any "--". */
bool lsvc_usage_wants_help(int argc, char **argv);

/* ---- attach.c: luasvc attach's chunks, both platforms (main thread) ---- */

/* What a platform gives the loop: read_line (one line of stdin, without
 * its newline, into *line; the prompt it shows, for a terminal's
 * reprinting; false at its end), eval (run the chunk: 0, or 1). */
typedef struct lsvc_attach_io {
    bool (*read_line)(void *ud, char **line, size_t *cap, const char *prompt);
    int (*eval)(void *ud, const char *chunk, size_t len);
    void *ud;
    bool tty; /* prompts, and status 0 at the end */
} lsvc_attach_io;
/* Read chunks, eval each: the process's exit status. */
int lsvc_attach_run(const char *name, const lsvc_attach_io *io);
/* One line of f into *line (grown as needed), without its newline (or
 * CR LF); false at the end of f. */
bool lsvc_read_line(FILE *f, char **line, size_t *cap);

/* ---- waitopt.c: NAME [--wait] [--timeout SECONDS] of start, stop, pause,
 * continue ---- */

typedef struct lsvc_wait_args {
    const char *name;
    bool wait;           /* --wait */
    uint64_t timeout_ms; /* --timeout, 0 when not given */
    char **args;         /* takes_args: what follows NAME but the options ("--" ends them) */
    int nargs;
} lsvc_wait_args;
/* 0, or 2 after the usage error. argv may be reordered (the arguments
 * packed). */
int lsvc_parse_wait(const char *verb, int argc, char **argv, bool takes_args, lsvc_wait_args *out);

/* ---- console.c: `luasvc run` and `luasvc check` ---- */

/* verb: "run", or "check" (load the scripts, start none). Returns the
 * process exit status. */
int lsvc_console_run(const char *verb, int argc, char **argv);
/* Load n scripts as check does, start none, and fill out[k] with what each
 * declares (for install). Returns the number that failed to load (the
 * errors logged); n when the host could not be set up. */
size_t lsvc_console_inspect(int n, char **scripts, lsvc_service_info *out);

/* ---- metrics.c: the host's health and metrics endpoint over HTTP
 * (`luasvc run --metrics ADDR:PORT`), served on a thread of its own ---- */

typedef struct lsvc_metrics lsvc_metrics;
/* Whether addr is ADDR:PORT as --metrics takes it (an IPv4 address,
 * localhost or [IPv6]; PORT 0-65535, 0: any free port): 0, or -1 with
 * the reason in err. Any thread. */
int lsvc_metrics_check_addr(const char *addr, char *err, size_t errlen);
/* Bind and listen on addr (main thread): NULL with the reason in err. */
lsvc_metrics *lsvc_metrics_open(const char *addr, char *err, size_t errlen);
/* Serve h's services on the endpoint's own thread (logs where): 0 or an
 * errno. m NULL: nothing. */
int lsvc_metrics_start(lsvc_metrics *m, lsvc_host *h);
/* Stop the thread, close every socket; m NULL: nothing. Main thread. */
void lsvc_metrics_close(lsvc_metrics *m);
/* GET /metrics's body: n services' stats in the Prometheus text format. */
void lsvc_metrics_render(lsvc_buf *b, const lsvc_service_stats *s, size_t n);
/* GET /healthz's body; returns 200 when every service is where it was
 * asked to be, else 503. now_ns: lsvc_now_ns(). */
int lsvc_metrics_health(lsvc_buf *b, const lsvc_service_stats *s, size_t n, uint64_t now_ns);

/* ---- the platform's half of the console (posix_console.c,
 * win32_console.c), called by console.c in this order; it calls nothing
 * of console.c's: what goes up is the stop console.c gives it ---- */

/* A stop from the console's user (a signal, Ctrl+C), to every service:
 * meant even while one is starting or does not accept STOP from a service
 * manager. why: "Interrupt", "Ctrl+C", for the log. Any thread but a
 * worker; never touches Lua. */
typedef void (*lsvc_console_stop_fn)(lsvc_host *h, const char *why);
/* Before any thread starts (signals, systemd, the time zone); stop: what
 * the user's stop calls (console.c's), kept until the process ends. 0, or
 * the exit status. */
int lsvc_console_os_begin(lsvc_host *h, bool check_only, lsvc_console_stop_fn stop);
/* While the workers load their scripts (POSIX: bind the endpoint's sockets). */
void lsvc_console_os_loading(lsvc_host *h, bool check_only);
/* The scripts have loaded (failed of them did not): open what clients
 * control them through. Returns the number of failures, failed included. */
size_t lsvc_console_os_open(lsvc_host *h, bool check_only, size_t failed);
/* The services go: take the user's controls until they have stopped.
 * 0, or the exit status when they could not be served. */
int lsvc_console_os_serve(lsvc_host *h);
/* Every service has stopped: close what os_begin and os_open opened. */
void lsvc_console_os_end(lsvc_host *h);
/* Every status report and reload of the console's services, before the
 * console's own log line (POSIX: systemd's notifications). Any thread, no
 * lock held. */
void lsvc_console_os_report(lsvc_service *svc, const lsvc_status *st);
void lsvc_console_os_reloading(lsvc_service *svc, bool begin);

#endif
