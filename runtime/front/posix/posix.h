/*
 * posix.h - declarations shared by the POSIX front ends (the console host,
 * the control endpoint and its client).
 */
#ifndef LUASVC_POSIX_H
#define LUASVC_POSIX_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "../frontend.h"

/* ---- posix_endpoint.c: the host's side of the control endpoint ---- */
typedef struct lsvc_endpoint lsvc_endpoint;

/* Resolve (and create, mode 0700) the runtime directory. */
int lsvc_runtime_dir(char *buf, size_t len, char *err, size_t errlen);
/* While the scripts load: bind every service's socket under a temporary
 * name (best effort: NULL when that cannot be done; nothing is logged). */
lsvc_endpoint *lsvc_endpoint_prepare(lsvc_host *h);
/* Bind NAME.sock for every service of the host (names must be known);
 * pre, from lsvc_endpoint_prepare or NULL, is taken over (closed on error). */
lsvc_endpoint *lsvc_endpoint_open(lsvc_host *h, lsvc_endpoint *pre, char *err, size_t errlen);
/* Catch the signals in set for the host (before any thread starts): from
 * now on they reach the endpoint's thread, once it runs; SIGPIPE is made
 * harmless (writes fail with EPIPE). Takes the endpoint's reserve
 * descriptor too, before any script can leak them all. Nothing is blocked or ignored, so
 * children start with an empty mask and default dispositions. 0 or -1. */
int lsvc_signals_catch(const sigset_t *set);
/* posix_rundir.c: the runtime directory must be this user's and closed to
 * others (0, or -1 with the message in err); remove the temporary sockets
 * of hosts that died while their scripts loaded. */
int lsvc_rundir_check(const char *dir, char *err, size_t errlen);
void lsvc_rundir_sweep(void);
/* posix_signals.c: the read end of the caught signals' pipe; the
 * endpoint's reserve descriptor (taken over once: the endpoint's thread),
 * and a new one (/dev/null, -1 when none is free). */
int lsvc_signals_fd(void);
int lsvc_signals_spare(void);
int lsvc_take_spare(void);
/* A signal taken by the endpoint thread, for the host. */
typedef void (*lsvc_signal_fn)(lsvc_host *h, int sig);
/* Serve the endpoint, and the caught signals (set: non-NULL), on one thread. */
int lsvc_endpoint_start(lsvc_endpoint *e, const sigset_t *set, lsvc_signal_fn on_signal);
void lsvc_endpoint_close(lsvc_endpoint *e); /* stops the thread, unlinks */

/* ---- posix_stream.c: the endpoint's streams (its thread; the log sink
 * any thread) ---- */
typedef struct lsvc_streams lsvc_streams;
struct pollfd;
lsvc_streams *lsvc_streams_new(void); /* and the log sink, registered once */
void lsvc_streams_free(lsvc_streams *s);
/* Hand client fd over with its eval (chunk taken, freed whatever comes):
 * LSVC_NO_ERROR, the descriptor is the streams' now; else the Win32 code
 * of the refusal, fd still the caller's. who: the client, for the log. */
uint32_t lsvc_streams_eval(lsvc_streams *s, lsvc_service *svc, int fd, char *chunk, size_t len,
                           const char *who);
/* The same for a log stream of svc's lines (its "OK" sent here). */
uint32_t lsvc_streams_log(lsvc_streams *s, lsvc_service *svc, int fd, const char *who);
#define LSVC_STREAMS_POLL 65 /* the poll entries the streams take */
size_t lsvc_streams_poll(lsvc_streams *s, struct pollfd *p); /* at most LSVC_STREAMS_POLL */
void lsvc_streams_events(lsvc_streams *s, const struct pollfd *p); /* after the poll */

/* ---- posix_endpoint_client.c: the client's side (any thread) ---- */
enum { LSVC_CLIENT_OK = 0, LSVC_CLIENT_NOT_RUNNING = -1, LSVC_CLIENT_ERROR = -2 };
/* dir/NAME.sock into sa; -1 (err filled) when it is too long for one. */
int lsvc_endpoint_sock_path(const char *dir, const char *name, struct sockaddr_un *sa, char *err,
                            size_t errlen);
/* Whether a live host listens at sa (never waits); *cannot: the errno when
 * there was no socket to probe with (then "alive", never taken over). */
bool lsvc_endpoint_probe(const struct sockaddr_un *sa, int *cannot);
/* Send one request line, read one reply line (newline stripped). */
int lsvc_endpoint_request(const char *dir, const char *name, const char *req, char *out,
                          size_t outlen, char *err, size_t errlen);
/* The services with a socket in dir, sorted (each name and the array freed
 * by the caller). 0, or -1 when dir cannot be read. */
int lsvc_endpoint_list(const char *dir, char ***names, size_t *n);

/* ---- posix_systemd.c: sd_notify for `luasvc run` under systemd ---- */
typedef struct lsvc_systemd lsvc_systemd;
/* Before any thread starts: NULL unless $NOTIFY_SOCKET is set (then it is
 * unset, with WATCHDOG_*, for the script's children). Also switches the log
 * to journald's priority prefixes when stderr is the journal. */
lsvc_systemd *lsvc_systemd_open(lsvc_host *h);
int lsvc_systemd_start(lsvc_systemd *sd); /* the watchdog pinger, if asked for */
void lsvc_systemd_close(lsvc_systemd *sd);
/* Any thread, no lock held; all accept sd == NULL. */
void lsvc_systemd_report(lsvc_systemd *sd, lsvc_service *svc, const lsvc_status *st);
void lsvc_systemd_reloading(lsvc_systemd *sd, lsvc_service *svc, bool begin);
/* Around a signal's control (before=true first, then with its result). */
void lsvc_systemd_signal(lsvc_systemd *sd, int sig, bool before, bool accepted);

/* ---- posix_init.c ---- */
/* As PID 1 (a container's entrypoint): fork; the parent reaps and forwards
 * signals and returns the host's exit status; the child returns -1 and goes
 * on as the host. Elsewhere returns -1 at once. Main thread, first thing. */
int lsvc_init_if_pid1(void);

/* ---- posix_install.c: `luasvc install|uninstall --systemd` (main thread
 * of a client) ---- */
int lsvc_install_main(int argc, char **argv);   /* luasvc install ... */
int lsvc_uninstall_main(int argc, char **argv); /* luasvc uninstall ... */

/* ---- posix_unit.c: the units luasvc installed, as clients find them
 * (main thread of a client) ---- */
#define LSVC_UNIT_MARKER "# luasvc-service: "
#define LSVC_UNIT_RUNDIR_MARKER "# luasvc-runtime-dir: "
/* The unit directory: given, else the user's or the system's. 0 or -1. */
int lsvc_unit_dir(bool user, const char *given, char *buf, size_t len);
/* systemd's unit name characters, and no template '@'. */
bool lsvc_unit_name_valid(const char *s);
/* Run systemctl [--user] A1 [A2]; its exit status (127 when it cannot run).
 * quiet: its output to /dev/null. */
int lsvc_systemctl(bool user, const char *a1, const char *a2, bool quiet);
/* When NAME is a unit luasvc installed: run `systemctl [--user] VERB
 * NAME.service` and return its exit status; else return -1. */
int lsvc_unit_systemctl(const char *name, const char *verb);
/* As lsvc_unit_systemctl with --no-block, then wait until the unit is
 * active (verb "start") or inactive (verb "stop"), at most timeout_ms;
 * says what it is when not. -1 when NAME is no unit of luasvc's (stop:
 * none that systemd runs). */
int lsvc_unit_systemctl_wait(const char *name, const char *verb, uint64_t timeout_ms);
/* The endpoint name of installed unit NAME (its script's service name);
 * name itself when no unit of luasvc's is installed under it. A unit with
 * a runtime directory of its own (install --user-account, --dynamic-user)
 * also points this client there (LUASVC_RUNTIME_DIR, unless already set). */
const char *lsvc_unit_service_name(const char *name, char *buf, size_t len);
/* Each installed unit of luasvc's with a runtime directory of its own
 * (install --user-account), as `status NAME` would find it: fn(unit, dir,
 * arg), by unit name, the user's units before the system's (a unit of both
 * once). None when LUASVC_RUNTIME_DIR is set. */
typedef void (*lsvc_unit_rundir_fn)(const char *unit, const char *dir, void *arg);
void lsvc_unit_rundirs(lsvc_unit_rundir_fn fn, void *arg);

/* ---- posix_unit_text.c: the unit's text (for posix_install.c) ---- */
#define LSVC_INSTALL_MAX_PATHS 16
#define LSVC_INSTALL_MAX_CAPS 64
/* What `luasvc install` was asked, checked. */
typedef struct lsvc_install_opts {
    const char *script, *dir, *name, *description, *account;
    const char *log_file, *log_max_size, *log_keep;    /* passed on to `luasvc run` */
    const char *metrics;                               /* HOST:PORT, passed on too */
    char log_path[PATH_MAX];                           /* log_file made absolute */
    char read_write[LSVC_INSTALL_MAX_PATHS][PATH_MAX]; /* --read-write, absolute */
    size_t n_read_write;
    char caps[LSVC_INSTALL_MAX_CAPS][32]; /* --capability, "CAP_..." */
    size_t n_caps;
    bool systemd, user, restart, network, dynamic_user, allow_jit;
} lsvc_install_opts;
/* Whether path is /tmp, /var/tmp or /dev/shm, or under them. */
bool lsvc_path_under_tmp(const char *path);
/* What PrivateTmp= would hide from the service ("the script", ...), or
 * NULL: the script, the binary (self), the log file, a --read-write path,
 * or (a user unit) the runtime directory with systemd's notify socket. */
const char *lsvc_unit_tmp_hides(const lsvc_install_opts *o, const char *script, const char *self);
/* The unit's runtime directory, relative to %t: "luasvc", shared, or
 * "luasvc-NAME" for a unit with User= or DynamicUser= (':' made '_'). */
void lsvc_unit_rundir(const lsvc_install_opts *o, const char *name, char *buf, size_t len);
/* The unit's text into f. -1: a path a unit file cannot carry. */
int lsvc_unit_text(FILE *f, const lsvc_install_opts *o, const char *name, const char *self,
                   const char *script, const lsvc_service_info *info);

/* ---- posix_client.c ---- */
int lsvc_client_control(const char *name, int code);
/* stop, pause or continue (code), then wait until the service is STOPPED,
 * PAUSED or RUNNING: at most timeout_ms (0: its stop_timeout + 5 s). A
 * service already on its way there (its pending state) is only waited
 * for. 0, or 1 with the state it is in said. verb: for the messages. */
int lsvc_client_control_wait(const char *verb, const char *name, int code, uint64_t timeout_ms);
int lsvc_client_status(const char *name, bool json);

/* ---- posix_attach.c: luasvc eval, luasvc attach (a client's main
 * thread) ---- */
/* Run chunk inside service name; its values and prints to stdout, its
 * error to stderr. 0, or 1 (failed, refused, unreachable). */
int lsvc_client_eval(const char *name, const char *chunk);
/* The console: interactive on a terminal, else chunks from stdin. */
int lsvc_client_attach(const char *name);

/* posix_luarc.c: `luasvc new`'s .luarc.json (editor types) in dir, unless
 * one exists there. 0, or 1 with the error printed. */
int lsvc_write_luarc(const char *dir);

#endif
