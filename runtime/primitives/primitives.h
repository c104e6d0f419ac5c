/*
 * primitives.h - the layer above pure.h: the queue of controls, the clock
 * and timed waits, the log and its sinks, log files, a Lua state's
 * allocator, a thread's interrupt, and the platform's slots (with, on
 * POSIX, the runtime directory). Each group says which threads may call
 * it. Includes pure.h only.
 */
#ifndef LSVC_PRIMITIVES_H
#define LSVC_PRIMITIVES_H

#include <pthread.h>
#include <stdatomic.h>

#include "../pure/pure.h"

/* ---- queue.c: FIFO of controls, many producers, one consumer (any thread) - */

/* The consumer's wake-up: called after each push (a quiet one: at
 * lsvc_queue_notify) and wake, once the queue's mutex is released; it must
 * be bounded (worker.c: a write to the loop's eventfd, uv_async_send). */
typedef void (*lsvc_queue_waker)(void *ud);

typedef struct lsvc_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    lsvc_event *buf;
    size_t cap, head, len;
    unsigned wakeups; /* wakes without an event (deadline, shutdown) */
    lsvc_queue_waker waker;
    void *waker_ud;
    unsigned waking; /* calls of the waker under way (outside the mutex) */
    atomic_size_t pending; /* len, readable without the mutex (a hint) */
} lsvc_queue;

int lsvc_queue_init(lsvc_queue *q);
void lsvc_queue_destroy(lsvc_queue *q);
/* Past LSVC_QUEUE_MAX controls waiting, a push is refused: one service's
 * queue cannot grow its host without limit. */
#define LSVC_QUEUE_MAX 1024u
/* 0; -1 on ENOMEM; -2 when LSVC_QUEUE_MAX controls wait already */
int lsvc_queue_push(lsvc_queue *q, const lsvc_event *ev);
/* The same without the wake, for a caller that holds a lock the woken
 * consumer takes: it calls lsvc_queue_notify once that lock is released. */
int lsvc_queue_push_quiet(lsvc_queue *q, const lsvc_event *ev);
void lsvc_queue_notify(lsvc_queue *q);
bool lsvc_queue_pop(lsvc_queue *q, lsvc_event *ev); /* non-blocking */
size_t lsvc_queue_len(lsvc_queue *q);
/* Anything queued? Without the mutex: a hint for the consumer's fast path. */
bool lsvc_queue_pending(lsvc_queue *q);
void lsvc_queue_wake(lsvc_queue *q);
/* The consumer: wake me with fn(ud) (NULL: no more; returns once no call
 * of the old one is under way). Without a waker, lsvc_queue_wait. */
void lsvc_queue_set_waker(lsvc_queue *q, lsvc_queue_waker fn, void *ud);
/* Block until an event or a wake is pending, or until deadline_ns
 * (monotonic; 0 = forever). Consumes pending wakes. */
void lsvc_queue_wait(lsvc_queue *q, uint64_t deadline_ns);
/* Consume pending wakes; true if there were any. */
bool lsvc_queue_take_wakes(lsvc_queue *q);

/* ---- interrupt.c: make a thread run a function of its own at once ------ */

typedef struct lsvc_irq {
    pthread_t thread;
    void (*fn)(void *ud); /* on the target thread (POSIX: in a signal handler) */
    void *ud;
    bool bound;
} lsvc_irq;

void lsvc_irq_bind(lsvc_irq *irq, void (*fn)(void *), void *ud); /* the thread itself */
void lsvc_irq_unbind(lsvc_irq *irq);                             /* the thread itself */
/* Any thread; the caller's lock keeps raise and unbind apart. */
void lsvc_irq_raise(lsvc_irq *irq);
/* The signal the interrupt uses (0 where none: Windows). Any thread. */
int lsvc_irq_signo(void);

/* ---- clock.c: the clock and timed waits (any thread) ------------------- */

uint64_t lsvc_now_ns(void); /* monotonic clock, never steps */
/* A condition variable whose timed waits take lsvc_now_ns() deadlines:
 * CLOCK_MONOTONIC on POSIX; on Windows (winpthreads ignores
 * pthread_condattr_setclock) the wait is made relative, so a change of the
 * wall clock moves no deadline. */
int lsvc_cond_init(pthread_cond_t *cv);
/* Wait on cv (mu held) until signalled or deadline_ns (lsvc_now_ns; 0 =
 * no deadline). Returns 0, or ETIMEDOUT once the deadline has passed.
 * Spurious wakes happen: callers loop on their predicate. */
int lsvc_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline_ns);

/* ---- log.c: the log, its levels and its sinks (any thread) ------------- */
typedef enum lsvc_level {
    LSVC_LOG_DEBUG = 7,
    LSVC_LOG_INFO = 6,
    LSVC_LOG_NOTICE = 5,
    LSVC_LOG_WARNING = 4,
    LSVC_LOG_ERROR = 3,
} lsvc_level;

int lsvc_level_from_name(const char *name); /* -1 if unknown */
const char *lsvc_level_name(lsvc_level lv);
void lsvc_log_set_level(lsvc_level lv);
void lsvc_log_set_journal(bool on); /* "<N>" priority prefixes for journald */
void lsvc_log(lsvc_level lv, const char *service, const char *fmt, ...) LSVC_PRINTF(3, 4);
void lsvc_log_text(lsvc_level lv, const char *service, const char *text);
/* Make ready what the first line written to stderr needs (on POSIX the
 * non-blocking reopening of fd 2, a path lookup in /proc); else the first
 * line does it. Any thread, any number of times. */
void lsvc_log_prepare(void);
/* Further destinations for log lines, registered from above (the Windows
 * event log, a service's status_slot): a sink is called on the logging
 * thread with each line at max_level or more severe, the text as given (a
 * sink escapes for its own medium). shown_only: only lines that pass the
 * log level (--log-level); else whatever the level shown. Adding is safe
 * while other threads log; a sink is never removed (it may ignore lines).
 * At most LSVC_LOG_MAX_SINKS; returns 0, or -1 when full. */
typedef void (*lsvc_log_sink)(lsvc_level lv, const char *service, const char *text);
#define LSVC_LOG_MAX_SINKS 4
int lsvc_log_add_sink(lsvc_log_sink fn, lsvc_level max_level, bool shown_only);
/* Instead of stderr and the sink: every line at warning or more severe goes
 * to fn, the others nowhere (luasvc check collects its findings so). Set
 * before the threads that log start. */
void lsvc_log_set_capture(lsvc_log_sink fn);
/* --log-file: every line to lf (logfile.c) instead of stderr, from now
 * until the process ends. Reopen it at the next line (SIGHUP: a logrotate
 * moved it away); async-signal-safe. */
typedef struct lsvc_logfile lsvc_logfile; /* logfile.c, below */
void lsvc_log_set_file(lsvc_logfile *lf);
void lsvc_log_reopen_file(void);

/* ---- alloc.c: a Lua state's allocator, with the script's memory_limit --- */

typedef struct lsvc_alloc {
    size_t used; /* bytes the state holds now */
    size_t peak;
    size_t limit;   /* 0: no limit */
    size_t reserve; /* allowed past the limit once stopping */
    bool stopping;
    unsigned refused; /* allocations refused so far */
} lsvc_alloc;

#define LSVC_ALLOC_RESERVE (1u << 20) /* what a stop handler may still take */

/* A lua_Alloc; ud is the state's lsvc_alloc. Worker thread only. */
void *lsvc_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* ---- logfile.c: a log file rotated by size, reopened on request (any thread) */

/* Open PATH for appending; NULL with a message naming the option in err. */
lsvc_logfile *lsvc_logfile_open(const char *path, uint64_t max_size, unsigned keep, char *err,
                                size_t errlen);
/* Append one whole line (one write); rotate first when it would take the
 * file past max_size (0: never). 0, or -1 when the line was lost. */
int lsvc_logfile_write(lsvc_logfile *lf, const char *line, size_t len);
void lsvc_logfile_reopen(lsvc_logfile *lf); /* at the next write; async-signal-safe */
void lsvc_logfile_close(lsvc_logfile *lf);
/* "1048576", "512k", "10M", "1G": 0, or -1 if not a size. */
int lsvc_parse_size(const char *s, uint64_t *out);

/* ---- posix_mailslot.c, win32_mailslot.c: mailslots -----
 * A slot is a named, one-reader message channel: Windows mailslots
 * (\\.\mailslot\NAME), on POSIX AF_UNIX datagram sockets under
 * RUNTIME_DIR/slots/NAME. A reader is used by one thread at a time; a
 * writer too (callers serialise). Writes never block. */

#define LSVC_SLOT_MAX 65536 /* bytes in one message, on every platform */

typedef enum lsvc_slot_rc {
    LSVC_SLOT_OK = 0,
    LSVC_SLOT_TIMEOUT,   /* read: nothing within the timeout */
    LSVC_SLOT_NOREADER,  /* write: no slot of that name (fails fast) */
    LSVC_SLOT_FULL,      /* write: the reader's queue is full (fails fast) */
    LSVC_SLOT_TOOLARGE,  /* write: over LSVC_SLOT_MAX */
    LSVC_SLOT_EXISTS,    /* create: the slot already has a reader */
    LSVC_SLOT_DENIED,    /* create/write: permission denied */
    LSVC_SLOT_TRUNCATED, /* read: a message too large to give whole came, dropped */
    LSVC_SLOT_MALFORMED, /* read (POSIX): a message not from a slot writer, dropped */
    LSVC_SLOT_ERROR,     /* anything else; the message says what */
} lsvc_slot_rc;

typedef struct lsvc_slot lsvc_slot;               /* a reader */
typedef struct lsvc_slot_writer lsvc_slot_writer; /* a writer */

/* A slot's name follows the name rule of services (lsvc_name_valid). */
/* posix_mailslot.c or win32_mailslot.c: */
/* group: NULL for an owner-only slot, else a group allowed to write (POSIX). */
lsvc_slot *lsvc_slot_create(const char *name, const char *group, lsvc_slot_rc *rc, char *err,
                            size_t errlen);
/* Wait up to timeout_ms (0: poll) for one message into buf (cap bytes,
 * LSVC_SLOT_MAX is enough); *len gets its size. A message is never given
 * altered: one that cannot be given whole is dropped and reported
 * (TRUNCATED, MALFORMED, err saying what), and the next read goes on. */
lsvc_slot_rc lsvc_slot_read(lsvc_slot *s, char *buf, size_t cap, size_t *len, uint32_t timeout_ms,
                            char *err, size_t errlen);
void lsvc_slot_close(lsvc_slot *s); /* removes the slot */
/* A descriptor that is readable while a message (or a new writer) waits,
 * for an event loop to wait on (POSIX: an epoll of the slot's sockets),
 * or -1 where there is none (Windows): read in slices then. */
int lsvc_slot_wait_fd(lsvc_slot *s);
/* A writer to NAME; never fails for want of a reader (writes do). */
lsvc_slot_writer *lsvc_slot_open(const char *name, char *err, size_t errlen);
lsvc_slot_rc lsvc_slot_write(lsvc_slot_writer *w, const void *msg, size_t len, char *err,
                             size_t errlen);
void lsvc_slot_writer_close(lsvc_slot_writer *w);


/* ---- console.c: a console's reply channel (any thread) ------------------
 * What a client of the console (luasvc eval, attach) asked, and the frames
 * it is answered, between their writer (the worker, a log line's thread)
 * and the front end that sends them. The writer never waits: past max
 * bytes unsent, the client is dropped. Frames: "<tag> <length>\n<bytes>". */
#define LSVC_CON_PRINT 'P'  /* what the chunk printed */
#define LSVC_CON_RESULT 'R' /* one value it returned, rendered, one line or more */
#define LSVC_CON_ERROR 'E'  /* an error: its message and traceback */
#define LSVC_CON_LOG 'L'    /* a log line of the service's */
#define LSVC_CON_DONE 'D'   /* the end: "0" the chunk ran, "1" it failed or was refused */
#define LSVC_CON_EVAL_MAX (4u << 20) /* an eval's answer unsent, at most */
#define LSVC_CON_LOG_MAX (256u << 10) /* a log stream's lines unsent, at most */

typedef struct lsvc_console lsvc_console;
/* A channel with one reference (the caller's); who: the client, for the log. */
lsvc_console *lsvc_console_new(size_t max, const char *who);
void lsvc_console_ref(lsvc_console *c);
void lsvc_console_unref(lsvc_console *c); /* the last frees it; NULL: nothing */
/* The request: the chunk (taken: freed with the channel). Before handing
 * the channel over; read-only afterwards. */
void lsvc_console_set_chunk(lsvc_console *c, char *chunk, size_t len);
const char *lsvc_console_chunk(const lsvc_console *c, size_t *len);
const char *lsvc_console_who(const lsvc_console *c);
/* The reader's wake: fn(ud) when frames are there to send (the buffer was
 * empty), the writer ended, or the client was dropped; no lock held. */
void lsvc_console_set_reader(lsvc_console *c, void (*fn)(void *), void *ud);
/* The writer's: fn(ud) once the client is gone, under the channel's mutex
 * (so it is bounded and calls nothing of the channel's); at once when it
 * is gone already. NULL: no more calls, from the moment this returns. */
void lsvc_console_set_writer(lsvc_console *c, void (*fn)(void *), void *ud);
/* The writer: append one frame. false: the client is gone (or now is:
 * the frame passed max); nothing was added. */
bool lsvc_console_put(lsvc_console *c, char tag, const char *data, size_t n);
void lsvc_console_end(lsvc_console *c); /* the writer's last frame was put */
/* The reader: send_fn(ud, bytes, n) the unsent bytes (it returns how many
 * it took, never waiting; <= 0: none); returns that. */
long lsvc_console_send(lsvc_console *c, long (*send_fn)(void *ud, const char *p, size_t n),
                       void *ud);
bool lsvc_console_pending(lsvc_console *c);  /* bytes wait to be sent */
bool lsvc_console_finished(lsvc_console *c); /* gone, or ended and all sent */
bool lsvc_console_gone(lsvc_console *c);
void lsvc_console_hangup(lsvc_console *c); /* the reader: the client went away */

#ifndef _WIN32
/* posix_mailslot.c: resolve (and create, mode 0700) the runtime
 * directory: $LUASVC_RUNTIME_DIR, else $XDG_RUNTIME_DIR/luasvc, else
 * /run/luasvc. 0, or -1 with the message in err. Any thread. */
int lsvc_runtime_dir(char *buf, size_t len, char *err, size_t errlen);

/* ---- posix_cgroup.c: where the host's cgroups go (posix_ptree.c's) ------ */

#define LSVC_CGROUP_PATH_CAP 512
typedef struct lsvc_cgroup_place {
    char home[LSVC_CGROUP_PATH_CAP]; /* the cgroup the host is in */
    char base[LSVC_CGROUP_PATH_CAP]; /* home/luasvc-<pid>, made */
    char rel[LSVC_CGROUP_PATH_CAP];  /* base, as /proc/PID/cgroup names it */
    char hier[64];                   /* the hierarchy's name in /proc/PID/cgroup */
} lsvc_cgroup_place;
/* The place in the v1 hierarchy mounted with option opt ("freezer",
 * "pids", "name=systemd"), when the host may make cgroups there: base
 * made and writable (stale luasvc-<pid> of gone hosts removed). */
bool lsvc_cgroup_place_find(const char *opt, lsvc_cgroup_place *c);

/* ---- posix_ptree.c: a service's process tree (any thread) -------------- */

#include <sys/types.h>
typedef enum lsvc_ptree_mode {
    LSVC_PTREE_NONE,      /* neither: the script's uv.spawn children only */
    LSVC_PTREE_CGROUP,    /* a cgroup (v1) per service */
    LSVC_PTREE_SUBREAPER, /* process groups, the host as child subreaper */
} lsvc_ptree_mode;
typedef struct lsvc_ptree lsvc_ptree;
/* In every child's environment: its service's name. */
#define LSVC_PTREE_ENV "LUASVC_SERVICE"
/* The host's mode, decided at the first call (LUASVC_PTREE=subreaper
 * forces the fallback, for tests), and its name. */
lsvc_ptree_mode lsvc_ptree_mode_now(void);
const char *lsvc_ptree_mode_name(lsvc_ptree_mode m);
/* A service's tree (its cgroup made in cgroup mode); NULL: no memory. */
lsvc_ptree *lsvc_ptree_new(const char *name);
bool lsvc_ptree_cgroup(const lsvc_ptree *t); /* it has a cgroup */
/* The calling thread into the tree's cgroup: what it forks is the tree's.
 * -1: it could not (the tree is then found as in subreaper mode). */
int lsvc_ptree_join(lsvc_ptree *t);
/* Every thread of the host out of the tree's cgroup. */
void lsvc_ptree_leave(lsvc_ptree *t);
/* sig (0: none) to every live process of the tree but the host; how many. */
unsigned lsvc_ptree_signal(lsvc_ptree *t, int sig);
unsigned lsvc_ptree_count(lsvc_ptree *t);
/* SIGKILL to all of it (frozen first where a freezer is). */
void lsvc_ptree_kill(lsvc_ptree *t);
/* A child the runtime started for the tree (subreaper mode: the leader of
 * a group of its own), with the registry's lock held across the start and
 * this call, so that lsvc_ptree_reap never takes a registered child's
 * status (it is its starter's to wait for). */
void lsvc_ptree_lock(void);
void lsvc_ptree_unlock(void);
void lsvc_ptree_add(lsvc_ptree *t, pid_t pid);
/* Its starter no longer waits for it (reaped, or a handle closed). */
void lsvc_ptree_unwait(lsvc_ptree *t, pid_t pid);
/* sig to root, its group's and session's members and their descendants. */
unsigned lsvc_ptree_signal_subtree(pid_t root, int sig);
/* Reap the zombies re-parented to the host (subreaper mode). */
void lsvc_ptree_reap(void);
/* pid (with group: the group it leads) is a sibling tree's. */
bool lsvc_ptree_foreign(lsvc_ptree *t, pid_t pid, bool group);
/* A tree whose worker was given up and is never freed, once ended: its
 * cgroup removed now (the host's threads moved out), the host's with the
 * last, as lsvc_ptree_free would; t stays, out of the registry, for the
 * worker should its C call return (the cgroup gone, its calls on t then
 * find nothing). Nothing without a cgroup. */
void lsvc_ptree_orphan(lsvc_ptree *t);
/* The tree's cgroup removed (empty by now), the host's with the last. */
void lsvc_ptree_free(lsvc_ptree *t);
#else
/* ---- win32_job.c: the host's Job object (any thread) -------------------- */

/* The host's process into a Job object of its own (kill on close, no
 * breakaway), once, at the first call: every process it starts from then
 * on, and every one of theirs, is in the job and ends with the host at the
 * latest. false: it could not be made or joined (the host's own job
 * forbids it); the host goes on without. */
bool lsvc_job_open(void);
/* The job's live processes but the host's own: how many; with end, each
 * is terminated (exit code 1, as libuv's uv_kill does on Windows). */
unsigned lsvc_job_others(bool end);
/* For a client: the live processes in the job of the host with process id
 * pid, but the host; -1 when that job cannot be opened (another host's
 * that has none, or no right to look). */
int lsvc_job_count_of(unsigned long pid);
#endif

#endif
